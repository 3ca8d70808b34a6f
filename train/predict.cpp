// thaw predict WEIGHTS IMAGE... [--device cpu|cuda] [--top 5] [--image-size N]: see train/predict.h.
#include "train/predict.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "core/autograd.h"
#include "core/error.h"
#include "data/image.h"
#include "data/transforms.h"
#include "models/resnet.h"
#include "nn/precision.h"
#include "train/config.h"
#include "train/trained_model.h"

namespace thaw::train {

namespace {

// The image's (3, size, size) input, or the error that names the file.
std::string load_input(const std::string& path, const data::TransformConfig& transform, float* out) {
  try {
    const data::Image image = data::decode_image_file(path);
    data::transform_to_chw(image, transform, data::SampleParams{}, out);
    return "";
  } catch (const std::exception& e) {  // thaw::Error, and whatever else one bad file may cause
    const std::string message = e.what();
    return message.find(path) == std::string::npos ? path + ": " + message : message;
  }
}

std::vector<ClassScore> top_classes(const std::vector<double>& probabilities,
                                    const std::vector<std::string>& names, int64_t k) {
  std::vector<ClassScore> scores;
  for (size_t c = 0; c < probabilities.size(); ++c)
    scores.push_back({int64_t(c), names[c], probabilities[c]});
  std::stable_sort(scores.begin(), scores.end(),
                   [](const ClassScore& a, const ClassScore& b) { return a.probability > b.probability; });
  scores.resize(std::min(scores.size(), size_t(k)));
  return scores;
}

}  // namespace

int64_t PredictResult::failed() const {
  return std::count_if(images.begin(), images.end(),
                       [](const ImagePrediction& p) { return !p.error.empty(); });
}

int64_t eval_resize_size(int64_t image_size) {
  return image_size * 256 / 224;
}

std::vector<double> class_probabilities(const std::vector<float>& logits) {
  THAW_CHECK(!logits.empty(), "class_probabilities: no logits");
  if (logits.size() == 1) {
    const double p1 = 1 / (1 + std::exp(-double(logits[0])));
    return {1 - p1, p1};
  }
  const double top = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(logits.size());
  double sum = 0;
  for (size_t i = 0; i < logits.size(); ++i)
    sum += p[i] = std::exp(double(logits[i]) - top);
  for (double& v : p)
    v /= sum;
  return p;
}

PredictResult predict_images(const std::string& weights, const std::vector<std::string>& images,
                             const PredictOptions& options) {
  THAW_CHECK(options.top >= 1, "predict: --top must be >= 1, got {}", options.top);
  THAW_CHECK(options.batch >= 1, "predict: batch must be >= 1, got {}", options.batch);
  THAW_CHECK(
      options.image_size == 0 || (options.image_size >= kMinImageSize && options.image_size <= kMaxImageSize),
      "--image-size: {} is not in {}..{}", options.image_size, kMinImageSize, kMaxImageSize);
  TrainedModel trained = load_trained_model(weights);  // the checks thaw eval makes too
  PredictResult result;
  result.weights = weights;
  result.arch = trained.arch;
  result.task = trained.task;
  result.logits = trained.outputs;
  result.image_size = options.image_size > 0   ? options.image_size
                      : trained.image_size > 0 ? trained.image_size
                                               : 224;
  result.class_names = trained.class_names;
  for (int64_t c = int64_t(result.class_names.size()); c < trained.classes(); ++c)
    result.class_names.push_back(fmt::format("class {}", c));
  const std::shared_ptr<models::ResNet> model = trained.model;
  model->to(options.device);
  nn::set_precision(*model, options.precision);
  model->eval();

  data::TransformConfig transform;
  transform.augment = false;
  transform.crop_size = result.image_size;
  transform.resize_size = result.resize_size = eval_resize_size(result.image_size);
  const int64_t pixels = 3 * result.image_size * result.image_size;

  NoGradGuard no_grad;
  result.images.resize(images.size());
  for (size_t start = 0; start < images.size(); start += size_t(options.batch)) {
    const size_t end = std::min(images.size(), start + size_t(options.batch));
    std::vector<float> x;
    std::vector<size_t> ok;  // indices of the decoded images, in batch order
    for (size_t i = start; i < end; ++i) {
      ImagePrediction& p = result.images[i];
      p.path = images[i];
      x.resize((ok.size() + 1) * size_t(pixels));
      p.error = load_input(images[i], transform, x.data() + ok.size() * size_t(pixels));
      if (p.error.empty()) ok.push_back(i);
    }
    if (ok.empty()) continue;
    x.resize(ok.size() * size_t(pixels));
    const Tensor input =
        Tensor::from_data<float>({int64_t(ok.size()), 3, result.image_size, result.image_size}, x)
            .to(options.device);
    const std::vector<float> logits = model->forward(input).to_vector<float>();
    const int64_t outputs = trained.outputs;
    for (size_t b = 0; b < ok.size(); ++b) {
      const std::vector<float> row(logits.begin() + int64_t(b) * outputs,
                                   logits.begin() + int64_t(b + 1) * outputs);
      const auto bad = std::find_if(row.begin(), row.end(), [](float v) { return !std::isfinite(v); });
      if (bad != row.end()) {  // no probability can be made of it
        result.images[ok[b]].error = fmt::format(
            "{}: the model's outputs are {} for this image (output {}): the weights in {} have diverged",
            images[ok[b]], std::isnan(*bad) ? "NaN" : "Inf", bad - row.begin(), weights);
        continue;
      }
      result.images[ok[b]].top = top_classes(class_probabilities(row), result.class_names, options.top);
    }
  }
  return result;
}

void print_predictions(const PredictResult& r, std::FILE* out, std::FILE* err) {
  fmt::print(out, "{}: {}, {} classes{}{}, input {}x{} (resize {}, center crop)\n", r.weights, r.arch,
             r.class_names.size(), r.logits == 1 ? " (1-logit head, sigmoid)" : "",
             r.task.empty() ? "" : ", task " + r.task, r.image_size, r.image_size, r.resize_size);
  for (const ImagePrediction& p : r.images) {
    if (!p.error.empty()) {
      fmt::print(err, "thaw predict: error: {}\n", p.error);
      continue;
    }
    fmt::print(out, "{}\n", p.path);
    for (size_t i = 0; i < p.top.size(); ++i) {
      const ClassScore& s = p.top[i];
      const std::string label = fmt::format("class {}", s.label);
      fmt::print(out, "  {:2d}. {:<28} {:7.2f}%{}\n", i + 1, s.name, 100 * s.probability,
                 s.name == label ? "" : "  (" + label + ")");
    }
  }
  if (r.failed() > 0) fmt::print(err, "thaw predict: {} of {} images failed\n", r.failed(), r.images.size());
}

}  // namespace thaw::train
