// Reductions on CUDA (float32): sum and sum_to_channels (the CPU twins are in kernels/cpu/reduce.cpp).
// Float partial sums per thread, tree sums over the block (launch.h: block_sum), the last level in double.
//
// sum: x (any shape, possibly empty) -> y 0-d.  Pass 1: grid-stride, one partial sum per block;
//   pass 2: one block sums the partials into y. A single block writes y directly (small inputs, losses).
// sum_to_channels: dy (N, C, ...) -> db (C,), db[c] = sum over n and the trailing dims of dy[n, c, ...].
//   dy is viewed as (N, C, inner); channel c owns M = N*inner values, value j at offset
//   (j / inner * C + c) * inner + j % inner. Pass 1 on a 2-D grid (chunk, channel): block (k, c) sums chunk k
//   of channel c (consecutive j, so reads are coalesced within a plane); pass 2: one warp per channel adds
//   the chunks. With a single chunk, pass 1 writes db directly.
#include <algorithm>

#include "kernels/cuda/channel_walk.cuh"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/launch.h"

namespace thaw::cuda {

namespace {

using namespace channel_walk;

constexpr int64_t kSumMaxBlocks = 1024;  // partials of sum's pass 1

// ---- sum -----------------------------------------------------------------------------------------------

// out[blockIdx.x] = sum of x[i] over i = blockIdx.x*B + t (mod gridDim.x*B), B = blockDim.x.
__global__ void sum_partial_kernel(const float* x, int64_t n, float* out) {
  __shared__ float scratch[32];
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  float s[kUnroll] = {};  // independent partial sums, for loads in flight
  int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  for (; i + (kUnroll - 1) * stride < n; i += kUnroll * stride) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
      s[u] += x[i + u * stride];
  }
  for (; i < n; i += stride)
    s[0] += x[i];
  float total = 0;
#pragma unroll
  for (int u = 0; u < kUnroll; ++u)
    total += s[u];
  total = block_sum(total, scratch);  // every thread calls it
  if (threadIdx.x == 0) out[blockIdx.x] = total;
}

// y[0] = sum of part[0 .. parts), in double. One block.
__global__ void sum_finish_kernel(const float* part, int64_t parts, float* y) {
  __shared__ double scratch[32];
  double s = 0;
  for (int64_t i = threadIdx.x; i < parts; i += blockDim.x)
    s += double(part[i]);
  s = block_sum(s, scratch);
  if (threadIdx.x == 0) y[0] = float(s);
}

// ---- sum_to_channels -----------------------------------------------------------------------------------

// Block (k, c): part[c chunks + k] = sum of chunk k of channel c (chunks = gridDim.x).
template <typename Index>
__global__ void sum_to_channels_partial_kernel(const float* dy, Index channels, Index inner, Index m,
                                               Index len, float* part) {
  __shared__ float scratch[32];
  const Index k = blockIdx.x, begin = k * len, end = min(m, begin + len), step = blockDim.x;
  for (Index c = blockIdx.y; c < channels; c += gridDim.y) {
    float s = 0;
    ChannelWalk<Index> walk(begin + threadIdx.x, c, channels, inner, step);
    for (Index j = begin + threadIdx.x; j < end; j += kUnroll * step) {
      float g[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {  // all loads first, then the sum
        g[u] = j + u * step < end ? dy[walk.off] : 0.0f;
        walk.next();
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u)
        s += g[u];
    }
    s = block_sum(s, scratch);  // every thread calls it
    if (threadIdx.x == 0) part[size_t(c) * gridDim.x + k] = s;
  }
}

// One warp per channel: db[c] = sum of part[c chunks .. c chunks + chunks), in double.
__global__ void sum_to_channels_finish_kernel(const float* part, int64_t channels, int64_t chunks,
                                              float* db) {
  const int lane = threadIdx.x % 32;
  for (const int64_t c : warp_grid_stride(channels)) {
    double s = 0;
    for (int64_t k = lane; k < chunks; k += 32)
      s += double(part[c * chunks + k]);
    s = warp_sum(s);  // c is the same on all lanes of the warp
    if (lane == 0) db[c] = float(s);
  }
}

}  // namespace

// x: any shape (may be empty)  ->  y: 0-d, y = sum of all elements (0 when empty).
void sum(const Tensor& x, const Tensor& y) {
  const int64_t n = x.numel();
  const int64_t per_block = int64_t(kUnroll) * kThreadsPerBlock;
  const int64_t blocks = std::clamp<int64_t>((n + per_block - 1) / per_block, 1, kSumMaxBlocks);
  if (blocks == 1) {
    sum_partial_kernel<<<1, kThreadsPerBlock, 0, stream()>>>(x.data<float>(), n, y.data<float>());
    check_launch("sum");
    return;
  }
  const Tensor part = Tensor::empty({blocks}, DType::Float32, x.device());
  sum_partial_kernel<<<unsigned(blocks), kThreadsPerBlock, 0, stream()>>>(x.data<float>(), n,
                                                                          part.data<float>());
  check_launch("sum (partials)");
  sum_finish_kernel<<<1, kThreadsPerBlock, 0, stream()>>>(part.data<float>(), blocks, y.data<float>());
  check_launch("sum (finish)");
}

// dy: (N, C, ...) non-empty  ->  db: (C,), db[c] = sum of dy[:, c, ...].
void sum_to_channels(const Tensor& dy, const Tensor& db) {
  const int64_t channels = dy.size(1), inner = dy.numel() / (dy.size(0) * channels);
  const int64_t m = dy.size(0) * inner;
  const ChunkPlan plan = plan_chunks(channels, m);
  const dim3 grid(unsigned(plan.chunks), unsigned(std::min<int64_t>(channels, kMaxGridY)));
  const Tensor part =
      plan.chunks == 1 ? db : Tensor::empty({channels * plan.chunks}, DType::Float32, dy.device());
  if (dy.numel() <= INT32_MAX) {
    sum_to_channels_partial_kernel<uint32_t>
        <<<grid, kThreadsPerBlock, 0, stream()>>>(dy.data<float>(), uint32_t(channels), uint32_t(inner),
                                                  uint32_t(m), uint32_t(plan.len), part.data<float>());
  } else {
    sum_to_channels_partial_kernel<int64_t><<<grid, kThreadsPerBlock, 0, stream()>>>(
        dy.data<float>(), channels, inner, m, plan.len, part.data<float>());
  }
  check_launch("sum_to_channels (partials)");
  if (plan.chunks == 1) return;
  const int64_t warps = kThreadsPerBlock / 32;
  const unsigned blocks = unsigned(std::min<int64_t>((channels + warps - 1) / warps, kMaxGridY));
  sum_to_channels_finish_kernel<<<blocks, kThreadsPerBlock, 0, stream()>>>(part.data<float>(), channels,
                                                                           plan.chunks, db.data<float>());
  check_launch("sum_to_channels (finish)");
}

}  // namespace thaw::cuda
