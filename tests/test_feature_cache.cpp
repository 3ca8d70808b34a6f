// The feature cache of a frozen prefix (train/feature_cache.h): which prefix may be cached and why not, the
// cached outputs against the prefix's own forward pass, and thaw train with the cache against thaw train
// without it. On a small generated dataset (data/synthetic.h), so that it runs wherever the tests do.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/autograd.h"
#include "data/synthetic.h"
#include "models/resnet.h"
#include "models/weights.h"
#include "nn/layers.h"
#include "optim/freeze.h"
#include "tests/support/catch.h"
#include "tests/support/cuda.h"
#include "tests/support/scratch.h"
#include "train/checkpoint.h"
#include "train/config.h"
#include "train/feature_cache.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
using namespace thaw;
using namespace thaw::train;

namespace {

// 37 classes x 4 trainval images (118 train, 30 val after the 80/20 split) and 37 x 1 test images.
fs::path make_patterns(const fs::path& dir, int64_t size) {
  const fs::path root = dir / "patterns";
  data::write_synthetic_dataset(root.string(), {.set = data::PatternSet::Target,
                                                .image_size = size,
                                                .trainval_per_class = 4,
                                                .test_per_class = 1,
                                                .seed = 5});
  return root;
}

std::vector<data::LoaderSample> samples_of(const fs::path& root) {
  std::vector<data::LoaderSample> samples;
  for (const auto& entry : fs::directory_iterator(root / "images"))
    samples.push_back({entry.path().string(), int64_t(samples.size() % 37)});
  std::sort(samples.begin(), samples.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
  samples.resize(40);
  return samples;
}

std::shared_ptr<models::ResNet> frozen_resnet18(const optim::FreezeMask& mask) {
  Generator gen(7);
  auto model = models::resnet18(37, gen);
  mask.apply(model->named_parameters());
  nn::set_batch_norm_mode(*model, {"*"}, nn::BatchNormMode::Frozen);
  model->train();
  return model;
}

nlohmann::json summary_of(const fs::path& run) {
  std::ifstream in(run / "summary.json");
  return nlohmann::json::parse(in);
}

std::vector<std::vector<double>> metric_rows(
    const fs::path& run) {  // train_loss, train_acc, val_loss, val_acc
  std::ifstream in(run / "metrics.csv");
  std::vector<std::vector<double>> rows;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::stringstream ls(line);
    std::vector<double> row;
    std::string field;
    for (int column = 0; std::getline(ls, field, ','); ++column)
      if (column >= 1 && column <= 4) row.push_back(std::stod(field));
    rows.push_back(row);
  }
  return rows;
}

// A thaw train run on the generated dataset at `data`, into `runs`/name: the head alone (layers = 1, the
// default), BatchNorm frozen, 3 epochs of 16-image batches at 32x32, SGD at lr 0.01; `extra` overrides.
TrainConfig pattern_config(const fs::path& runs, const fs::path& data, const std::string& name,
                           const Overrides& extra = {}) {
  Overrides o = {
      {"name", name},       {"runs_dir", runs.string()}, {"data", data.string()}, {"weights", "none"},
      {"image_size", "32"}, {"batch_size", "16"},        {"epochs", "3"},         {"threads", "2"},
      {"lr", "0.01"},       {"bn_mode", "frozen"}};
  o.insert(o.end(), extra.begin(), extra.end());
  return load_train_config("", o);
}

// Two 3-epoch runs agree within float32 rounding: each epoch's train and val loss within 1e-4 (the bound's
// reasoning is above the test that compares cached and uncached runs).
void require_close_runs(const fs::path& a, const fs::path& b) {
  const auto ra = metric_rows(a), rb = metric_rows(b);
  REQUIRE(ra.size() == 3);
  REQUIRE(rb.size() == 3);
  for (size_t e = 0; e < 3; ++e) {
    INFO(a.filename().string() << " vs " << b.filename().string() << ", epoch " << e + 1);
    CHECK(std::abs(ra[e][0] - rb[e][0]) <= 1e-4 * std::abs(rb[e][0]));  // train loss
    CHECK(std::abs(ra[e][2] - rb[e][2]) <= 1e-4 * std::abs(rb[e][2]));  // val loss
  }
}

}  // namespace

