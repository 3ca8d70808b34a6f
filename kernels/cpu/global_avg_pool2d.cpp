// Global average pooling on the CPU (AdaptiveAvgPool2d(1)): y[n, c] = mean over the (n, c) plane.
#include <algorithm>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/parallel.h"

namespace thaw::cpu {

void global_avg_pool2d_forward(const Tensor& x, const Tensor& y) {
  visit_floating(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const int64_t planes = x.size(0) * x.size(1), hw = x.size(2) * x.size(3);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    parallel_ranges(planes, std::max<int64_t>(1, 32768 / hw), [&](int64_t plane0, int64_t plane1) {
      for (int64_t plane = plane0; plane < plane1; ++plane) {
        double total = 0;
        for (int64_t i = 0; i < hw; ++i)
          total += double(px[plane * hw + i]);
        py[plane] = T(total / double(hw));
      }
    });
  });
}

void global_avg_pool2d_backward(const Tensor& dy, const Tensor& dx) {
  visit_floating(dy.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const int64_t planes = dx.size(0) * dx.size(1), hw = dx.size(2) * dx.size(3);
    const T* pdy = dy.data<T>();
    T* pdx = dx.data<T>();
    parallel_ranges(planes, std::max<int64_t>(1, 32768 / hw), [&](int64_t plane0, int64_t plane1) {
      for (int64_t plane = plane0; plane < plane1; ++plane) {
        const T g = T(double(pdy[plane]) / double(hw));
        for (int64_t i = 0; i < hw; ++i)
          pdx[plane * hw + i] = g;
      }
    });
  });
}

}  // namespace thaw::cpu
