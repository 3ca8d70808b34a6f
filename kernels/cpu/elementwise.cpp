// Elementwise ops and reductions on the CPU: add, add_, mul, scale, fill_, sum, sum_to_channels.
#include <cstdint>

#include "kernels/cpu/cpu_ops.h"

namespace thaw::cpu {

void add(const Tensor& a, const Tensor& b, const Tensor& y) {
  visit_floating(y.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T *pa = a.data<T>(), *pb = b.data<T>();
    T* py = y.data<T>();
    const int64_t n = y.numel();
#pragma omp parallel for simd if (n > 65536)
    for (int64_t i = 0; i < n; ++i)
      py[i] = pa[i] + pb[i];
  });
}

void add_(const Tensor& y, const Tensor& x, double alpha) {
  visit_floating(y.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    const T a = T(alpha);
    const int64_t n = y.numel();
#pragma omp parallel for simd if (n > 65536)
    for (int64_t i = 0; i < n; ++i)
      py[i] += a * px[i];
  });
}

void mul(const Tensor& a, const Tensor& b, const Tensor& y) {
  visit_floating(y.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T *pa = a.data<T>(), *pb = b.data<T>();
    T* py = y.data<T>();
    const int64_t n = y.numel();
#pragma omp parallel for simd if (n > 65536)
    for (int64_t i = 0; i < n; ++i)
      py[i] = pa[i] * pb[i];
  });
}

void scale(const Tensor& x, double alpha, const Tensor& y) {
  visit_floating(y.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    const T a = T(alpha);
    const int64_t n = y.numel();
#pragma omp parallel for simd if (n > 65536)
    for (int64_t i = 0; i < n; ++i)
      py[i] = a * px[i];
  });
}

void fill_(const Tensor& y, double value) {
  visit_floating(y.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T* py = y.data<T>();
    const int64_t n = y.numel();
    for (int64_t i = 0; i < n; ++i)
      py[i] = T(value);
  });
}

void sum(const Tensor& x, const Tensor& y) {
  visit_floating(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    const int64_t n = x.numel();
    double total = 0;
#pragma omp parallel for reduction(+ : total) if (n > 65536)
    for (int64_t i = 0; i < n; ++i)
      total += double(px[i]);
    y.data<T>()[0] = T(total);
  });
}

void sum_to_channels(const Tensor& dy, const Tensor& db) {
  visit_floating(dy.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const int64_t batch = dy.size(0), channels = dy.size(1);
    const int64_t inner = dy.numel() / (batch * channels);
    const T* p = dy.data<T>();
    T* out = db.data<T>();
#pragma omp parallel for if (channels * batch * inner > 65536)
    for (int64_t c = 0; c < channels; ++c) {
      double total = 0;
      for (int64_t n = 0; n < batch; ++n) {
        const T* plane = p + (n * channels + c) * inner;
        for (int64_t i = 0; i < inner; ++i)
          total += double(plane[i]);
      }
      out[c] = T(total);
    }
  });
}

}  // namespace thaw::cpu