TEST_CASE(
    "feature cache: the prefix that may be cached ends at the first trainable or batch-statistics layer") {
  struct Case {
    const char* what;
    std::vector<std::string> trainable;
    bool augment;
    int stages;
    const char* reason;
  };
  const std::vector<Case> cases = {
      {"head only", {"fc"}, false, 6, "fc trains"},
      {"l = 3", {"layer3", "layer4", "fc"}, false, 3, "layer3.0.conv1.weight trains"},
      {"l = 5", {"layer1", "layer2", "layer3", "layer4", "fc"}, false, 1, "layer1.0.conv1.weight trains"},
      {"everything", {"*"}, false, 0, "conv1.weight trains"},
      {"BatchNorm only", {"bn1", "fc"}, false, 0, "bn1.weight trains"},
      {"head only, augmented", {"fc"}, true, 0, "augment = true"},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    auto model = frozen_resnet18(optim::FreezeMask(c.trainable));
    const PrefixCut cut = cacheable_prefix(*model, c.augment);
    CHECK(cut.stages == c.stages);
    CHECK_THAT(cut.reason, ContainsSubstring(c.reason));
  }
  auto model = frozen_resnet18(optim::FreezeMask({"fc"}));
  CHECK(cacheable_prefix(*model, false).prefix_text() == "stem..avgpool");
  nn::set_batch_norm_mode(*model, {"layer2.1.bn2"}, nn::BatchNormMode::Train);
  const PrefixCut cut = cacheable_prefix(*model, false);
  CHECK(cut.stages == 2);
  CHECK(cut.prefix_text() == "stem..layer1");
  CHECK_THAT(cut.reason, ContainsSubstring("layer2.1.bn2 uses batch statistics"));
}

TEST_CASE("feature cache: each image's row is the prefix's forward output, gathered in any order") {
  test::TempDir tmp;
  const std::vector<data::LoaderSample> samples = samples_of(make_patterns(tmp.path, 32));
  auto model = frozen_resnet18(optim::FreezeMask({"layer3", "layer4", "fc"}));
  data::LoaderOptions options;
  options.batch_size = 16;
  options.transform.crop_size = 32;
  options.threads = 2;
  std::string refusal;
  const FeatureCache cache = FeatureCache::compute(*model, 3, samples, options, size_t(1) << 30, &refusal);
  REQUIRE(!cache.empty());
  CHECK(cache.size() == 40);
  CHECK(cache.bytes() == 40 * 128 * 4 * 4 * sizeof(float));  // layer2's output at 32x32: (128, 4, 4)

  // The prefix on the same batches (16, 16, 8 images in file order): the same bits.
  data::Loader loader(samples, [&] {
    data::LoaderOptions o = options;
    o.shuffle = false;
    return o;
  }());
  loader.start_epoch(0);
  NoGradGuard no_grad;
  data::Batch images, cached;
  std::vector<float> direct;
  while (loader.next(images)) {
    const std::vector<float> out = model->forward_stages(images.images, 0, 3).to_vector<float>();
    direct.insert(direct.end(), out.begin(), out.end());
  }
  const std::vector<int64_t> order = {39, 0, 17, 17, 5};  // any order, repeats allowed
  REQUIRE(cache.batch(order, Device::cpu(), cached));
  CHECK(cached.images.shape() == Shape{5, 128, 4, 4});
  CHECK(cached.indices == order);
  const std::vector<float> rows = cached.images.to_vector<float>();
  const std::vector<int64_t> labels = cached.labels.to_vector<int64_t>();
  const size_t row = 128 * 4 * 4;
  for (size_t i = 0; i < order.size(); ++i) {
    INFO("sample " << order[i]);
    CHECK(labels[i] == samples[size_t(order[i])].label);
    CHECK(std::equal(rows.begin() + int64_t(i * row), rows.begin() + int64_t((i + 1) * row),
                     direct.begin() + order[i] * int64_t(row)));
  }

  // Over the bound: no cache, and how much it would have needed.
  const FeatureCache refused = FeatureCache::compute(*model, 3, samples, options, 40 * row * 4 - 1, &refusal);
  CHECK(refused.empty());
  CHECK_THAT(refusal, ContainsSubstring("the outputs of stem..layer2 for 40 images need 0.3 MiB"));

  CHECK(batches_of({0, 1, 2, 3, 4}, 2, false) == std::vector<std::vector<int64_t>>{{0, 1}, {2, 3}, {4}});
  CHECK(batches_of({0, 1, 2, 3, 4}, 2, true) == std::vector<std::vector<int64_t>>{{0, 1}, {2, 3}});
}

