// Binary cross-entropy on logits on the CPU, mean over elements, in the stable form
//   l = max(x, 0) - x t + log(1 + exp(-|x|)),   dl/dx = sigmoid(x) - t.
#include <cmath>

#include "kernels/cpu/cpu_ops.h"

namespace thaw::cpu {

void bce_with_logits_forward(const Tensor& logits, const Tensor& targets, const Tensor& loss) {
  visit_floating(logits.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const int64_t n = logits.numel();
    const T *px = logits.data<T>(), *pt = targets.data<T>();
    double total = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double x = double(px[i]), t = double(pt[i]);
      total += std::fmax(x, 0.0) - x * t + std::log1p(std::exp(-std::fabs(x)));
    }
    loss.data<T>()[0] = T(total / double(n));
  });
}

void bce_with_logits_backward(const Tensor& dloss, const Tensor& logits, const Tensor& targets,
                              const Tensor& dlogits) {
  visit_floating(logits.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const int64_t n = logits.numel();
    const T *px = logits.data<T>(), *pt = targets.data<T>();
    T* pd = dlogits.data<T>();
    const double scale = double(dloss.data<T>()[0]) / double(n);
    for (int64_t i = 0; i < n; ++i) {
      const double sigmoid = 1.0 / (1.0 + std::exp(-double(px[i])));
      pd[i] = T(scale * (sigmoid - double(pt[i])));
    }
  });
}

}  // namespace thaw::cpu
