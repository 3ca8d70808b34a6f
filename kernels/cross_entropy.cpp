// Checked entry points of cross_entropy, softmax cross-entropy with optional class weights (kernels/ops.h);
// the twins are cpu/cross_entropy.cpp and cuda/cross_entropy.cu.
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

}  // namespace

CrossEntropyForward cross_entropy_forward(const Tensor& logits, const Tensor& labels,
                                          const Tensor& class_weights) {
  check_xent_inputs(logits, labels, class_weights, "cross_entropy_forward");
  CrossEntropyForward out{Tensor::empty({}, logits.dtype(), logits.device()),
                          Tensor::empty(logits.shape(), logits.dtype(), logits.device())};
  THAW_RUN(logits.device(), cross_entropy_forward, logits, labels, class_weights, out.loss, out.probs);
  return out;
}

Tensor cross_entropy_backward(const Tensor& dloss, const Tensor& probs, const Tensor& labels,
                              const Tensor& class_weights) {
  check_xent_inputs(probs, labels, class_weights, "cross_entropy_backward");
  detail::check_scalar_grad(dloss, probs, "cross_entropy_backward");
  Tensor dlogits = Tensor::empty(probs.shape(), probs.dtype(), probs.device());
  THAW_RUN(probs.device(), cross_entropy_backward, dloss, probs, labels, class_weights, dlogits);
  return dlogits;
}

}  // namespace thaw::ops