// The same runs with and without the cache: equal within float32 rounding. The cached features are the
// prefix's outputs from other batchings than the epoch's (feature_cache.h), so they may differ from the
// uncached ones by float32 rounding (relative 1e-7 per value); a few SGD steps over 118 images do not grow
// that past 1e-4 of the loss. Accuracy counts could flip only for an image on a decision boundary to within
// that.
TEST_CASE(
    "train: the feature cache gives the uncached run within float32 rounding, and says why when unused") {
  test::TempDir tmp;
  const fs::path data = make_patterns(tmp.path, 64);
  auto config = [&](const std::string& name, const Overrides& extra) {
    return pattern_config(tmp.path, data, name, extra);
  };
  const TrainHooks quiet{.quiet = true};

  SECTION("head only: everything but fc cached, for train and val") {
    REQUIRE(run_training(config("cached", {}), false, quiet) == TrainStatus::Completed);
    REQUIRE(run_training(config("plain", {{"feature_cache", "false"}}), false, quiet) ==
            TrainStatus::Completed);
    require_close_runs(tmp.path / "cached", tmp.path / "plain");
    CHECK_THAT(
        summary_of(tmp.path / "cached")["feature_cache"].get<std::string>(),
        ContainsSubstring("stem..avgpool is frozen and uses running BatchNorm statistics (fc trains): its "
                          "outputs for 118 train and 30 val images were computed once"));
    CHECK(summary_of(tmp.path / "plain")["feature_cache"] == "feature cache: off (feature_cache = false)");

    // Interrupted mid-epoch and resumed: the cache is computed again, to the same bits.
    const TrainConfig split = config("split", {});
    REQUIRE(run_training(split, false,
                         {.interrupt_after = [](int64_t step) { return step == 10; }, .quiet = true}) ==
            TrainStatus::Interrupted);
    REQUIRE(run_training(split, true, quiet) == TrainStatus::Completed);
    const auto whole = models::read_weights((tmp.path / "cached" / "weights.h5").string());
    const auto resumed = models::read_weights((tmp.path / "split" / "weights.h5").string());
    for (const auto& [name, t] : whole.tensors) {
      INFO(name);
      CHECK(t.to_vector<float>() == resumed.tensors.at(name).to_vector<float>());
    }
  }
  SECTION("gradual unfreezing: the cache follows the stages, shorter each epoch") {
    REQUIRE(run_training(config("cached", {{"trainable", "gradual"}, {"unfreeze_every", "1"}}), false,
                         quiet) == TrainStatus::Completed);
    REQUIRE(
        run_training(
            config("plain", {{"trainable", "gradual"}, {"unfreeze_every", "1"}, {"feature_cache", "false"}}),
            false, quiet) == TrainStatus::Completed);
    require_close_runs(tmp.path / "cached", tmp.path / "plain");
    // Epoch 3 trains layer3, layer4 and fc: layer2's outputs were cached last.
    CHECK_THAT(summary_of(tmp.path / "cached")["feature_cache"].get<std::string>(),
               ContainsSubstring("feature cache: stem..layer2 is frozen"));
  }
  SECTION("not used: BatchNorm on batch statistics, augmentation, or over the bound; the run goes on") {
    REQUIRE(run_training(config("bn_train", {{"bn_mode", "train"}, {"epochs", "1"}}), false, quiet) ==
            TrainStatus::Completed);
    CHECK(summary_of(tmp.path / "bn_train")["feature_cache"] ==
          "feature cache: not used: bn1 uses batch statistics (bn_mode = \"train\")");
    REQUIRE(run_training(config("augment", {{"augment", "true"}, {"epochs", "1"}}), false, quiet) ==
            TrainStatus::Completed);
    CHECK(summary_of(tmp.path / "augment")["feature_cache"] ==
          "feature cache: not used: augment = true: the training images change every epoch");
    // l = 3 at 64x64: layer2's outputs are (128, 8, 8), 32 KiB per image, 3.7 MiB for 118 train images.
    REQUIRE(run_training(config("bound", {{"layers", "3"}, {"image_size", "64"}, {"feature_cache_mib", "1"}}),
                         false, quiet) == TrainStatus::Completed);
    REQUIRE(
        run_training(config("unbound", {{"layers", "3"}, {"image_size", "64"}, {"feature_cache", "false"}}),
                     false, quiet) == TrainStatus::Completed);
    CHECK(summary_of(tmp.path / "bound")["feature_cache"] ==
          "feature cache: not used: the outputs of stem..layer2 for 118 images need 3.7 MiB (train and val "
          "together), over feature_cache_mib = 1");
    CHECK(metric_rows(tmp.path / "bound") == metric_rows(tmp.path / "unbound"));  // the uncached path itself
  }
}

