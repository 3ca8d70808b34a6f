// batch_norm2d on CUDA (float32); the math is kernels/cpu/batch_norm.cpp's. x: (N, C, H, W) or (N, C), viewed
// as (N, C, inner) with inner = H*W (or 1); channel c owns M = N*inner values, N planes of inner contiguous
// values each. Value j of channel c (0 <= j < M) lies at offset (j / inner * C + c) * inner + j % inner.
//
// Every per-channel pass runs on a 2-D grid (chunk, channel): each channel's M values are split into chunks
// of contiguous j so that a layer with few channels and large images (C = 64, M = 64*112*112) still fills
// the GPU, and consecutive threads read consecutive j (coalesced within a plane).
//
// forward, batch statistics (train mode), three kernels. The statistics are taken of x - K, K = the first
// value of the channel (exact shift, near the mean), so that float keeps its precision when |mean| >> std:
//   1. statistics: block (k, c) computes (mean, M2 = sum (v - mean)^2) of v = x - K over its chunk; each
//      thread keeps a Welford/Chan running (count, mean, M2), merged over the block as
//      mean = sum count_t mean_t / count,  M2 = sum (M2_t + count_t (mean_t - mean)^2)  (stable, no E[x^2]).
//   2. finalize (one warp per channel, in double): the same merge over the chunks gives the batch mean
//      (K + mean of v) and var = M2 / M; writes mean, invstd = 1 / sqrt(var + eps) and updates the running
//      statistics (running_var with the unbiased M2 / (M - 1)).
//   3. normalize: y = ((x - K) - (mean - K)) * (gamma invstd) + beta.
// forward, running statistics (eval): mean = running_mean, invstd = 1 / sqrt(running_var + eps), K = mean,
//   then 3. The running statistics are not changed.
//
// backward, with xhat = (x - mean) invstd:
//   1. sums: block (k, c) sums dy and dy (x - mean) over its chunk.
//   2. finalize (one warp per channel, in double): dbeta = sum dy, dgamma = invstd sum dy (x - mean).
//   3. dx (when wanted): batch statistics: dx = gamma invstd (dy - dbeta / M - xhat dgamma / M);
//                        running statistics: dx = gamma invstd dy.
// Outputs are written with =, never accumulated.
#include <algorithm>

#include "kernels/cuda/channel_walk.cuh"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/launch.h"

namespace thaw::cuda {

namespace {

using namespace channel_walk;

// x viewed as (N, C, inner).
struct Layout {
  int64_t n, c, inner;
  explicit Layout(const Tensor& x) : n(x.size(0)), c(x.size(1)), inner(x.numel() / (x.size(0) * x.size(1))) {}
  int64_t count() const { return n * inner; }  // M: values per channel
};

dim3 chunk_grid(const Layout& L, const ChunkPlan& plan) {
  return dim3(unsigned(plan.chunks), unsigned(std::min<int64_t>(L.c, kMaxGridY)));
}

// ---- forward -------------------------------------------------------------------------------------------

// Block (k, c): part[2 (c chunks + k)] = mean of x - K over chunk k of channel c, part[... + 1] = its M2,
// with K = the first value of channel c (see the file comment).
template <typename Index>
__global__ void batch_norm_stats_kernel(const float* x, Index channels, Index inner, Index m, Index len,
                                        float* part) {
  __shared__ float scratch[32];
  const Index k = blockIdx.x, begin = k * len, end = min(m, begin + len), step = blockDim.x;
  for (Index c = blockIdx.y; c < channels; c += gridDim.y) {
    const float shift = x[size_t(c) * inner];  // K: value 0 of channel c
    float count = 0, mean = 0, m2 = 0;  // this thread's x - K so far (Welford, merged kUnroll at a time)
    ChannelWalk<Index> walk(begin + threadIdx.x, c, channels, inner, step);
    for (Index j = begin + threadIdx.x; j < end; j += kUnroll * step) {
      float v[kUnroll];
      int valid = 0;  // values j + u step < end: a prefix of u, at least one
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        if (j + u * step < end) {
          v[u] = x[walk.off] - shift;
          ++valid;
        } else {
          v[u] = 0;
        }
        walk.next();
      }
      float s = 0;
#pragma unroll
      for (int u = 0; u < kUnroll; ++u)
        s += v[u];  // the invalid ones are 0
      const float batch_mean = s / float(valid);
      float batch_m2 = 0;
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const float d = v[u] - batch_mean;
        if (u < valid) batch_m2 += d * d;
      }
      // Chan's merge of (count, mean, m2) with (valid, batch_mean, batch_m2)
      const float total = count + float(valid), delta = batch_mean - mean, w = float(valid) / total;
      mean += delta * w;
      m2 += batch_m2 + delta * delta * count * w;
      count = total;
    }
    // Merge the threads: every thread calls block_sum (threads without values add zeros).
    const float block_mean = block_sum(count * mean, scratch) / float(end - begin);
    const float d = mean - block_mean;
    const float block_m2 = block_sum(m2 + count * d * d, scratch);
    if (threadIdx.x == 0) {
      const size_t at = 2 * (size_t(c) * gridDim.x + k);
      part[at] = block_mean;
      part[at + 1] = block_m2;
    }
  }
}

