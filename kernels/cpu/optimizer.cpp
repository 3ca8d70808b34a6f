// Optimizer updates on the CPU: sgd_update_, adam_update_ (formulas in kernels/ops.h).
//
// Rounding follows PyTorch's CPU kernels so that a float32 run tracks torch's to a few ulps: each
// hyper-parameter expression is evaluated in double, like Python does, then rounded once to T
// (kernels/optimizer_scalars.h, shared with the CUDA twin); the per-element arithmetic is then done in T in
// torch's order (buf * m + a * d for add_(d, alpha=a); self + value * t1 * t2 for addcmul_; self + value * t1
// / t2 for addcdiv_). torch's vectorised loops may fuse a multiply-add into one FMA where this code rounds
// twice: the two can differ by an ulp per operation.
#include <cmath>
#include <cstdint>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/parallel.h"
#include "kernels/optimizer_scalars.h"

namespace thaw::cpu {

void sgd_update_(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer,
                 const ops::SgdHyper& h, bool first_step) {
  visit_floating(param.dtype(), [&](auto zero) {
    using T = decltype(zero);
    T* p = param.data<T>();
    const T* g = grad.data<T>();
    T* buf = h.momentum != 0 ? momentum_buffer.data<T>() : nullptr;
    const ops::SgdScalars<T> s(h);
    const int64_t n = param.numel();
    parallel_ranges(n, 32768, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        T d = g[i];
        if (s.use_weight_decay) d = d + s.weight_decay * p[i];
        if (buf != nullptr) {
          buf[i] = first_step ? d : buf[i] * s.momentum + s.one_minus_dampening * d;
          d = h.nesterov ? d + s.momentum * buf[i] : buf[i];
        }
        p[i] = p[i] + s.minus_lr * d;
      }
    });
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
    const ops::AdamScalars<T> s(h, step);
    const int64_t n = param.numel();
    parallel_ranges(n, 32768, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        T gi = g[i];
        if (s.decoupled) p[i] = p[i] * s.decay_factor;
        if (s.coupled) gi = gi + s.weight_decay * p[i];
        m[i] = m[i] * s.beta1 + s.one_minus_beta1 * gi;
        v[i] = v[i] * s.beta2 + s.one_minus_beta2 * gi * gi;
        const T denom = std::sqrt(v[i]) / s.bias_correction2_sqrt + s.eps;
        p[i] = p[i] + s.minus_step_size * m[i] / denom;
      }
    });
  });
}

}  // namespace thaw::cpu
