// relu on the CPU: y = max(x, 0); dx = dy where y > 0. NaN propagates in the forward (as PyTorch).
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/parallel.h"

namespace thaw::cpu {

void relu_forward(const Tensor& x, const Tensor& y) {
  visit_floating(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    const int64_t n = x.numel();
    parallel_ranges(n, 32768, [&](int64_t begin, int64_t end) {
#pragma omp simd
      for (int64_t i = begin; i < end; ++i)
        py[i] = px[i] < T(0) ? T(0) : px[i];
    });
  });
}

void relu_backward(const Tensor& dy, const Tensor& y, const Tensor& dx) {
  visit_floating(dy.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T *pdy = dy.data<T>(), *py = y.data<T>();
    T* pdx = dx.data<T>();
    const int64_t n = dy.numel();
    parallel_ranges(n, 32768, [&](int64_t begin, int64_t end) {
#pragma omp simd
      for (int64_t i = begin; i < end; ++i)
        pdx[i] = py[i] > T(0) ? pdy[i] : T(0);
    });
  });
}

}  // namespace thaw::cpu