// One warp per channel: merges the chunks (in double) into the batch mean and biased variance; writes mean,
// invstd and center[2c] = K, center[2c + 1] = mean - K for the normalize kernel; updates running_mean /
// running_var (both null when not kept) with the unbiased variance.
__global__ void batch_norm_finalize_kernel(const float* part, const float* x, int64_t channels, int64_t inner,
                                           int64_t chunks, int64_t len, int64_t m, double momentum,
                                           double eps, float* mean_out, float* invstd_out, float* center,
                                           float* running_mean, float* running_var) {
  const int lane = threadIdx.x % 32;
  for (const int64_t c : warp_grid_stride(channels)) {  // c is the same on all lanes of the warp (warp_sum)
    const float* p = part + 2 * c * chunks;
    double s = 0;
    for (int64_t k = lane; k < chunks; k += 32)
      s += double(min(m, (k + 1) * len) - k * len) * double(p[2 * k]);
    const double shifted_mean = warp_sum(s) / double(m);  // mean of x - K
    double q = 0;
    for (int64_t k = lane; k < chunks; k += 32) {
      const double d = double(p[2 * k]) - shifted_mean;
      q += double(p[2 * k + 1]) + double(min(m, (k + 1) * len) - k * len) * d * d;
    }
    const double m2 = warp_sum(q);
    if (lane == 0) {
      const float shift = x[c * inner];
      const double mean = double(shift) + shifted_mean;
      mean_out[c] = float(mean);
      invstd_out[c] = float(1.0 / sqrt(m2 / double(m) + eps));
      center[2 * c] = shift;
      center[2 * c + 1] = float(shifted_mean);
      if (running_mean) {
        running_mean[c] = float((1 - momentum) * double(running_mean[c]) + momentum * mean);
        running_var[c] = float((1 - momentum) * double(running_var[c]) + momentum * m2 / double(m - 1));
      }
    }
  }
}

// Eval mode: mean = running_mean, invstd = 1 / sqrt(running_var + eps), center = (running_mean, 0); the
// running statistics stay as they are.
__global__ void batch_norm_running_stats_kernel(const float* running_mean, const float* running_var,
                                                int64_t channels, double eps, float* mean_out,
                                                float* invstd_out, float* center) {
  for (const int64_t c : grid_stride(channels)) {
    mean_out[c] = running_mean[c];
    invstd_out[c] = float(1.0 / sqrt(double(running_var[c]) + eps));
    center[2 * c] = running_mean[c];
    center[2 * c + 1] = 0;
  }
}

// relu as relu.cu computes it (x < 0 is false for NaN and -0: both pass through), so that the fused
// batch_norm_relu gives the bits of batch_norm then relu; and its gradient, dy where y > 0.
__device__ __forceinline__ float relu(float x) {
  return x < 0.0f ? 0.0f : x;
}
__device__ __forceinline__ float relu_grad(float dy, float y) {
  return y > 0.0f ? dy : 0.0f;
}

