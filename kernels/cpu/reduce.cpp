// Reductions on the CPU, accumulated in double: sum (every element) and sum_to_channels (every dimension but
// 1). kernels/ops.h has the contracts; cuda/reduce.cu is the twin.
#include <cstdint>

#include "kernels/cpu/cpu_ops.h"

namespace thaw::cpu {

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
