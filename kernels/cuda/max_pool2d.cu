// max-pool 2-D on CUDA (float32), the twin of kernels/cpu/max_pool2d.cpp; results match it exactly.
//
//   forward:  x: (N, C, H, W) -> y, argmax: (N, C, P, Q)
//             y[n,c,p,q] = max of x[n,c] over the window rows p*stride_h - pad_h + [0, kernel_h) and columns
//             q*stride_w - pad_w + [0, kernel_w), clipped to the plane (padding never wins);
//             argmax[n,c,p,q] = h*W + w of the winner: the first maximum in row-major window order, or the
//             first NaN (NaN propagates). One thread per output element.
//   backward: dx = 0, then dx[n,c][argmax[n,c,p,q]] += dy[n,c,p,q] for every output, in increasing (p, q)
//             order. Overlapping windows (kernel > stride) can route several dy to one input element; the
//             backward has no window geometry (only dy, argmax, dx), so instead of gathering it sums per
//             plane in the CPU's order: one warp per (n, c) plane walks the plane's outputs 32 at a time;
//             lanes of a chunk that hit the same input element are grouped (__match_any_sync) and the
//             group's lowest lane adds their dy in lane order. Deterministic, no atomics, and bit-identical
//             to the CPU's sequential float sums.
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/launch.h"

namespace thaw::cuda {

namespace {

constexpr int kWarpSize = 32;

// One thread per output element (grid-stride); the window loop is the CPU's, term for term.
__global__ void max_pool2d_forward_kernel(const float* __restrict__ x, float* __restrict__ y,
                                          int32_t* __restrict__ argmax, int64_t total, int h, int w, int ph,
                                          int pw, int kernel_h, int kernel_w, int stride_h, int stride_w,
                                          int pad_h, int pad_w) {
  for (const int64_t idx : grid_stride(total)) {
    const int ow = int(idx % pw);
    const int oh = int((idx / pw) % ph);
    const int64_t plane = idx / (int64_t(pw) * ph);
    const float* in = x + plane * h * w;
    const int h0 = oh * stride_h - pad_h, w0 = ow * stride_w - pad_w;
    const int i_begin = max(h0, 0), i_end = min(h0 + kernel_h, h);
    const int j_begin = max(w0, 0), j_end = min(w0 + kernel_w, w);
    float best = -INFINITY;
    int best_index = -1;
    bool found_nan = false;
    for (int i = i_begin; i < i_end && !found_nan; ++i) {
      for (int j = j_begin; j < j_end; ++j) {
        const float v = in[i * w + j];
        if (best_index < 0 || v > best || isnan(v)) {
          best = v;
          best_index = i * w + j;
        }
        if (isnan(v)) {  // NaN wins and stays: stop scanning this window
          found_nan = true;
          break;
        }
      }
    }
    y[idx] = best;
    argmax[idx] = best_index;
  }
}

// One warp per (n, c) plane (grid-stride over planes). The warp zeroes its dx plane, then walks the plane's
// outputs in chunks of 32 in increasing order. Inside a chunk, the lanes whose argmax is the same input
// element form a group; the group's lowest lane adds the group's dy to dx in lane order. Across chunks the
// order is the chunk order. So every dx element receives its dy terms in increasing output index, as the
// CPU loop does. __syncwarp() orders one lane's dx write before another lane's later read of it.
// Launched with blockDim.x a multiple of 32; every lane of a warp runs the same loop trip counts.
__global__ void max_pool2d_backward_kernel(const float* __restrict__ dy, const int32_t* __restrict__ argmax,
                                           float* __restrict__ dx, int64_t planes, int64_t hw,
                                           int64_t out_hw) {
  const int lane = threadIdx.x % kWarpSize;
  for (const int64_t plane : warp_grid_stride(planes)) {
    float* dx_plane = dx + plane * hw;
    const float* dy_plane = dy + plane * out_hw;
    const int32_t* idx_plane = argmax + plane * out_hw;
    for (int64_t i = lane; i < hw; i += kWarpSize)
      dx_plane[i] = 0.0f;
    __syncwarp();
    for (int64_t base = 0; base < out_hw; base += kWarpSize) {
      const int64_t o = base + lane;
      // -1 for lanes past the end and for indices outside the plane (never produced by the forward).
      int target = -1;
      if (o < out_hw) {
        const int32_t i = idx_plane[o];
        if (i >= 0 && i < hw) target = i;
      }
      const unsigned group = __match_any_sync(0xffffffffu, target);  // all 32 lanes take part
      if (target >= 0 && lane == __ffs(group) - 1) {
        float sum = dx_plane[target];
        for (unsigned m = group; m != 0; m &= m - 1)
          sum += dy_plane[base + (__ffs(m) - 1)];
        dx_plane[target] = sum;
      }
      __syncwarp();
    }
  }
}

}  // namespace

void max_pool2d_forward(const Tensor& x, const ops::Pool2dParams& p, const Tensor& y, const Tensor& argmax) {
  const int64_t total = y.numel();
  if (total == 0) return;
  // Plane sizes fit int32 (checked by kernels/max_pool2d.cpp); window geometry is small.
  max_pool2d_forward_kernel<<<blocks_for(total), kThreadsPerBlock, 0, stream()>>>(
      x.data<float>(), y.data<float>(), argmax.data<int32_t>(), total, int(x.size(2)), int(x.size(3)),
      int(y.size(2)), int(y.size(3)), int(p.kernel_h), int(p.kernel_w), int(p.stride_h), int(p.stride_w),
      int(p.pad_h), int(p.pad_w));
  check_launch("max_pool2d_forward");
}

void max_pool2d_backward(const Tensor& dy, const Tensor& argmax, const Tensor& dx) {
  const int64_t planes = dx.size(0) * dx.size(1), hw = dx.size(2) * dx.size(3);
  const int64_t out_hw = dy.size(2) * dy.size(3);
  if (planes == 0 || hw == 0) return;
  constexpr int kWarpsPerBlock = kThreadsPerBlock / kWarpSize;
  const int64_t blocks = (planes + kWarpsPerBlock - 1) / kWarpsPerBlock;
  max_pool2d_backward_kernel<<<unsigned(blocks < 65535 * 16 ? blocks : 65535 * 16), kThreadsPerBlock, 0,
                               stream()>>>(dy.data<float>(), argmax.data<int32_t>(), dx.data<float>(), planes,
                                           hw, out_hw);
  check_launch("max_pool2d_backward");
}

}  // namespace thaw::cuda
