// Global average pooling on CUDA (float32), AdaptiveAvgPool2d(1); the CPU twin is
// kernels/cpu/global_avg_pool2d.cpp. A plane is the H*W contiguous values of one (n, c).
//   forward:  x (N, C, H, W) -> y (N, C, 1, 1), y[n, c] = sum_{h, w} x[n, c, h, w] / (H W).
//             One warp per plane: lanes sum strided values (coalesced), then a warp sum.
//   backward: dy (N, C, 1, 1) -> dx (N, C, H, W), dx[n, c, h, w] = dy[n, c] / (H W)  (written, not added).
//             Grid-stride over dx; the plane of element e is e / (H W).
#include <algorithm>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/launch.h"

namespace thaw::cuda {

namespace {

constexpr int kUnroll = 4;  // independent partial sums per lane, for loads in flight

__global__ void global_avg_pool2d_forward_kernel(const float* x, int64_t planes, int64_t hw, float* y) {
  const int lane = threadIdx.x % 32;
  for (const int64_t plane : warp_grid_stride(planes)) {
    const float* in = x + plane * hw;
    float s[kUnroll] = {};
    int64_t i = lane;
    for (; i + (kUnroll - 1) * 32 < hw; i += kUnroll * 32) {
#pragma unroll
      for (int u = 0; u < kUnroll; ++u)
        s[u] += in[i + u * 32];
    }
    for (; i < hw; i += 32)
      s[0] += in[i];
    float total = 0;
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
      total += s[u];
    total = warp_sum(total);  // plane is the same on all lanes of the warp
    if (lane == 0) y[plane] = total / float(hw);
  }
}

// Index: uint32_t when dx has at most 2^31 - 1 elements (a cheaper division), else int64_t.
template <typename Index>
__global__ void global_avg_pool2d_backward_kernel(const float* dy, Index hw, Index n, float* dx) {
  const float count = float(hw);
  for (const Index e : grid_stride(n))
    dx[e] = dy[e / hw] / count;
}

}  // namespace

// x: (N, C, H, W) non-empty  ->  y: (N, C, 1, 1)
void global_avg_pool2d_forward(const Tensor& x, const Tensor& y) {
  const int64_t planes = x.size(0) * x.size(1), hw = x.size(2) * x.size(3);
  const int64_t warps = kThreadsPerBlock / 32;
  const unsigned blocks = unsigned(std::min<int64_t>((planes + warps - 1) / warps, 65535 * 16));
  global_avg_pool2d_forward_kernel<<<blocks, kThreadsPerBlock, 0, stream()>>>(x.data<float>(), planes, hw,
                                                                              y.data<float>());
  check_launch("global_avg_pool2d_forward");
}

// dy: (N, C, 1, 1)  ->  dx: (N, C, H, W) non-empty
void global_avg_pool2d_backward(const Tensor& dy, const Tensor& dx) {
  const int64_t n = dx.numel(), hw = dx.size(2) * dx.size(3);
  if (n <= INT32_MAX) {
    global_avg_pool2d_backward_kernel<uint32_t><<<blocks_for(n), kThreadsPerBlock, 0, stream()>>>(
        dy.data<float>(), uint32_t(hw), uint32_t(n), dx.data<float>());
  } else {
    global_avg_pool2d_backward_kernel<int64_t>
        <<<blocks_for(n), kThreadsPerBlock, 0, stream()>>>(dy.data<float>(), hw, n, dx.data<float>());
  }
  check_launch("global_avg_pool2d_backward");
}

}  // namespace thaw::cuda
