// The scalars of the optimizer updates (formulas in kernels/ops.h), shared by the CPU and CUDA twins so that
// both round them the same way: each hyper-parameter expression (1 - b1, lr / (1 - b1^t), sqrt(1 - b2^t),
// ...) is evaluated in double, as Python evaluates it for torch, then rounded once to T. C++17-clean: the
// .cu files include it.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/ops.h"

namespace thaw::ops {

template <typename T>
struct SgdScalars {
  T weight_decay, momentum, one_minus_dampening, minus_lr;
  bool use_weight_decay;  // wd != 0: d = g + wd p

  explicit SgdScalars(const SgdHyper& h)
      : weight_decay(T(h.weight_decay)),
        momentum(T(h.momentum)),
        one_minus_dampening(T(1 - h.dampening)),
        minus_lr(T(-h.lr)),
        use_weight_decay(h.weight_decay != 0) {}
};

template <typename T>
struct AdamScalars {
  T beta1, one_minus_beta1, beta2, one_minus_beta2, eps, weight_decay;
  T decay_factor;           // AdamW: p *= 1 - lr wd
  T bias_correction2_sqrt;  // sqrt(1 - b2^step)
  T minus_step_size;        // -(lr / (1 - b1^step))
  bool decoupled;           // AdamW: decay the parameter
  bool coupled;             // Adam with wd != 0: g += wd p

  AdamScalars(const AdamHyper& h, int64_t step)
      : beta1(T(h.beta1)),
        one_minus_beta1(T(1 - h.beta1)),
        beta2(T(h.beta2)),
        one_minus_beta2(T(1 - h.beta2)),
        eps(T(h.eps)),
        weight_decay(T(h.weight_decay)),
        decay_factor(T(1 - h.lr * h.weight_decay)),
        bias_correction2_sqrt(T(std::sqrt(1 - std::pow(h.beta2, double(step))))),
        minus_step_size(T(-(h.lr / (1 - std::pow(h.beta1, double(step)))))),
        decoupled(h.decoupled_weight_decay),
        coupled(!h.decoupled_weight_decay && h.weight_decay != 0) {}
};

}  // namespace thaw::ops
