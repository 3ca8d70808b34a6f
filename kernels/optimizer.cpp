// Checked entry points of the optimizer updates sgd_update_ and adam_update_ (kernels/ops.h); the twins are
// cpu/optimizer.cpp and cuda/optimizer.cu.
#include <cmath>

#include "kernels/check.h"

namespace thaw::ops {

namespace {

// param and grad are float tensors of one shape, dtype and device; so is each buffer.
void check_update(const char* op, const Tensor& param, const Tensor& grad,
                  std::initializer_list<std::pair<const Tensor*, const char*>> buffers) {
  detail::check_float(param, op, "param");
  detail::check_float(grad, op, "grad");
  detail::check_same(param, "param", {{&grad, "grad"}}, op);
  detail::check_shape(grad, param.shape(), op, "grad");
  for (const auto& [buffer, name] : buffers) {
    detail::check_float(*buffer, op, name);
    detail::check_same(param, "param", {{buffer, name}}, op);
    detail::check_shape(*buffer, param.shape(), op, name);
  }
}

void check_finite_nonnegative(double value, const char* op, const char* name) {
  THAW_CHECK(std::isfinite(value) && value >= 0, "{}: {} must be finite and >= 0, got {}", op, name, value);
}

}  // namespace

void sgd_update_(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer, const SgdHyper& h,
                 bool first_step) {
  const char* op = "sgd_update_";
  check_finite_nonnegative(h.lr, op, "lr");
  check_finite_nonnegative(h.momentum, op, "momentum");
  check_finite_nonnegative(h.weight_decay, op, "weight_decay");
  THAW_CHECK(std::isfinite(h.dampening), "{}: dampening must be finite, got {}", op, h.dampening);
  THAW_CHECK(!h.nesterov || (h.momentum > 0 && h.dampening == 0),
             "{}: Nesterov momentum needs momentum > 0 and dampening 0 (got momentum {}, dampening {})", op,
             h.momentum, h.dampening);
  if (h.momentum == 0) {
    THAW_CHECK(!momentum_buffer.defined(), "{}: momentum is 0 but a momentum_buffer ({}) was passed", op,
               momentum_buffer.desc());
    check_update(op, param, grad, {});
  } else {
    THAW_CHECK(momentum_buffer.defined(), "{}: momentum is {} but momentum_buffer is undefined", op,
               h.momentum);
    check_update(op, param, grad, {{&momentum_buffer, "momentum_buffer"}});
  }
  THAW_RUN(param.device(), sgd_update_, param, grad, momentum_buffer, h, first_step);
}

void adam_update_(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                  const AdamHyper& h, int64_t step) {
  const char* op = h.decoupled_weight_decay ? "adam_update_ (AdamW)" : "adam_update_";
  check_finite_nonnegative(h.lr, op, "lr");
  check_finite_nonnegative(h.weight_decay, op, "weight_decay");
  THAW_CHECK(h.beta1 >= 0 && h.beta1 < 1 && h.beta2 >= 0 && h.beta2 < 1,
             "{}: betas must lie in [0, 1), got ({}, {})", op, h.beta1, h.beta2);
  THAW_CHECK(std::isfinite(h.eps) && h.eps >= 0, "{}: eps must be finite and >= 0, got {}", op, h.eps);
  THAW_CHECK(step >= 1, "{}: step counts this update and starts at 1, got {}", op, step);
  check_update(op, param, grad, {{&exp_avg, "exp_avg"}, {&exp_avg_sq, "exp_avg_sq"}});
  THAW_RUN(param.device(), adam_update_, param, grad, exp_avg, exp_avg_sq, h, step);
}

}  // namespace thaw::ops
