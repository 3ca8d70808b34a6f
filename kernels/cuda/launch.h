// Launch helpers for the .cu files: grid sizing and the error check after every launch (naming the op).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/error.h"

namespace thaw::cuda {

constexpr int kThreadsPerBlock = 256;

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

}  // namespace thaw::cuda
