// Evaluation over a loader (evaluate.h).
#include "train/evaluate.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

#include "core/autograd.h"
#include "core/error.h"
#include "core/finite.h"

namespace thaw::train {

std::vector<int64_t> predictions(const Tensor& logits) {
  THAW_CHECK(logits.dim() == 2, "predictions: logits must be (N, outputs), got {} dims", logits.dim());
  const int64_t n = logits.size(0), c = logits.size(1);
  const std::vector<float> values = logits.to_vector<float>();
  std::vector<int64_t> out(size_t(n), 0);
  for (int64_t i = 0; i < n; ++i) {
    const float* row = values.data() + i * c;
    if (c == 1) {
      out[size_t(i)] = row[0] > 0 ? 1 : 0;
      continue;
    }
    int64_t best = 0;
    for (int64_t j = 1; j < c; ++j)
      if (row[j] > row[best]) best = j;
    out[size_t(i)] = best;
  }
  return out;
}

void check_finite_outputs(const Tensor& logits, const data::Batch& batch, const data::Loader& loader) {
  check_finite_outputs(logits, batch, loader.samples());
}

void check_finite_outputs(const Tensor& logits, const data::Batch& batch,
                          const std::vector<data::LoaderSample>& samples) {
  const int64_t bad = first_non_finite(logits);
  if (bad < 0) return;
  const int64_t row = bad / std::max<int64_t>(logits.size(1), 1);
  const float value = logits.to_vector<float>()[size_t(bad)];
  const std::string image = row < int64_t(batch.indices.size())
                                ? "'" + samples[size_t(batch.indices[size_t(row)])].path + "'"
                                : fmt::format("{} of its batch", row);
  fail(
      "the model's outputs are {} for image {} (output {}): the weights or BatchNorm's running statistics "
      "have diverged, so no accuracy can be computed",
      std::isnan(value) ? "NaN" : "Inf", image, bad % std::max<int64_t>(logits.size(1), 1));
}

EvalResult evaluate(nn::Module& model, data::Loader& loader, const LossFn& loss, int64_t num_classes) {
  loader.start_epoch(0);
  return evaluate_batches(
      model, [&](data::Batch& batch) { return loader.next(batch); },
      [&](const Tensor& images) { return model.forward(images); }, loader.samples(), loss, num_classes);
}

EvalResult evaluate_batches(nn::Module& model, const std::function<bool(data::Batch&)>& next,
                            const std::function<Tensor(const Tensor&)>& forward,
                            const std::vector<data::LoaderSample>& samples, const LossFn& loss,
                            int64_t num_classes) {
  const auto start = std::chrono::steady_clock::now();
  NoGradGuard no_grad;
  model.eval();
  EvalResult r;
  r.confusion.assign(size_t(num_classes), std::vector<int64_t>(size_t(num_classes), 0));
  double loss_sum = 0;
  int64_t correct = 0;
  data::Batch batch;
  while (next(batch)) {
    const Tensor logits = forward(batch.images);
    check_finite_outputs(logits, batch, samples);
    const int64_t n = batch.labels.numel();
    loss_sum += loss(logits, batch.labels).item() * double(n);
    const std::vector<int64_t> predicted = predictions(logits);
    const std::vector<int64_t> labels = batch.labels.to_vector<int64_t>();
    for (size_t i = 0; i < labels.size(); ++i) {
      THAW_CHECK(labels[i] >= 0 && labels[i] < num_classes && predicted[i] < num_classes,
                 "evaluate: label {} or prediction {} outside 0..{}", labels[i], predicted[i],
                 num_classes - 1);
      ++r.confusion[size_t(labels[i])][size_t(predicted[i])];
      correct += labels[i] == predicted[i];
    }
    r.images += n;
  }
  THAW_CHECK(r.images > 0, "evaluate: the loader gave no images");
  r.loss = loss_sum / double(r.images);
  r.accuracy = double(correct) / double(r.images);
  for (int64_t c = 0; c < num_classes; ++c) {
    int64_t total = 0;
    for (int64_t v : r.confusion[size_t(c)])
      total += v;
    r.per_class_accuracy.push_back(total == 0 ? std::numeric_limits<double>::quiet_NaN()
                                              : double(r.confusion[size_t(c)][size_t(c)]) / double(total));
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

std::string format_eval_report(const EvalResult& r, const std::vector<std::string>& class_names) {
  const size_t c = r.per_class_accuracy.size();
  THAW_CHECK(class_names.size() == c, "format_eval_report: {} class names for {} classes", class_names.size(),
             c);
  int64_t correct = 0;
  for (size_t i = 0; i < c; ++i)
    correct += r.confusion[i][i];
  std::string out = fmt::format("accuracy {:.2f}% ({}/{} images), loss {:.4f}\n\n", 100 * r.accuracy, correct,
                                r.images, r.loss);
  out += fmt::format("{:>3}  {:<28} {:>7} {:>9}\n", "id", "class", "images", "accuracy");
  for (size_t i = 0; i < c; ++i) {
    int64_t total = 0;
    for (int64_t v : r.confusion[i])
      total += v;
    const std::string acc = total ? fmt::format("{:.1f}%", 100 * r.per_class_accuracy[i]) : "-";
    out += fmt::format("{:>3}  {:<28} {:>7} {:>9}\n", i, class_names[i], total, acc);
  }
  out += "\nconfusion matrix (rows: true class id, columns: predicted class id)\n    ";
  for (size_t j = 0; j < c; ++j)
    out += fmt::format("{:>4}", j);
  out += "\n";
  for (size_t i = 0; i < c; ++i) {
    out += fmt::format("{:>4}", i);
    for (size_t j = 0; j < c; ++j)
      out += fmt::format("{:>4}", r.confusion[i][j]);
    out += "\n";
  }
  return out;
}

}  // namespace thaw::train
