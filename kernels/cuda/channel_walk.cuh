// The per-channel walk that batch_norm.cu and reduce.cu (sum_to_channels) share. A tensor (N, C, ...) is
// viewed as (N, C, inner); channel c owns M = N*inner values, value j (0 <= j < M) at offset
// (j / inner * C + c) * inner + j % inner. Each channel's M values are split into chunks of contiguous j, one
// block per (chunk, channel), so that a layer with few channels and large images (C = 64, M = 64*112*112)
// still fills the GPU, and consecutive threads read consecutive j (coalesced within a plane).
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernels/cuda/launch.h"

namespace thaw::cuda::channel_walk {

constexpr int kUnroll = 4;               // values per thread in flight per loop step (memory parallelism)
constexpr int64_t kTargetBlocks = 1024;  // about one full wave of 256-thread blocks on an H100 (132 SMs)
constexpr int64_t kMinPerBlock = 4 * kUnroll * kThreadsPerBlock;  // values per block, at least 4 loop steps
constexpr unsigned kMaxGridY = 65535;

// How each channel's M values are split: chunk k holds j in [k len, min(M, (k + 1) len)), none empty.
struct ChunkPlan {
  int64_t chunks, len;
};

inline ChunkPlan plan_chunks(int64_t channels, int64_t m) {
  const int64_t by_blocks = (kTargetBlocks + channels - 1) / channels;
  const int64_t by_size = (m + kMinPerBlock - 1) / kMinPerBlock;
  const int64_t chunks = std::max<int64_t>(1, std::min(by_blocks, by_size));
  const int64_t len = (m + chunks - 1) / chunks;
  return {(m + len - 1) / len, len};  // recount so that the last chunk is not empty
}

// Walks the values of channel c starting at value j, step values per next(); keeps the offset
// (j / inner * C + c) * inner + j % inner incrementally: one division at the start, none per value.
// Index: uint32_t when x has at most 2^31 - 1 elements (fewer registers and instructions), else int64_t.
// Walking past the end may wrap a uint32_t offset around (well defined, and never dereferenced); the
// offsets of values j < M are exact.
template <typename Index>
struct ChannelWalk {
  Index i, off;  // j % inner, and the offset of value j
  Index inner, step_i, step_off, wrap_off;

  __device__ ChannelWalk(Index j, Index c, Index channels, Index inner_, Index step) : inner(inner_) {
    const Index n = j / inner;
    i = j - n * inner;
    off = (n * channels + c) * inner + i;
    const Index planes = step / inner;  // whole planes in one step
    step_i = step - planes * inner;
    step_off = planes * channels * inner + step_i;
    wrap_off = (channels - 1) * inner;  // from one plane of channel c to its next: C*inner, less inner
  }
  __device__ void next() {
    i += step_i;
    off += step_off;
    if (i >= inner) {
      i -= inner;
      off += wrap_off;
    }
  }
};

// Calls f(Index{}) with the index type for a tensor of numel elements.
template <typename F>
inline void with_index_type(int64_t numel, F f) {
  if (numel <= INT32_MAX) {
    f(uint32_t{});
  } else {
    f(int64_t{});
  }
}

}  // namespace thaw::cuda::channel_walk
