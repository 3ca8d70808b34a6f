// Optimizer updates on the CPU: sgd_update_, adam_update_ (formulas in kernels/ops.h).
//
// Rounding follows PyTorch's CPU kernels so that a float32 run tracks torch's to a few ulps: each
// hyper-parameter expression (1 - b1, lr / (1 - b1^t), sqrt(1 - b2^t), ...) is evaluated in double, like
// Python does, then rounded once to T; the per-element arithmetic is then done in T in torch's order
// (buf * m + a * d for add_(d, alpha=a); self + value * t1 * t2 for addcmul_; self + value * t1 / t2 for
// addcdiv_). torch's vectorised loops may fuse a multiply-add into one FMA where this code rounds twice: the
// two can differ by an ulp per operation.
#include <cmath>
#include <cstdint>

#include "kernels/cpu/cpu_ops.h"

namespace thaw::cpu {

void sgd_update_(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer,
                 const ops::SgdHyper& h, bool first_step) {
  visit_floating(param.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T* p = param.data<T>();
    const T* g = grad.data<T>();
    T* buf = h.momentum != 0 ? momentum_buffer.data<T>() : nullptr;
    const T weight_decay = T(h.weight_decay), momentum = T(h.momentum);
    const T one_minus_dampening = T(1 - h.dampening), minus_lr = T(-h.lr);
    const bool use_weight_decay = h.weight_decay != 0;
    const int64_t n = param.numel();
#pragma omp parallel for if (n > 65536)
    for (int64_t i = 0; i < n; ++i) {
      T d = g[i];
      if (use_weight_decay) d = d + weight_decay * p[i];
      if (buf != nullptr) {
        buf[i] = first_step ? d : buf[i] * momentum + one_minus_dampening * d;
        d = h.nesterov ? d + momentum * buf[i] : buf[i];
      }
      p[i] = p[i] + minus_lr * d;
    }
  });
}

void adam_update_(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                  const ops::AdamHyper& h, int64_t step) {
  visit_floating(param.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T* p = param.data<T>();
    const T* g = grad.data<T>();
    T* m = exp_avg.data<T>();
    T* v = exp_avg_sq.data<T>();
    const double bias_correction1 = 1 - std::pow(h.beta1, double(step));
    const double bias_correction2 = 1 - std::pow(h.beta2, double(step));
    const T beta1 = T(h.beta1), one_minus_beta1 = T(1 - h.beta1);
    const T beta2 = T(h.beta2), one_minus_beta2 = T(1 - h.beta2);
    const T eps = T(h.eps), weight_decay = T(h.weight_decay);
    const T decay_factor = T(1 - h.lr * h.weight_decay);  // AdamW
    const T bias_correction2_sqrt = T(std::sqrt(bias_correction2));
    const T minus_step_size = T(-(h.lr / bias_correction1));
    const bool decoupled = h.decoupled_weight_decay, coupled = !decoupled && h.weight_decay != 0;
    const int64_t n = param.numel();
#pragma omp parallel for if (n > 65536)
    for (int64_t i = 0; i < n; ++i) {
      T gi = g[i];
      if (decoupled) p[i] = p[i] * decay_factor;
      if (coupled) gi = gi + weight_decay * p[i];
      m[i] = m[i] * beta1 + one_minus_beta1 * gi;
      v[i] = v[i] * beta2 + one_minus_beta2 * gi * gi;
      const T denom = std::sqrt(v[i]) / bias_correction2_sqrt + eps;
      p[i] = p[i] + minus_step_size * m[i] / denom;
    }
  });
}

}  // namespace thaw::cpu
