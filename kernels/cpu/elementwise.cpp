// Elementwise ops on the CPU: add, add_, mul, scale, fill_ (kernels/ops.h has the contracts).
#include <cstdint>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/parallel.h"

namespace thaw::cpu {

namespace {
constexpr int64_t kElementwiseGrain = 32768;  // elements per task of the pool
}  // namespace

void add(const Tensor& a, const Tensor& b, const Tensor& y) {
  visit_floating(y.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T *pa = a.data<T>(), *pb = b.data<T>();
    T* py = y.data<T>();
    const int64_t n = y.numel();
    parallel_ranges(n, kElementwiseGrain, [&](int64_t begin, int64_t end) {
#pragma omp simd
      for (int64_t i = begin; i < end; ++i)
        py[i] = pa[i] + pb[i];
    });
  });
}

void add_(const Tensor& y, const Tensor& x, double alpha) {
  visit_floating(y.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    const T a = T(alpha);
    const int64_t n = y.numel();
    parallel_ranges(n, kElementwiseGrain, [&](int64_t begin, int64_t end) {
#pragma omp simd
      for (int64_t i = begin; i < end; ++i)
        py[i] += a * px[i];
    });
  });
}

void mul(const Tensor& a, const Tensor& b, const Tensor& y) {
  visit_floating(y.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T *pa = a.data<T>(), *pb = b.data<T>();
    T* py = y.data<T>();
    const int64_t n = y.numel();
    parallel_ranges(n, kElementwiseGrain, [&](int64_t begin, int64_t end) {
#pragma omp simd
      for (int64_t i = begin; i < end; ++i)
        py[i] = pa[i] * pb[i];
    });
  });
}

void scale(const Tensor& x, double alpha, const Tensor& y) {
  visit_floating(y.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    const T a = T(alpha);
    const int64_t n = y.numel();
    parallel_ranges(n, kElementwiseGrain, [&](int64_t begin, int64_t end) {
#pragma omp simd
      for (int64_t i = begin; i < end; ++i)
        py[i] = a * px[i];
    });
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

}  // namespace thaw::cpu
