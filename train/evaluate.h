// Evaluation shared by `thaw train` (validation each epoch, test at the end) and `thaw eval`: loss,
// accuracy, per-class accuracy and the confusion matrix of a model over a loader's epoch, and the text
// report of them.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "data/loader.h"
#include "nn/module.h"

namespace thaw::train {

// loss(logits (N, outputs), labels int64 (N,)) -> 0-d mean loss.
using LossFn = std::function<Tensor(const Tensor&, const Tensor&)>;

// Predicted classes of a batch: argmax over the outputs, or (one output, a BCE head) logit > 0.
std::vector<int64_t> predictions(const Tensor& logits);

struct EvalResult {
  int64_t images = 0;
  double loss = 0;      // mean over images of the per-batch mean losses, weighted by batch size
  double accuracy = 0;  // in [0, 1]
  std::vector<double> per_class_accuracy;       // NaN for a class with no image
  std::vector<std::vector<int64_t>> confusion;  // confusion[true][predicted]
  double seconds = 0;
};

// One pass over the loader (epoch 0, its own order) with the model in eval mode and no graph recorded.
// num_classes: the classes of the task (2 for a one-output BCE head). The model is left in eval mode.
// Outputs that are NaN or Inf are an Error naming the image (check_finite_outputs): the argmax of NaN is no
// prediction, so no accuracy is made up from it.
EvalResult evaluate(nn::Module& model, data::Loader& loader, const LossFn& loss, int64_t num_classes);

// The same over any batches: `next` fills the next batch (false at the end), `forward` turns its images
// into logits (e.g. a feature cache's batches through the stages after the cached prefix:
// train/feature_cache.h). `samples` names the images of batch.indices in messages. The model is put in
// eval mode first and left so; no graph is recorded.
EvalResult evaluate_batches(nn::Module& model, const std::function<bool(data::Batch&)>& next,
                            const std::function<Tensor(const Tensor&)>& forward,
                            const std::vector<data::LoaderSample>& samples, const LossFn& loss,
                            int64_t num_classes);

// Throws Error when logits (N, outputs), the model's outputs for `batch` of `loader`, hold a NaN or Inf:
// "the model's outputs are NaN for image '<path>' (output j): ...".
void check_finite_outputs(const Tensor& logits, const data::Batch& batch, const data::Loader& loader);
void check_finite_outputs(const Tensor& logits, const data::Batch& batch,
                          const std::vector<data::LoaderSample>& samples);

// "accuracy 87.2% (256/294 images), loss 0.4123", then a per-class table and the confusion matrix.
std::string format_eval_report(const EvalResult& result, const std::vector<std::string>& class_names);

}  // namespace thaw::train
