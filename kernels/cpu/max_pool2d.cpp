// max-pool 2-D on the CPU, one (n, c) plane per loop iteration. The forward records the argmax (index
// h*W + w in the input plane) so that the backward routes each gradient to the element that won.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/cpu_ops.h"

namespace thaw::cpu {

void max_pool2d_forward(const Tensor& x, const ops::Pool2dParams& p, const Tensor& y, const Tensor& argmax) {
  visit_floating(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const int64_t planes = x.size(0) * x.size(1), h = x.size(2), w = x.size(3);
    const int64_t ph = y.size(2), pw = y.size(3);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    int32_t* pidx = argmax.data<int32_t>();
#pragma omp parallel for if (x.numel() > 32768)
    for (int64_t plane = 0; plane < planes; ++plane) {
      const T* in = px + plane * h * w;
      for (int64_t oh = 0; oh < ph; ++oh) {
        for (int64_t ow = 0; ow < pw; ++ow) {
          const int64_t h0 = oh * p.stride_h - p.pad_h, w0 = ow * p.stride_w - p.pad_w;
          T best = -INFINITY;
          int64_t best_index = -1;
          for (int64_t i = std::max<int64_t>(h0, 0); i < std::min(h0 + p.kernel_h, h); ++i) {
            for (int64_t j = std::max<int64_t>(w0, 0); j < std::min(w0 + p.kernel_w, w); ++j) {
              const T v = in[i * w + j];
              if (best_index < 0 || v > best || std::isnan(v)) {
                best = v;
                best_index = i * w + j;
              }
              if (std::isnan(v)) {  // NaN wins and stays: stop scanning this window
                i = h;
                break;
              }
            }
          }
          py[(plane * ph + oh) * pw + ow] = best;
          pidx[(plane * ph + oh) * pw + ow] = int32_t(best_index);
        }
      }
    }
  });
}

void max_pool2d_backward(const Tensor& dy, const Tensor& argmax, const Tensor& dx) {
  visit_floating(dy.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const int64_t planes = dx.size(0) * dx.size(1), hw = dx.size(2) * dx.size(3);
    const int64_t out_hw = dy.size(2) * dy.size(3);
    const T* pdy = dy.data<T>();
    const int32_t* pidx = argmax.data<int32_t>();
    T* pdx = dx.data<T>();
    std::memset(pdx, 0, dx.nbytes());
#pragma omp parallel for if (dx.numel() > 32768)
    for (int64_t plane = 0; plane < planes; ++plane) {
      for (int64_t o = 0; o < out_hw; ++o) {
        const int32_t i = pidx[plane * out_hw + o];
        if (i >= 0) pdx[plane * hw + i] += pdy[plane * out_hw + o];
      }
    }
  });
}

}  // namespace thaw::cpu