TEST_CASE(
    "train: the feature cache with an undecodable image: skip_bad leaves it out, else the run names it") {
  test::TempDir tmp;
  const fs::path data = make_patterns(tmp.path, 32);
  std::ifstream list(data / "annotations" / "trainval.txt");
  std::string first;
  std::getline(list, first);
  const fs::path broken = data / "images" / (first.substr(0, first.find(' ')) + ".jpg");
  std::ofstream(broken, std::ios::binary | std::ios::trunc).close();  // zero bytes
  auto config = [&](const std::string& name, const std::string& skip_bad) {
    return pattern_config(tmp.path, data, name, {{"epochs", "2"}, {"skip_bad", skip_bad}});
  };
  REQUIRE(run_training(config("skip", "true"), false, {.quiet = true}) == TrainStatus::Completed);
  CHECK_THAT(summary_of(tmp.path / "skip")["feature_cache"].get<std::string>(),
             ContainsSubstring("stem..avgpool is frozen"));
  CHECK(fs::exists(tmp.path / "skip" / "weights.h5"));
  const std::string message =
      test::error_of([&] { run_training(config("stop", "false"), false, {.quiet = true}); });
  CHECK_THAT(message, ContainsSubstring(broken.string()));
}

// The cache lives on the host and its batches are copied to the device: on CUDA the cached run equals the
// uncached one within float32 rounding as on the CPU (and the cached outputs are the device's own).
TEST_CASE("train on CUDA: the feature cache gives the uncached run within float32 rounding", "[cuda]") {
  THAW_SKIP_WITHOUT_CUDA("the feature cache on CUDA");
  test::TempDir tmp;
  const fs::path data = make_patterns(tmp.path, 32);
  auto config = [&](const std::string& name, const std::string& cache) {
    return pattern_config(tmp.path, data, name, {{"device", "cuda"}, {"feature_cache", cache}});
  };
  REQUIRE(run_training(config("cached", "true"), false, {.quiet = true}) == TrainStatus::Completed);
  REQUIRE(run_training(config("plain", "false"), false, {.quiet = true}) == TrainStatus::Completed);
  CHECK_THAT(summary_of(tmp.path / "cached")["feature_cache"].get<std::string>(),
             ContainsSubstring("stem..avgpool is frozen"));
  require_close_runs(tmp.path / "cached", tmp.path / "plain");
}
