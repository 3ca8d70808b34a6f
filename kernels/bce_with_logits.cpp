// Checked entry points of bce_with_logits, binary cross-entropy on logits (kernels/ops.h); the twins are
// cpu/bce_with_logits.cpp and cuda/bce_with_logits.cu.
#include "kernels/check.h"

namespace thaw::ops {

Tensor bce_with_logits_forward(const Tensor& logits, const Tensor& targets) {
  const char* op = "bce_with_logits_forward";
  detail::check_float(logits, op, "logits");
  detail::check_nonempty(logits, op, "logits");
  detail::check_shape(targets, logits.shape(), op, "targets");
  detail::check_same(logits, "logits", {{&targets, "targets"}}, op);
  Tensor loss = Tensor::empty({}, logits.dtype(), logits.device());
  THAW_RUN(logits.device(), bce_with_logits_forward, logits, targets, loss);
  return loss;
}

Tensor bce_with_logits_backward(const Tensor& dloss, const Tensor& logits, const Tensor& targets) {
  const char* op = "bce_with_logits_backward";
  detail::check_float(logits, op, "logits");
  detail::check_nonempty(logits, op, "logits");
  detail::check_shape(targets, logits.shape(), op, "targets");
  detail::check_same(logits, "logits", {{&targets, "targets"}}, op);
  detail::check_scalar_grad(dloss, logits, op);
  Tensor dlogits = Tensor::empty(logits.shape(), logits.dtype(), logits.device());
  THAW_RUN(logits.device(), bce_with_logits_backward, dloss, logits, targets, dlogits);
  return dlogits;
}

}  // namespace thaw::ops
