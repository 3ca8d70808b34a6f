// Launch helpers for the .cu files: the stream, grid sizing, the error check after every launch (naming the
// op), and the warp/block sums that the reductions share.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/error.h"

namespace thaw::cuda {

constexpr int kThreadsPerBlock = 256;

// The one stream all of thaw's kernels, copies and cuBLAS calls run on (the legacy default stream), so that
// every op sees the results of the ops before it without events.
inline cudaStream_t stream() {
  return nullptr;
}

// Blocks for a grid-stride loop over n elements (capped: the loop covers the rest).
inline unsigned blocks_for(int64_t n) {
  const int64_t blocks = (n + kThreadsPerBlock - 1) / kThreadsPerBlock;
  return unsigned(blocks < 65535 * 16 ? (blocks > 0 ? blocks : 1) : 65535 * 16);
}

// Checks the launch that just happened; op names the kernel in the message.
inline void check_launch(const char* op) {
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess) fail("CUDA kernel launch failed in {}: {}", op, cudaGetErrorString(status));
}

// Checks a CUDA runtime call's status; what names the call and the op.
inline void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess) fail("CUDA error in {}: {}", what, cudaGetErrorString(status));
}

#ifdef __CUDACC__
// Sum of v over the 32 lanes of a warp; every lane gets the total.
template <typename T>
__device__ inline T warp_sum(T v) {
  for (int offset = 16; offset > 0; offset >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Sum of v over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the total.
// scratch: __shared__ T[32]. Contains __syncthreads(): every thread of the block must call it.
template <typename T>
__device__ inline T block_sum(T v, T* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : T(0);
  return warp_sum(v);
}
#endif

}  // namespace thaw::cuda
