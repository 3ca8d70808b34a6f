// Reductions on the CPU, accumulated in double: sum (every element) and sum_to_channels (every dimension but
// 1). kernels/ops.h has the contracts; cuda/reduce.cu is the twin. sum cuts x into pieces by its size only
// (parallel.h) and adds the pieces' sums in order, so the result does not depend on the thread count.
#include <cstdint>

#include <vector>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/parallel.h"

namespace thaw::cpu {

void sum(const Tensor& x, const Tensor& y) {
  visit_floating(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const T* px = x.data<T>();
    const int64_t n = x.numel();
    constexpr int64_t kGrain = 65536;
    const int64_t pieces = piece_count(n, kGrain);
    std::vector<double> partial(size_t(pieces), 0.0);
    parallel_for(pieces, [&](int64_t i) {
      const auto [begin, end] = piece_range(n, pieces, i);
      double total = 0;
      for (int64_t j = begin; j < end; ++j)
        total += double(px[j]);
      partial[size_t(i)] = total;
    });
    double total = 0;
    for (double s : partial)
      total += s;
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
    parallel_ranges(channels, std::max<int64_t>(1, 65536 / (batch * inner)), [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        double total = 0;
        for (int64_t n = 0; n < batch; ++n) {
          const T* plane = p + (n * channels + c) * inner;
          for (int64_t i = 0; i < inner; ++i)
            total += double(plane[i]);
        }
        out[c] = T(total);
      }
    });
  });
}

}  // namespace thaw::cpu
