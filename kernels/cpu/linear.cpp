// linear (fully connected) on the CPU: three GEMMs (parallel_gemm: tiles on the pool when large enough).
//   forward:         y (N, O)  = x (N, I) @ w^T (I, O) + b
//   backward-data:   dx (N, I) = dy (N, O) @ w (O, I)
//   backward-weight: dw (O, I) = dy^T (O, N) @ x (N, I)
#include "kernels/cpu/blas.h"
#include "kernels/cpu/cpu_ops.h"

namespace thaw::cpu {

void linear_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y) {
  visit_floating(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const int64_t n = x.size(0), in = x.size(1), out = w.size(0);
    T* py = y.data<T>();
    parallel_gemm(false, true, n, out, in, T(1), x.data<T>(), in, w.data<T>(), in, T(0), py, out);
    if (b.defined()) {
      const T* pb = b.data<T>();
      for (int64_t i = 0; i < n; ++i)
        for (int64_t o = 0; o < out; ++o)
          py[i * out + o] += pb[o];
    }
  });
}

void linear_backward_data(const Tensor& dy, const Tensor& w, const Tensor& dx) {
  visit_floating(dy.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const int64_t n = dy.size(0), out = dy.size(1), in = w.size(1);
    parallel_gemm(false, false, n, in, out, T(1), dy.data<T>(), out, w.data<T>(), in, T(0), dx.data<T>(), in);
  });
}

void linear_backward_weight(const Tensor& dy, const Tensor& x, const Tensor& dw) {
  visit_floating(dy.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const int64_t n = dy.size(0), out = dy.size(1), in = x.size(1);
    parallel_gemm(true, false, out, in, n, T(1), dy.data<T>(), out, x.data<T>(), in, T(0), dw.data<T>(), in);
  });
}

}  // namespace thaw::cpu
