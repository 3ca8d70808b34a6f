// Exact feature caching for a frozen prefix (docs/fine-tuning.md, "The feature cache").
//
// When a ResNet's leading stages (models::ResNet::forward_stages) have no trainable parameter, their
// BatchNorms use running statistics while training (bn_mode = "frozen", or from bn_frozen_from_epoch on)
// and the training images are not augmented, those stages compute the same output for an image in every
// epoch: a function of the image and of weights that do not change. thaw train then computes that output
// once per image and trains the rest of the network from it: the head-only experiment costs one forward
// pass over the images plus the head's few milliseconds per epoch.
//
// The cached outputs come from one pass over the images in file order, in batches of the run's batch size,
// so they depend on nothing else (not on the epoch's shuffle, not on a resume): a run resumed from a
// checkpoint refills the cache with the same bits. They equal the uncached forward pass within float32
// rounding only: on the CPU a GEMM's blocking can depend on how many images share it, so an image's
// features may differ in the last bits between batchings (tests/test_feature_cache.cpp measures it).
//
// The cache lives in host memory (float32, counted by core/storage's cpu_memory_stats), bounded by the
// run's feature_cache_mib; batches are gathered there and copied to the run's device.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "data/loader.h"
#include "models/resnet.h"

namespace thaw::train {

// How many of the leading stages may be cached: stages [0, stages). stages == 0: none, and `reason` says why
// (the first parameter that trains, the first BatchNorm that uses batch statistics, or augmentation); else
// `reason` says what ends the prefix. fc is never part of it.
struct PrefixCut {
  int stages = 0;
  std::string reason;
  std::string prefix_text() const;  // "stem..layer2", "stem..avgpool" (= everything but fc)
  std::string rest_text() const;    // what runs on the cached outputs: "layer3..fc", or "fc"
};
PrefixCut cacheable_prefix(models::ResNet& model, bool augment);

class FeatureCache {
 public:
  // Runs stages [0, stages) of `model` (no graph recorded) over every sample, in order, with the loader
  // `options` (shuffle and drop_last off), and keeps each image's output. Returns an empty cache (empty() is
  // true) when the outputs would need more than max_bytes: *refusal then says how much they need; the
  // model is unchanged either way. A file left out by skip_bad has no entry: batch() skips it, as the
  // loader does.
  static FeatureCache compute(models::ResNet& model, int stages,
                              const std::vector<data::LoaderSample>& samples, data::LoaderOptions options,
                              size_t max_bytes, std::string* refusal);

  bool empty() const { return !features_.defined(); }
  int stages() const { return stages_; }
  int64_t size() const { return int64_t(samples_.size()); }
  size_t bytes() const { return features_.defined() ? size_t(features_.numel()) * sizeof(float) : 0; }
  const std::vector<data::LoaderSample>& samples() const { return samples_; }
  const std::vector<std::string>& bad_files() const { return bad_files_; }  // skip_bad left these out
  double seconds() const { return seconds_; }                               // to compute it

  // The batch of samples `indices` (in that order, repeats allowed; those skip_bad left out are skipped):
  // images = their cached outputs (B, ...) on `device`, labels int64 (B,) there, indices. False when none of
  // them is cached.
  bool batch(const std::vector<int64_t>& indices, Device device, data::Batch& out) const;

 private:
  int stages_ = 0;
  std::vector<data::LoaderSample> samples_;
  Tensor features_;           // (samples, ...) float32 on the CPU
  std::vector<char> filled_;  // per sample
  std::vector<std::string> bad_files_;
  double seconds_ = 0;
};

// An epoch's order cut into batches as data::Loader cuts it: consecutive runs of batch_size indices, the
// last one shorter unless drop_last drops it.
std::vector<std::vector<int64_t>> batches_of(const std::vector<int64_t>& order, int64_t batch_size,
                                             bool drop_last);

// One pass over a cache's batches, as a loader's epoch: `order` cut by batches_of, each batch gathered on
// `device` by FeatureCache::batch; a batch none of whose images is cached (skip_bad left them all out) is
// skipped, as the loader skips it. The cache must outlive the pass.
class CachedBatches {
 public:
  CachedBatches() = default;
  CachedBatches(const FeatureCache& cache, const std::vector<int64_t>& order, int64_t batch_size,
                bool drop_last, Device device);
  bool next(data::Batch& batch);                             // false at the end of the pass
  int64_t size() const { return int64_t(batches_.size()); }  // batches, before skipping

 private:
  const FeatureCache* cache_ = nullptr;
  std::vector<std::vector<int64_t>> batches_;
  size_t cursor_ = 0;
  Device device_ = Device::cpu();
};

}  // namespace thaw::train
