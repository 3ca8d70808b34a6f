// Loss modules: hold their configuration (class weights), take logits and targets.
#pragma once

#include "core/tensor.h"

namespace thaw::nn {

// Mean softmax cross-entropy; with class_weights (C,), PyTorch's weighted mean sum w_y l / sum w_y.
class CrossEntropyLoss {
 public:
  explicit CrossEntropyLoss(Tensor class_weights = Tensor()) : class_weights_(std::move(class_weights)) {}
  Tensor operator()(const Tensor& logits, const Tensor& labels) const;  // (N, C), int64 (N,) -> 0-d
  const Tensor& class_weights() const { return class_weights_; }

 private:
  Tensor class_weights_;
};

// Mean binary cross-entropy on one logit per sample: logits (N, 1) or (N,), labels int64 (N,) in {0, 1}.
class BCEWithLogitsLoss {
 public:
  Tensor operator()(const Tensor& logits, const Tensor& labels) const;  // -> 0-d
};

}  // namespace thaw::nn
