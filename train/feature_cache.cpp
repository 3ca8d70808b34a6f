// The feature cache of a frozen prefix (feature_cache.h).
#include "train/feature_cache.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "core/autograd.h"
#include "core/error.h"
#include "nn/layers.h"

namespace thaw::train {

namespace {

using models::ResNet;

bool in_stage(const std::string& name, const std::vector<std::string>& prefixes) {
  const std::string dotted = name + ".";
  return std::any_of(prefixes.begin(), prefixes.end(),
                     [&](const std::string& p) { return dotted.compare(0, p.size(), p) == 0; });
}

}  // namespace

std::string PrefixCut::prefix_text() const {
  if (stages <= 0) return "";
  if (stages == 1) return ResNet::stage_name(0);
  return fmt::format("{}..{}", ResNet::stage_name(0), ResNet::stage_name(stages - 1));
}

std::string PrefixCut::rest_text() const {
  if (stages >= ResNet::kStages - 1) return ResNet::stage_name(ResNet::kStages - 1);
  return fmt::format("{}..{}", ResNet::stage_name(stages), ResNet::stage_name(ResNet::kStages - 1));
}

PrefixCut cacheable_prefix(ResNet& model, bool augment) {
  if (augment) return {0, "augment = true: the training images change every epoch"};
  const nn::NamedTensors params = model.named_parameters();
  const auto modules = model.named_modules();
  for (int stage = 0; stage < ResNet::kStages - 1; ++stage) {
    const std::vector<std::string> prefixes = ResNet::stage_name_prefixes(stage);
    for (const auto& [name, param] : params)
      if (param.requires_grad() && in_stage(name, prefixes)) return {stage, name + " trains"};
    for (const auto& [name, module] : modules) {
      const auto* bn = dynamic_cast<const nn::BatchNorm2d*>(module);
      if (bn != nullptr && bn->mode() != nn::BatchNormMode::Frozen && in_stage(name, prefixes))
        return {stage, fmt::format("{} uses batch statistics (bn_mode = \"train\")", name)};
    }
  }
  return {ResNet::kStages - 1, "fc trains"};
}

FeatureCache FeatureCache::compute(ResNet& model, int stages, const std::vector<data::LoaderSample>& samples,
                                   data::LoaderOptions options, size_t max_bytes, std::string* refusal) {
  THAW_CHECK(stages >= 1 && stages < ResNet::kStages, "feature cache: stages must be in 1..{}, got {}",
             ResNet::kStages - 1, stages);
  const auto start = std::chrono::steady_clock::now();
  const int64_t n = int64_t(samples.size());
  FeatureCache cache;
  cache.stages_ = stages;
  cache.samples_ = samples;
  cache.filled_.assign(size_t(n), 0);
  options.shuffle = options.drop_last = false;
  data::Loader loader(samples, options);
  loader.start_epoch(0);
  NoGradGuard no_grad;
  data::Batch batch;
  int64_t row = 0;  // floats per image
  while (loader.next(batch)) {
    Tensor out = model.forward_stages(batch.images, 0, stages);
    if (!out.device().is_cpu()) out = out.to(Device::cpu());
    if (!cache.features_.defined()) {
      row = out.numel() / out.size(0);
      const size_t needed = size_t(n) * size_t(row) * sizeof(float);
      if (needed > max_bytes) {
        *refusal = fmt::format("the outputs of {} for {} images need {:.1f} MiB",
                               PrefixCut{stages, ""}.prefix_text(), n, double(needed) / 1048576.0);
        return FeatureCache{};
      }
      Shape shape = out.shape();
      shape[0] = n;
      cache.features_ = Tensor::empty(shape);
    }
    const float* src = out.data<float>();
    float* dst = cache.features_.data<float>();
    for (size_t i = 0; i < batch.indices.size(); ++i) {
      const int64_t index = batch.indices[i];
      std::memcpy(dst + index * row, src + int64_t(i) * row, size_t(row) * sizeof(float));
      cache.filled_[size_t(index)] = 1;
    }
  }
  THAW_CHECK(cache.features_.defined(), "feature cache: no image of the {} could be read", n);
  cache.bad_files_ = loader.stats().bad_files;
  cache.seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return cache;
}

bool FeatureCache::batch(const std::vector<int64_t>& indices, Device device, data::Batch& out) const {
  THAW_CHECK(!empty(), "feature cache: batch() of an empty cache");
  std::vector<int64_t> kept, labels;
  for (const int64_t index : indices) {
    THAW_CHECK(index >= 0 && index < size(), "feature cache: sample {} outside 0..{}", index, size() - 1);
    if (!filled_[size_t(index)]) continue;
    kept.push_back(index);
    labels.push_back(samples_[size_t(index)].label);
  }
  if (kept.empty()) return false;
  Shape shape = features_.shape();
  shape[0] = int64_t(kept.size());
  Tensor images = Tensor::empty(shape);
  const int64_t row = features_.numel() / features_.size(0);
  const float* src = features_.data<float>();
  float* dst = images.data<float>();
  for (size_t i = 0; i < kept.size(); ++i)
    std::memcpy(dst + int64_t(i) * row, src + kept[i] * row, size_t(row) * sizeof(float));
  out.images = device.is_cpu() ? images : images.to(device);
  out.labels = Tensor::from_data<int64_t>({int64_t(kept.size())}, labels, device);
  out.indices = std::move(kept);
  return true;
}

std::vector<std::vector<int64_t>> batches_of(const std::vector<int64_t>& order, int64_t batch_size,
                                             bool drop_last) {
  THAW_CHECK(batch_size >= 1, "batches_of: batch_size must be >= 1, got {}", batch_size);
  std::vector<std::vector<int64_t>> batches;
  for (size_t i = 0; i < order.size(); i += size_t(batch_size)) {
    const size_t end = std::min(order.size(), i + size_t(batch_size));
    if (drop_last && end - i < size_t(batch_size)) break;
    batches.emplace_back(order.begin() + int64_t(i), order.begin() + int64_t(end));
  }
  return batches;
}

CachedBatches::CachedBatches(const FeatureCache& cache, const std::vector<int64_t>& order, int64_t batch_size,
                             bool drop_last, Device device)
    : cache_(&cache), batches_(batches_of(order, batch_size, drop_last)), device_(device) {}

bool CachedBatches::next(data::Batch& batch) {
  while (cursor_ < batches_.size())
    if (cache_->batch(batches_[cursor_++], device_, batch)) return true;
  return false;
}

}  // namespace thaw::train
