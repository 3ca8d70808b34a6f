#include "nn/losses.h"

#include "core/error.h"
#include "nn/functional.h"

namespace thaw::nn {

Tensor CrossEntropyLoss::operator()(const Tensor& logits, const Tensor& labels) const {
  const Tensor weights = class_weights_.defined() && class_weights_.device() != logits.device()
                             ? class_weights_.to(logits.device())
                             : class_weights_;
  return functional::cross_entropy(logits, labels, weights);
}

Tensor BCEWithLogitsLoss::operator()(const Tensor& logits, const Tensor& labels) const {
  THAW_CHECK(labels.defined() && labels.dtype() == DType::Int64 && labels.dim() == 1,
             "BCEWithLogitsLoss: labels must be int64 (N,), got {}", labels.desc());
  THAW_CHECK((logits.dim() == 2 && logits.size(1) == 1) || logits.dim() == 1,
             "BCEWithLogitsLoss: logits must be (N, 1) or (N,), got {} (a binary head has one output)",
             logits.desc());
  THAW_CHECK(logits.size(0) == labels.size(0), "BCEWithLogitsLoss: {} logits for {} labels", logits.size(0),
             labels.size(0));
  // Targets as floats in the logits' dtype, shaped like the logits.
  const Tensor host_labels = labels.to(Device::cpu());
  std::vector<float> t(size_t(host_labels.numel()));
  const int64_t* y = host_labels.data<int64_t>();
  for (size_t i = 0; i < t.size(); ++i) {
    THAW_CHECK(y[i] == 0 || y[i] == 1, "BCEWithLogitsLoss: label {} of sample {} is not 0 or 1", y[i], i);
    t[i] = float(y[i]);
  }
  Tensor targets = Tensor::from_data<float>(logits.shape(), t);
  if (logits.dtype() != DType::Float32) targets = targets.to(logits.dtype());
  return functional::bce_with_logits(logits, targets.to(logits.device()));
}

}  // namespace thaw::nn