// y = ((x - K) - (mean - K)) * (gamma invstd) + beta over chunk blockIdx.x of each channel, with
// (K, mean - K) = center[2c], center[2c + 1]: x - K is exact for x near K, so y keeps the precision of the
// double mean even when |mean| >> std. kRelu: y = relu(that), batch_norm_relu's forward.
template <typename Index, bool kRelu>
__global__ void batch_norm_normalize_kernel(const float* x, const float* center, const float* invstd,
                                            const float* gamma, const float* beta, Index channels,
                                            Index inner, Index m, Index len, float* y) {
  const Index begin = blockIdx.x * len, end = min(m, begin + len), step = blockDim.x;
  for (Index c = blockIdx.y; c < channels; c += gridDim.y) {
    const float shift = center[2 * size_t(c)], d = center[2 * size_t(c) + 1];
    const float a = gamma[c] * invstd[c], b = beta[c];
    ChannelWalk<Index> walk(begin + threadIdx.x, c, channels, inner, step);
    for (Index j = begin + threadIdx.x; j < end; j += kUnroll * step) {
      float v[kUnroll];
      Index off[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {  // all loads first, then all stores
        off[u] = walk.off;
        if (j + u * step < end) v[u] = x[off[u]];
        walk.next();
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u)
        if (j + u * step < end) {
          const float out = ((v[u] - shift) - d) * a + b;
          y[off[u]] = kRelu ? relu(out) : out;
        }
    }
  }
}

// ---- backward ------------------------------------------------------------------------------------------

// Block (k, c): part[2 (c chunks + k)] = sum dy over chunk k of channel c, part[... + 1] = sum dy (x - mean).
// kRelu (batch_norm_relu's backward): dy is first masked by relu's output y, relu_grad(dy, y).
template <typename Index, bool kRelu>
__global__ void batch_norm_backward_sums_kernel(const float* dy, const float* y, const float* x,
                                                const float* mean, Index channels, Index inner, Index m,
                                                Index len, float* part) {
  __shared__ float scratch[32];
  const Index k = blockIdx.x, begin = k * len, end = min(m, begin + len), step = blockDim.x;
  for (Index c = blockIdx.y; c < channels; c += gridDim.y) {
    const float mu = mean[c];
    float sum_dy = 0, sum_dy_xmu = 0;
    ChannelWalk<Index> walk(begin + threadIdx.x, c, channels, inner, step);
    for (Index j = begin + threadIdx.x; j < end; j += kUnroll * step) {
      float g[kUnroll], v[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const bool valid = j + u * step < end;
        g[u] = valid ? (kRelu ? relu_grad(dy[walk.off], y[walk.off]) : dy[walk.off]) : 0.0f;
        v[u] = valid ? x[walk.off] : mu;
        walk.next();
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        sum_dy += g[u];
        sum_dy_xmu += g[u] * (v[u] - mu);
      }
    }
    sum_dy = block_sum(sum_dy, scratch);  // every thread calls both
    sum_dy_xmu = block_sum(sum_dy_xmu, scratch);
    if (threadIdx.x == 0) {
      const size_t at = 2 * (size_t(c) * gridDim.x + k);
      part[at] = sum_dy;
      part[at + 1] = sum_dy_xmu;
    }
  }
}

// One warp per channel (in double): dbeta = sum dy, dgamma = invstd sum dy (x - mean).
__global__ void batch_norm_backward_finalize_kernel(const float* part, const float* invstd, int64_t channels,
                                                    int64_t chunks, float* dgamma, float* dbeta) {
  const int lane = threadIdx.x % 32;
  for (const int64_t c : warp_grid_stride(channels)) {
    const float* p = part + 2 * c * chunks;
    double sum_dy = 0, sum_dy_xmu = 0;
    for (int64_t k = lane; k < chunks; k += 32) {
      sum_dy += double(p[2 * k]);
      sum_dy_xmu += double(p[2 * k + 1]);
    }
    sum_dy = warp_sum(sum_dy);
    sum_dy_xmu = warp_sum(sum_dy_xmu);
    if (lane == 0) {
      dbeta[c] = float(sum_dy);
      dgamma[c] = float(double(invstd[c]) * sum_dy_xmu);
    }
  }
}

// dx = gamma invstd dy - gamma invstd dbeta / M - (x - mean) gamma invstd^2 dgamma / M (batch statistics),
// dx = gamma invstd dy (running statistics: x is not read). kRelu: dy masked by y first, as in the sums.
template <typename Index, bool kBatchStats, bool kRelu>
__global__ void batch_norm_backward_dx_kernel(const float* dy, const float* y, const float* x,
                                              const float* gamma, const float* mean, const float* invstd,
                                              const float* dgamma, const float* dbeta, Index channels,
                                              Index inner, Index m, Index len, float* dx) {
  const Index begin = blockIdx.x * len, end = min(m, begin + len), step = blockDim.x;
  for (Index c = blockIdx.y; c < channels; c += gridDim.y) {
    const double scale = double(gamma[c]) * double(invstd[c]);
    const float mu = mean[c], k1 = float(scale);
    const float k2 = kBatchStats ? float(scale * double(dbeta[c]) / double(m)) : 0.0f;
    const float k3 = kBatchStats ? float(scale * double(invstd[c]) * double(dgamma[c]) / double(m)) : 0.0f;
    ChannelWalk<Index> walk(begin + threadIdx.x, c, channels, inner, step);
    for (Index j = begin + threadIdx.x; j < end; j += kUnroll * step) {
      float g[kUnroll], v[kUnroll];
      Index off[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {  // all loads first, then all stores
        off[u] = walk.off;
        if (j + u * step < end) {
          g[u] = kRelu ? relu_grad(dy[off[u]], y[off[u]]) : dy[off[u]];
          v[u] = kBatchStats ? x[off[u]] : 0.0f;
        }
        walk.next();
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        if (j + u * step < end) dx[off[u]] = kBatchStats ? k1 * g[u] - k2 - (v[u] - mu) * k3 : k1 * g[u];
      }
    }
  }
}

unsigned finalize_blocks(int64_t channels) {
  const int64_t warps = kThreadsPerBlock / 32;
  return unsigned(std::min<int64_t>((channels + warps - 1) / warps, kMaxGridY));
}

// The forward of batch_norm (relu false) and batch_norm_relu (relu true): statistics, then one pass that
// normalizes (and clamps).
void normalize(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
               const Tensor& running_var, bool use_batch_stats, double momentum, double eps, bool relu,
               const Tensor& y, const Tensor& mean, const Tensor& invstd) {
  const Layout L(x);
  const int64_t m = L.count();
  const ChunkPlan plan = plan_chunks(L.c, m);
  const dim3 grid = chunk_grid(L, plan);
  float* rm = running_mean.defined() ? running_mean.data<float>() : nullptr;
  float* rv = running_var.defined() ? running_var.data<float>() : nullptr;
  const Tensor center = Tensor::empty({L.c * 2}, DType::Float32, x.device());  // (K, mean - K) per channel
  with_index_type(x.numel(), [&](auto zero) {
    using Index = decltype(zero);
    if (use_batch_stats) {
      const Tensor part = Tensor::empty({L.c * plan.chunks * 2}, DType::Float32, x.device());
      batch_norm_stats_kernel<Index><<<grid, kThreadsPerBlock, 0, stream()>>>(
          x.data<float>(), Index(L.c), Index(L.inner), Index(m), Index(plan.len), part.data<float>());
      check_launch("batch_norm_forward (statistics)");
      batch_norm_finalize_kernel<<<finalize_blocks(L.c), kThreadsPerBlock, 0, stream()>>>(
          part.data<float>(), x.data<float>(), L.c, L.inner, plan.chunks, plan.len, m, momentum, eps,
          mean.data<float>(), invstd.data<float>(), center.data<float>(), rm, rv);
      check_launch("batch_norm_forward (finalize)");
    } else {
      batch_norm_running_stats_kernel<<<blocks_for(L.c), kThreadsPerBlock, 0, stream()>>>(
          rm, rv, L.c, eps, mean.data<float>(), invstd.data<float>(), center.data<float>());
      check_launch("batch_norm_forward (running statistics)");
    }
    const auto normalize_kernel =
        relu ? batch_norm_normalize_kernel<Index, true> : batch_norm_normalize_kernel<Index, false>;
    normalize_kernel<<<grid, kThreadsPerBlock, 0, stream()>>>(
        x.data<float>(), center.data<float>(), invstd.data<float>(), gamma.data<float>(), beta.data<float>(),
        Index(L.c), Index(L.inner), Index(m), Index(plan.len), y.data<float>());
    check_launch("batch_norm_forward (normalize)");
  });
}

// The backward of batch_norm (y undefined) and batch_norm_relu (y: its output, relu's mask).
void normalize_backward(const Tensor& dy, const Tensor& y, const Tensor& x, const Tensor& gamma,
                        const Tensor& mean, const Tensor& invstd, bool used_batch_stats, const Tensor& dx,
                        const Tensor& dgamma, const Tensor& dbeta) {
  const Layout L(x);
  const int64_t m = L.count();
  const ChunkPlan plan = plan_chunks(L.c, m);
  const dim3 grid = chunk_grid(L, plan);
  // dgamma and dbeta undefined (frozen, running statistics: ops::batch_norm_backward): no sums, dx alone.
  const bool sums = dgamma.defined(), relu = y.defined();
  const float* y_data = relu ? y.data<float>() : nullptr;
  with_index_type(x.numel(), [&](auto zero) {
    using Index = decltype(zero);
    if (sums) {
      const Tensor part = Tensor::empty({L.c * plan.chunks * 2}, DType::Float32, x.device());
      const auto sums_kernel =
          relu ? batch_norm_backward_sums_kernel<Index, true> : batch_norm_backward_sums_kernel<Index, false>;
      sums_kernel<<<grid, kThreadsPerBlock, 0, stream()>>>(dy.data<float>(), y_data, x.data<float>(),
                                                           mean.data<float>(), Index(L.c), Index(L.inner),
                                                           Index(m), Index(plan.len), part.data<float>());
      check_launch("batch_norm_backward (sums)");
      batch_norm_backward_finalize_kernel<<<finalize_blocks(L.c), kThreadsPerBlock, 0, stream()>>>(
          part.data<float>(), invstd.data<float>(), L.c, plan.chunks, dgamma.data<float>(),
          dbeta.data<float>());
      check_launch("batch_norm_backward (finalize)");
    }
    if (!dx.defined()) return;
    const auto dx_kernel = used_batch_stats ? (relu ? batch_norm_backward_dx_kernel<Index, true, true>
                                                    : batch_norm_backward_dx_kernel<Index, true, false>)
                                            : (relu ? batch_norm_backward_dx_kernel<Index, false, true>
                                                    : batch_norm_backward_dx_kernel<Index, false, false>);
    dx_kernel<<<grid, kThreadsPerBlock, 0, stream()>>>(
        dy.data<float>(), y_data, x.data<float>(), gamma.data<float>(), mean.data<float>(),
        invstd.data<float>(), sums ? dgamma.data<float>() : nullptr, sums ? dbeta.data<float>() : nullptr,
        Index(L.c), Index(L.inner), Index(m), Index(plan.len), dx.data<float>());
    check_launch("batch_norm_backward (dx)");
  });
}

}  // namespace

// x: (N, C, H, W) or (N, C); gamma, beta: (C,); running_mean, running_var: (C,) or both undefined (updated
// in place only when use_batch_stats).  ->  y like x; mean, invstd: (C,), all overwritten.
void batch_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                        const Tensor& running_var, bool use_batch_stats, double momentum, double eps,
                        const Tensor& y, const Tensor& mean, const Tensor& invstd) {
  normalize(x, gamma, beta, running_mean, running_var, use_batch_stats, momentum, eps, false, y, mean,
            invstd);
}

