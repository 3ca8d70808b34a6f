// Checked entry points of the losses (kernels/ops.h); cpu/softmax_xent.cpp and cpu/bce_logits.cpp.
#include "kernels/check.h"

namespace thaw::ops {

namespace {

void check_xent_inputs(const Tensor& logits_like, const Tensor& labels, const Tensor& class_weights,
                       const char* op) {
  detail::check_float(logits_like, op, "logits", 2);
  detail::check_nonempty(logits_like, op, "logits");
  THAW_CHECK(labels.defined() && labels.dtype() == DType::Int64, "{}: labels must be int64, got {}", op,
             labels.desc());
  detail::check_shape(labels, {logits_like.size(0)}, op, "labels");
  THAW_CHECK(labels.device() == logits_like.device(), "{}: labels are on {} but logits on {}", op,
             labels.device().str(), logits_like.device().str());
  if (class_weights.defined()) {
    detail::check_shape(class_weights, {logits_like.size(1)}, op, "class_weights");
    detail::check_same(logits_like, "logits", {{&class_weights, "class_weights"}}, op);
  }
}

void check_scalar_grad(const Tensor& dloss, const Tensor& like, const char* op) {
  detail::check_float(dloss, op, "dloss");
  THAW_CHECK(dloss.numel() == 1, "{}: dloss must have one element, got {}", op, dloss.desc());
  detail::check_same(like, "logits", {{&dloss, "dloss"}}, op);
}

}  // namespace

SoftmaxXentForward softmax_xent_forward(const Tensor& logits, const Tensor& labels,
                                        const Tensor& class_weights) {
  check_xent_inputs(logits, labels, class_weights, "softmax_xent_forward");
  SoftmaxXentForward out{Tensor::empty({}, logits.dtype(), logits.device()),
                         Tensor::empty(logits.shape(), logits.dtype(), logits.device())};
  THAW_RUN(logits.device(), softmax_xent_forward, logits, labels, class_weights, out.loss, out.probs);
  return out;
}

Tensor softmax_xent_backward(const Tensor& dloss, const Tensor& probs, const Tensor& labels,
                             const Tensor& class_weights) {
  check_xent_inputs(probs, labels, class_weights, "softmax_xent_backward");
  check_scalar_grad(dloss, probs, "softmax_xent_backward");
  Tensor dlogits = Tensor::empty(probs.shape(), probs.dtype(), probs.device());
  THAW_RUN(probs.device(), softmax_xent_backward, dloss, probs, labels, class_weights, dlogits);
  return dlogits;
}

Tensor bce_logits_forward(const Tensor& logits, const Tensor& targets) {
  const char* op = "bce_logits_forward";
  detail::check_float(logits, op, "logits");
  detail::check_nonempty(logits, op, "logits");
  detail::check_shape(targets, logits.shape(), op, "targets");
  detail::check_same(logits, "logits", {{&targets, "targets"}}, op);
  Tensor loss = Tensor::empty({}, logits.dtype(), logits.device());
  THAW_RUN(logits.device(), bce_logits_forward, logits, targets, loss);
  return loss;
}

Tensor bce_logits_backward(const Tensor& dloss, const Tensor& logits, const Tensor& targets) {
  const char* op = "bce_logits_backward";
  detail::check_float(logits, op, "logits");
  detail::check_nonempty(logits, op, "logits");
  detail::check_shape(targets, logits.shape(), op, "targets");
  detail::check_same(logits, "logits", {{&targets, "targets"}}, op);
  check_scalar_grad(dloss, logits, op);
  Tensor dlogits = Tensor::empty(logits.shape(), logits.dtype(), logits.device());
  THAW_RUN(logits.device(), bce_logits_backward, dloss, logits, targets, dlogits);
  return dlogits;
}

}  // namespace thaw::ops
