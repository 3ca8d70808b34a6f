// Launch helpers for the .cu files: the stream, grid sizing, the error check after every launch (naming the
// op), the grid-stride loops, and the warp/block sums that the reductions share.
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

#if defined(__CUDACC__) || THAW_CUDA_EMULATION  // device code: nvcc, or the CPU emulation
// The indices first, first + stride, first + 2 stride, ... that are below end: one thread's (or one warp's)
// share of a grid-stride loop, for a range-for. Built by grid_stride and warp_grid_stride below.
template <typename Index>
class GridStride {
 public:
  struct End {};
  class Iterator {
   public:
    __device__ Iterator(Index i, Index stride, Index end) : i_(i), stride_(stride), end_(end) {}
    __device__ Index operator*() const { return i_; }
    __device__ Iterator& operator++() {
      i_ += stride_;
      return *this;
    }
    __device__ bool operator!=(End) const { return i_ < end_; }

   private:
    Index i_, stride_, end_;
  };

  __device__ GridStride(Index first, Index stride, Index end) : first_(first), stride_(stride), end_(end) {}
  __device__ Iterator begin() const { return Iterator(first_, stride_, end_); }
  __device__ End end() const { return {}; }

 private:
  Index first_, stride_, end_;
};

// One thread per index: thread t = blockIdx.x * blockDim.x + threadIdx.x of the T = gridDim.x * blockDim.x
// threads of the grid visits begin + t, begin + t + T, ... below end (computed in Index: int64_t, or
// uint32_t where the caller has checked that end + T fits).
//   for (const int64_t i : grid_stride(n)) y[i] = f(x[i]);
template <typename Index>
__device__ inline GridStride<Index> grid_stride(Index begin, Index end) {
  return GridStride<Index>(begin + (blockIdx.x * Index(blockDim.x) + threadIdx.x),
                           Index(gridDim.x) * blockDim.x, end);
}
template <typename Index>
__device__ inline GridStride<Index> grid_stride(Index end) {
  return grid_stride(Index(0), end);
}

// One warp per index: warp w = (blockIdx.x * blockDim.x + threadIdx.x) / 32 of the W = gridDim.x *
// blockDim.x / 32 warps of the grid visits w, w + W, ... below end; all 32 lanes of a warp get the same
// indices (so they may call warp_sum, __match_any_sync, ...). blockDim.x must be a multiple of 32.
template <typename Index>
__device__ inline GridStride<Index> warp_grid_stride(Index end) {
  return GridStride<Index>((blockIdx.x * Index(blockDim.x) + threadIdx.x) / 32,
                           Index(gridDim.x) * (blockDim.x / 32), end);
}

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