// As batch_norm_forward, with y = relu(batch_norm(x)) written in the same pass.
void batch_norm_relu_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                             const Tensor& running_mean, const Tensor& running_var, bool use_batch_stats,
                             double momentum, double eps, const Tensor& y, const Tensor& mean,
                             const Tensor& invstd) {
  normalize(x, gamma, beta, running_mean, running_var, use_batch_stats, momentum, eps, true, y, mean, invstd);
}

// dy, x: (N, C, H, W) or (N, C); gamma, mean, invstd: (C,) (mean, invstd from the forward).
//   ->  dx like x (skipped when undefined), dgamma, dbeta: (C,), all overwritten.
void batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const Tensor& mean,
                         const Tensor& invstd, bool used_batch_stats, const Tensor& dx, const Tensor& dgamma,
                         const Tensor& dbeta) {
  normalize_backward(dy, Tensor(), x, gamma, mean, invstd, used_batch_stats, dx, dgamma, dbeta);
}

// As batch_norm_backward of relu_backward(dy, y), without writing that masked dy: y is the fused forward's
// output, read where dy is.
void batch_norm_relu_backward(const Tensor& dy, const Tensor& y, const Tensor& x, const Tensor& gamma,
                              const Tensor& mean, const Tensor& invstd, bool used_batch_stats,
                              const Tensor& dx, const Tensor& dgamma, const Tensor& dbeta) {
  normalize_backward(dy, y, x, gamma, mean, invstd, used_batch_stats, dx, dgamma, dbeta);
}

}  // namespace thaw::cuda
