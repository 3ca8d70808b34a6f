// The training run (trainer.h): setup from a TrainConfig, the epoch loop, checkpoints and outputs.
// run_training, at the end, is the list of steps: prepare_run, then per epoch train_epoch and record_epoch,
// then finish_run; each step is a function above it, over the Run they share.
#include "train/trainer.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <set>

#include "core/atomic_write.h"
#include "core/cuda_runtime.h"
#include "core/error.h"
#include "core/precision.h"
#include "data/pets.h"
#include "data/splits.h"
#include "kernels/ops.h"
#include "models/weights.h"
#include "nn/layers.h"
#include "nn/losses.h"
#include "nn/precision.h"
#include "optim/freeze.h"
#include "optim/lr_schedule.h"
#include "report/plots.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/feature_cache.h"
#include "train/freeze_plan.h"
#include "train/run_dir.h"

namespace thaw::train {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The signal that asked the run to stop (SIGINT or SIGTERM), 0 while none has.
volatile std::sig_atomic_t g_interrupted = 0;
std::sig_atomic_t g_last_interrupt = 0;  // kept after the run, for interrupt_exit_status
extern "C" void on_interrupt(int signal) {
  g_interrupted = signal;
}

// Installs the handler for SIGINT (Ctrl-C) and SIGTERM (what schedulers, containers and `kill` send) for the
// run's lifetime and restores the previous ones.
struct InterruptGuard {
  using Handler = void (*)(int);
  Handler previous_int, previous_term;
  InterruptGuard()
      : previous_int(std::signal(SIGINT, on_interrupt)), previous_term(std::signal(SIGTERM, on_interrupt)) {
    g_interrupted = 0;
  }
  ~InterruptGuard() {
    g_last_interrupt = g_interrupted;
    std::signal(SIGINT, previous_int);
    std::signal(SIGTERM, previous_term);
  }
};

const char* signal_text(int signal) {
  return signal == SIGTERM ? "SIGTERM" : "Ctrl-C";
}

// ---- data ----

struct RunData {
  std::vector<std::string> class_names;
  std::vector<data::LoaderSample> train, val, test;
  std::vector<int64_t> train_labels;
};

// At most `limit` of the indices, a seeded choice (stream keeps splits apart), sorted.
std::vector<int64_t> limit_indices(std::vector<int64_t> indices, int64_t limit, uint64_t seed,
                                   int64_t stream) {
  if (limit <= 0 || int64_t(indices.size()) <= limit) return indices;
  const std::vector<int64_t> order = data::shuffled_order(int64_t(indices.size()), seed, stream);
  std::vector<int64_t> kept;
  for (int64_t i = 0; i < limit; ++i)
    kept.push_back(indices[size_t(order[size_t(i)])]);
  std::sort(kept.begin(), kept.end());
  return kept;
}

std::vector<data::LoaderSample> loader_samples(const data::PetsDataset& ds,
                                               const std::vector<data::PetSample>& all,
                                               const std::vector<int64_t>& indices, data::Task task) {
  std::vector<data::LoaderSample> out;
  for (int64_t i : indices)
    out.push_back({ds.image_path(all[size_t(i)]), data::label_of(all[size_t(i)], task)});
  return out;
}

// The task's class names in label order; a breed that no annotation line uses (a subset of the dataset) is
// named as the official release names its class id.
std::vector<std::string> task_class_names(const data::PetsDataset& ds, data::Task task) {
  if (task == data::Task::Species) return {"cat", "dog"};
  std::vector<std::string> names = ds.class_names;
  for (size_t c = 0; c < names.size(); ++c)
    if (names[c].empty()) names[c] = data::kOfficialBreedNames[c];
  return names;
}

RunData load_run_data(const TrainConfig& c) {
  const data::PetsDataset ds = data::read_pets(c.data);
  const data::Task task = data::parse_task(c.task);
  data::Split split;
  if (c.split == "normal") {
    split = data::random_split(int64_t(ds.trainval.size()), c.val_fraction, c.seed);
  } else {
    data::ImbalanceOptions opt;
    opt.majority = data::parse_majority(c.majority);
    opt.val_fraction = c.val_fraction;
    opt.keep_fraction = c.keep_fraction;
    opt.seed = c.seed;
    opt.file_order = opt.report_code_cat_list = c.imbalance_rule == "report_code";
    split = data::imbalanced_split(ds.trainval, opt);
  }
  std::vector<int64_t> test(ds.test.size());
  for (size_t i = 0; i < test.size(); ++i)
    test[i] = int64_t(i);
  RunData d;
  d.class_names = task_class_names(ds, task);
  d.train = loader_samples(ds, ds.trainval, limit_indices(split.train, c.limit, c.seed, 1001), task);
  d.val = loader_samples(ds, ds.trainval, limit_indices(split.val, c.limit, c.seed, 1002), task);
  d.test = loader_samples(ds, ds.test, limit_indices(test, c.limit, c.seed, 1003), task);
  THAW_CHECK(!d.train.empty() && !d.val.empty() && !d.test.empty(),
             "data: the split left an empty part (train {}, val {}, test {} images)", d.train.size(),
             d.val.size(), d.test.size());
  for (const auto& s : d.train)
    d.train_labels.push_back(s.label);
  return d;
}

data::LoaderOptions loader_options(const TrainConfig& c, bool train) {
  data::LoaderOptions o;
  o.batch_size = c.batch_size;
  o.threads = apply_threads(c.threads);
  o.shuffle = train;
  o.seed = c.seed;
  o.transform.crop_size = c.image_size;
  o.transform.resize_size = c.resize_size;
  o.transform.augment = train && c.augment;
  o.cache = c.cache;
  o.cache_max_bytes = c.cache_mib << 20;
  o.device_transforms = c.device_transforms;
  o.cache_on_device = c.cache_on_device;
  o.skip_bad = c.skip_bad;
  o.device = Device::parse(c.device);
  return o;
}

// ---- model, freezing, optimizer ----

struct Training {
  std::shared_ptr<models::ResNet> model;
  std::unique_ptr<optim::Optimizer> optimizer;
  std::unique_ptr<optim::LrSchedule> schedule;
  std::vector<double> base_lrs;
  std::unique_ptr<optim::GradualUnfreezing> gradual;  // trainable = "gradual"
  LossFn loss;
};

// What the weights file offers for the classifier head, kept by build_model until the run's classes are
// known (choose_head decides).
struct FileHead {
  std::map<std::string, Tensor> tensors;  // fc.weight, fc.bias as in the file (empty: no weights file)
  std::string task;                       // the file's task attribute, "" when it has none
  std::vector<std::string> class_names;   // the file's class_names attribute, empty when it has none
};

// The model from the seed, with the weights file's backbone loaded (strictly: everything but fc.*); its fc
// stays the seeded one until choose_head.
std::shared_ptr<models::ResNet> build_model(const TrainConfig& c, FileHead& head) {
  Generator gen(c.seed);
  auto model = models::make_resnet(models::parse_arch(c.arch), c.num_outputs(), gen);
  if (c.weights != "none") {
    models::WeightsFile file = models::read_weights(c.weights);
    THAW_CHECK(file.arch == c.arch, "{}: weights are for '{}' but the model is '{}'", c.weights, file.arch,
               c.arch);
    models::assign_weights(*model, file.tensors, c.weights, {/*replace_head=*/true});
    for (const char* name : {"fc.weight", "fc.bias"})
      if (file.tensors.count(name)) head.tensors[name] = file.tensors.at(name);
    head.task = file.task;
    head.class_names = file.class_names;
  }
  if (c.bn_mode == "frozen") nn::set_batch_norm_mode(*model, {"*"}, nn::BatchNormMode::Frozen);
  return model;
}

// Keeps the weights file's fc when it fits the run: the shape the task needs, and (when the file says) the
// same task and class names; unless new_head asks for a fresh one. Returns the line that says what happened
// ("" without a weights file).
std::string choose_head(const TrainConfig& c, const std::vector<std::string>& class_names,
                        const FileHead& file, models::ResNet& model) {
  if (c.weights == "none") return "";
  const nn::NamedTensors state = model.state_dict();
  std::map<std::string, Tensor> fc;
  for (const auto& [name, t] : state)
    if (name.rfind("fc.", 0) == 0) fc[name] = t;
  std::string why;
  for (const char* name : {"fc.weight", "fc.bias"}) {  // the weight's shape says the most
    const auto it = file.tensors.find(name);
    if (!why.empty()) break;
    if (it == file.tensors.end()) {
      why = fmt::format("the file has no {}", name);
    } else if (it->second.shape() != fc.at(name).shape()) {
      why = fmt::format("the file's {} is {}, the task needs {}", name, shape_str(it->second.shape()),
                        shape_str(fc.at(name).shape()));
    }
  }
  if (why.empty() && !file.task.empty() && file.task != c.task)
    why = fmt::format("the file's head is for task {}, this run's is {}", file.task, c.task);
  if (why.empty() && !file.class_names.empty() && file.class_names != class_names)
    why = "the file's class_names are not this run's classes";
  if (why.empty() && c.new_head) why = "new_head = true asks for one";
  if (why.empty()) {
    for (const auto& [name, t] : fc)
      t.copy_(file.tensors.at(name));
    return fmt::format(
        "weights: fc.weight and fc.bias kept from {} (they fit the task; new_head = true would "
        "start a new head)\n",
        c.weights);
  }
  return fmt::format("weights: fc.weight and fc.bias of {} replaced by a new head (seed {}): {}\n", c.weights,
                     c.seed, why);
}

Training build_training(const TrainConfig& c, const RunData& d, std::shared_ptr<models::ResNet> model) {
  Training t;
  t.model = std::move(model);
  const Device device = Device::parse(c.device);
  t.model->to(device);
  nn::set_precision(*t.model, parse_precision(c.precision));
  const nn::NamedTensors params = t.model->named_parameters();
  std::vector<optim::ParamGroup> groups;
  if (c.trainable == "gradual") {
    t.gradual = std::make_unique<optim::GradualUnfreezing>(gradual_schedule(c));
    groups = t.gradual->param_groups(params, c.weight_decay);
  } else {
    freeze_mask(c).apply(params);
    groups.push_back({params, c.lr, c.weight_decay, "all"});
  }
  if (c.optimizer == "sgd") {
    t.optimizer = std::make_unique<optim::SGD>(groups, c.momentum, c.nesterov);
  } else if (c.optimizer == "adam") {
    t.optimizer = std::make_unique<optim::Adam>(groups, c.betas[0], c.betas[1], c.eps);
  } else {
    t.optimizer = std::make_unique<optim::AdamW>(groups, c.betas[0], c.betas[1], c.eps);
  }
  if (c.schedule == "step") {
    t.schedule = std::make_unique<optim::StepLR>(c.step_size, c.gamma);
  } else if (c.schedule == "cosine") {
    t.schedule = std::make_unique<optim::CosineAnnealingLR>(c.epochs);
  } else {
    t.schedule = std::make_unique<optim::FixedLR>();
  }
  t.base_lrs = optim::base_lrs(*t.optimizer);
  if (c.loss == "bce") {
    t.loss = [](const Tensor& logits, const Tensor& labels) {
      return nn::BCEWithLogitsLoss()(logits, labels);
    };
  } else {
    Tensor weights;
    if (c.class_weights != "none") {
      const auto counts = data::count_labels(d.train_labels, int64_t(d.class_names.size()));
      const auto w = data::class_weights(
          counts,
          c.class_weights == "report" ? data::ClassWeighting::Report : data::ClassWeighting::InverseFrequency,
          d.class_names, "class_weights");
      std::vector<float> wf(w.begin(), w.end());
      weights = Tensor::from_data<float>({int64_t(wf.size())}, wf).to(device);
    }
    const nn::CrossEntropyLoss ce(weights);
    t.loss = [ce](const Tensor& logits, const Tensor& labels) { return ce(logits, labels); };
  }
  return t;
}

// ---- outputs ----

// metrics.csv: the header and one line per finished epoch.
std::string metrics_csv(const std::vector<EpochMetrics>& epochs) {
  std::string out = "epoch,train_loss,train_acc,val_loss,val_acc,lr,data_s,compute_s,images_per_s\n";
  for (const EpochMetrics& m : epochs)
    out += fmt::format("{},{},{},{},{},{},{:.3f},{:.3f},{:.1f}\n", m.epoch, m.train_loss, m.train_acc,
                       m.val_loss, m.val_acc, m.lr, m.data_s, m.compute_s, m.images_per_s);
  return out;
}

nlohmann::json finite_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

// One entry of summary.json's history: the epoch's metrics.csv row by column name.
nlohmann::json history_entry(const EpochMetrics& m) {
  return {{"epoch", m.epoch},       {"train_loss", m.train_loss}, {"train_acc", m.train_acc},
          {"val_loss", m.val_loss}, {"val_acc", m.val_acc},       {"lr", m.lr},
          {"data_s", m.data_s},     {"compute_s", m.compute_s},   {"images_per_s", m.images_per_s}};
}

// What summary.json says beyond the config, the data and the metrics: this process's times and the feature
// cache's last word.
struct RunExtras {
  double this_process_s = 0;
  double train_decode_s = 0, train_transform_s = 0;  // the train loader's workers, summed over them
  double train_device_upload_s = 0, train_device_transform_s = 0;  // device transforms: GPU time
  double feature_cache_s = 0;                                      // computing the feature caches
  std::string feature_cache;                                       // the line update_feature_cache said last
};

void write_summary(const TrainConfig& c, const RunData& d, const EvalResult& test,
                   const std::vector<EpochMetrics>& epochs, const RunExtras& extras) {
  nlohmann::json j;
  j["name"] = c.name;
  j["arch"] = c.arch;
  j["task"] = c.task;
  j["device"] = c.device;
  j["precision"] = {{"requested", c.precision},
                    {"computed", precision_name(ops::conv2d_precision(parse_precision(c.precision),
                                                                      Device::parse(c.device)))}};
  j["epochs"] = c.epochs;
  j["images"] = {{"train", d.train.size()}, {"val", d.val.size()}, {"test", d.test.size()}};
  j["test_accuracy"] = test.accuracy;
  j["test_loss"] = finite_or_null(test.loss);
  j["test_images"] = test.images;
  j["per_class_accuracy"] = nlohmann::json::array();
  for (double a : test.per_class_accuracy)
    j["per_class_accuracy"].push_back(finite_or_null(a));
  j["confusion"] = test.confusion;
  j["class_names"] = d.class_names;
  j["feature_cache"] = extras.feature_cache;
  double data_s = 0, compute_s = 0;
  nlohmann::json history = nlohmann::json::array();
  for (const EpochMetrics& m : epochs) {
    data_s += m.data_s, compute_s += m.compute_s;
    history.push_back(history_entry(m));
  }
  j["history"] = history;
  j["times"] = {{"train_data_s", data_s},
                {"train_compute_s", compute_s},
                {"test_s", test.seconds},
                {"this_process_s", extras.this_process_s},
                {"train_decode_worker_s", extras.train_decode_s},
                {"train_transform_worker_s", extras.train_transform_s},
                {"train_device_upload_s", extras.train_device_upload_s},
                {"train_device_transform_s", extras.train_device_transform_s},
                {"feature_cache_s", extras.feature_cache_s}};
  write_text_atomic(c.run_dir() + "/summary.json", j.dump(2) + "\n");
}

void write_final_weights(const TrainConfig& c, const RunData& d, const models::ResNet& model) {
  std::string names;
  for (size_t i = 0; i < d.class_names.size(); ++i)
    names += (i ? "\n" : "") + d.class_names[i];
  models::save_weights(
      model, c.run_dir() + "/weights.h5", fmt::format("thaw train {} ({} epochs)", c.name, c.epochs),
      {{"task", c.task}, {"class_names", names}, {"head", c.loss == "bce" ? "sigmoid" : "softmax"}},
      {{"image_size", c.image_size}});
}

std::string lrs_text(const optim::Optimizer& opt) {
  std::vector<std::string> parts;
  for (const auto& g : opt.groups())
    parts.push_back(fmt::format("{:g}", g.lr));
  return fmt::format("{}", fmt::join(parts, "/"));
}

std::string clock_text(double seconds) {
  const int64_t s = int64_t(std::max(0.0, seconds) + 0.5);
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
                   : fmt::format("{}:{:02}", s / 60, s % 60);
}

// "\r  epoch 2/10 [=====     ] 23/92  loss 1.2345  acc 61.0%  412 img/s  ETA 3:12" (the ETA of the run).
// step: steps of this epoch done (state's sums and times cover them, a resumed part included).
std::string progress_line(const CheckpointState& state, int64_t epoch, int64_t epochs, int64_t step,
                          int64_t steps) {
  const double seconds = state.data_s + state.compute_s;
  const double eta = seconds / double(step) * double(steps - step + (epochs - epoch - 1) * steps);
  const int64_t filled = 20 * step / std::max<int64_t>(steps, 1);
  return fmt::format(
      "\r\033[K  epoch {}/{} [{:=<{}}{:<{}}] {}/{}  loss {:.4f}  acc {:.1f}%  {:.0f} img/s  ETA {}",
      epoch + 1, epochs, "", filled, "", 20 - filled, step, steps,
      state.train_loss_sum / double(state.train_seen),
      100.0 * double(state.train_correct) / double(state.train_seen), double(state.train_seen) / seconds,
      clock_text(eta));
}

// "epoch 2/10  train loss 1.2345 acc 61.00%  val loss ... lr 0.001/0.0001  data 1.2 s compute 9.8 s ...":
// the line printed when an epoch is done. lrs: every parameter group's learning rate (lrs_text).
std::string epoch_line(const EpochMetrics& m, int64_t epochs, const std::string& lrs) {
  return fmt::format(
      "epoch {}/{}  train loss {:.4f} acc {:.2f}%  val loss {:.4f} acc {:.2f}%  lr {}  data {:.1f} s "
      "compute {:.1f} s  {:.1f} img/s\n",
      m.epoch, epochs, m.train_loss, 100 * m.train_acc, m.val_loss, 100 * m.val_acc, lrs, m.data_s,
      m.compute_s, m.images_per_s);
}

// For the NaN message: the checkpoint on disk and how far it got.
std::string last_checkpoint_text(const std::string& run_dir) {
  if (!std::filesystem::exists(checkpoint_path(run_dir))) return "none (no epoch had finished)";
  const CheckpointState saved = load_checkpoint(run_dir, nullptr, nullptr);
  return fmt::format(
      "{} (epoch {} done{})", checkpoint_path(run_dir), saved.epoch,
      saved.step ? fmt::format(", and {} steps of epoch {}", saved.step, saved.epoch + 1) : "");
}

int64_t bytes_needed(const models::ResNet& model) {
  // weights + checkpoint + two optimizer buffers per parameter (Adam) + text files
  return model.num_parameters() * 4 * 5 + (1 << 20);
}

// ---- the run, step by step ----

// What the steps of one run share: its config and hooks, data, model and optimizer, loaders, and the state
// that a checkpoint saves. Made by run_training, filled by prepare_run, passed to each step by reference.
struct Run {
  Run(const TrainConfig& c, const TrainHooks& h)
      : config(c), hooks(h), dir(c.run_dir()), process_start(Clock::now()) {}
  Run(const Run&) = delete;
  Run& operator=(const Run&) = delete;

  const TrainConfig& config;
  const TrainHooks& hooks;
  const std::string dir;  // runs_dir/name
  const Clock::time_point process_start;
  bool tty = false;                // progress lines: not quiet, and stdout is a terminal
  std::optional<RunDirLock> lock;  // held from the run directory's creation to the run's end
  RunData run_data;
  Training training;
  std::unique_ptr<data::Loader> train_loader, val_loader;
  std::unique_ptr<data::WeightedSampler> sampler;  // oversample = true
  CheckpointState state;
  // The feature cache (train/feature_cache.h): the frozen prefix's outputs for the train and val images,
  // while the epoch's model allows one. With it an epoch's batches are the cached ones (cached_epoch)
  // instead of the train loader's. feature_cache_note: the last line said about it.
  FeatureCache train_features, val_features;
  int refused_stages = -1;  // a prefix the bound refused: not tried again
  CachedBatches cached_epoch;
  std::string feature_cache_note;
  bool said_cache_full = false;  // the decoded-image cache's bound
  double feature_cache_s = 0;    // spent computing caches, in this process

  int64_t num_classes() const { return int64_t(run_data.class_names.size()); }
  void print(const std::string& text) const {
    if (!hooks.quiet) fmt::print("{}", text), std::fflush(stdout);
  }
};

// A fresh run (resume = false) does not overwrite a run directory that holds a checkpoint.
void check_no_checkpoint(const std::string& run_dir, bool resume) {
  if (resume) return;
  THAW_CHECK(
      !std::filesystem::exists(checkpoint_path(run_dir)),
      "run directory '{}' already has a checkpoint: add --resume to continue that run, or choose another "
      "--name",
      run_dir);
}

// The checks that need no data, before any is read: the device is one this build has; check_no_checkpoint
// (made again once the directory is locked).
void check_before_reading(const TrainConfig& c, const std::string& run_dir, bool resume) {
  THAW_CHECK(!Device::parse(c.device).is_cuda() || cuda_runtime::built_with_cuda(),
             "device: '{}' requested, but this thaw was built without CUDA (use device = \"cpu\")", c.device);
  check_no_checkpoint(run_dir, resume);
}

// Creates the run directory and takes it: checked for space, locked (another live run in it is an error),
// checked again for a checkpoint, and cleared of the temporary and orphaned optimizer files a killed run
// left.
void take_run_dir(Run& run, const models::ResNet& model, bool resume) {
  prepare_run_dir(run.dir, bytes_needed(model));
  run.lock.emplace(run.dir);
  check_no_checkpoint(run.dir, resume);
  std::vector<std::string> removed = remove_stale_temp_files(run.dir);
  for (const std::string& name : remove_orphan_optimizer_files(run.dir))
    removed.push_back(name);
  if (!removed.empty())
    run.print(fmt::format("removed {} file(s) a killed run left half-written or unused in {}: {}\n",
                          removed.size(), run.dir, fmt::join(removed, ", ")));
}

// The final feature map's side for an input of image_size: the stem (conv 7x7/2, max pool 3x3/2) and the
// stride-2 stages layer2..layer4 each take a side h to (h - 1) / 2 + 1, as their paddings make it.
int64_t final_feature_side(int64_t image_size) {
  int64_t side = image_size;
  for (int i = 0; i < 5; ++i)
    side = (side - 1) / 2 + 1;
  return side;
}

// BatchNorm on batch statistics needs more than one value per channel; layer4's BatchNorms see batch x
// side x side of them. At image_size <= 32 (side 1) a batch of one image fails inside the kernel, so catch
// it here: batch_size 1 is an error naming both keys; a last batch of one image (train images = k *
// batch_size + 1) is dropped every epoch, as drop_last would, and said so. Returns whether to drop it.
bool drop_singleton_last_batch(const Run& run) {
  const TrainConfig& c = run.config;
  if (c.bn_mode != "train" || final_feature_side(c.image_size) > 1) return false;
  THAW_CHECK(c.batch_size > 1,
             "batch_size: 1 with image_size {}: BatchNorm on batch statistics needs more than one value per "
             "channel, and at image_size <= 32 layer4 sees 1x1 feature maps, so one image per batch is one "
             "value; use batch_size >= 2, image_size >= 33 or bn_mode = \"frozen\"",
             c.image_size);
  const int64_t train_images = int64_t(run.run_data.train.size());
  if (train_images % c.batch_size != 1) return false;
  THAW_CHECK(train_images > 1,
             "data: one training image at image_size {}: BatchNorm on batch statistics needs more than one "
             "value per channel; use more images, image_size >= 33 or bn_mode = \"frozen\"",
             c.image_size);
  if (!run.hooks.brief)
    run.print(fmt::format(
        "train: {} images in batches of {} leave a last batch of one image, too few for BatchNorm's batch "
        "statistics at image_size {} (1x1 feature maps in layer4): it is dropped every epoch (the shuffle "
        "picks another image each time)\n",
        train_images, c.batch_size, c.image_size));
  return true;
}

// The model (the run directory taken once the model's size is known), the data, the head (kept from the
// weights file or new), the freeze strategy, optimizer and schedule, the train and val loaders and the
// over-sampler.
void open_run(Run& run, bool resume) {
  const TrainConfig& c = run.config;
  FileHead file_head;
  std::shared_ptr<models::ResNet> model = build_model(c, file_head);
  take_run_dir(run, *model, resume);
  run.run_data = load_run_data(c);
  const std::string head = choose_head(c, run.run_data.class_names, file_head, *model);
  if (!resume && !run.hooks.brief) run.print(head);
  run.training = build_training(c, run.run_data, std::move(model));
  data::LoaderOptions train_options = loader_options(c, true);
  train_options.drop_last = drop_singleton_last_batch(run);
  run.train_loader = std::make_unique<data::Loader>(run.run_data.train, train_options);
  run.val_loader = std::make_unique<data::Loader>(run.run_data.val, loader_options(c, false));
  if (c.oversample) {
    const std::vector<int64_t>& labels = run.run_data.train_labels;
    const auto counts = data::count_labels(labels, run.num_classes());
    run.sampler = std::make_unique<data::WeightedSampler>(
        data::sample_weights(labels, data::class_weights(counts, data::ClassWeighting::InverseFrequency,
                                                         run.run_data.class_names, "oversample")),
        c.seed);
  }
}

// The state to start from: with resume, the checkpoint's (model and optimizer loaded into the run), after
// checking that the config differs from the checkpoint's in epochs and threads at most; else a fresh one.
// Writes config.toml either way.
void start_or_resume(Run& run, bool resume) {
  const std::string config_toml = train_config_toml(run.config);
  if (resume) {
    const CheckpointState saved = load_checkpoint(run.dir, nullptr, nullptr);
    const std::vector<std::string> diff =
        train_config_diff(train_config_from_toml(saved.config_toml), run.config);
    std::vector<std::string> blocking;
    for (const auto& line : diff)
      if (line.rfind("epochs:", 0) != 0 && line.rfind("threads:", 0) != 0) blocking.push_back(line);
    THAW_CHECK(blocking.empty(),
               "--resume: the config differs from the checkpoint's ({}); only epochs and threads "
               "may change",
               fmt::join(blocking, "; "));
    run.state = load_checkpoint(run.dir, run.training.model.get(), run.training.optimizer.get());
    run.print(fmt::format("resuming {} at epoch {} step {}\n", run.dir, run.state.epoch + 1, run.state.step));
  } else {
    run.state = CheckpointState{};
    run.state.config_toml = config_toml;
  }
  write_text_atomic(run.dir + "/config.toml", config_toml);
}

// "" for fp32; " in tf32", or " in tf32 (computed in fp32: ...)" (ops::conv2d_precision_note).
std::string precision_note(const TrainConfig& c) {
  const std::string note = ops::conv2d_precision_note(parse_precision(c.precision), Device::parse(c.device));
  return note.empty() ? note : " in " + note;
}

// Prepares the run up to its first step: check_before_reading, open_run, start_or_resume, and the header
// line (unless brief).
void prepare_run(Run& run, bool resume) {
  const TrainConfig& c = run.config;
  check_before_reading(c, run.dir, resume);
  open_run(run, resume);
  start_or_resume(run, resume);
  if (!run.hooks.brief) {
    const RunData& d = run.run_data;
    run.print(fmt::format(
        "thaw train {}: {} {} on {}{}, {} train / {} val / {} test images, {}x{}, batch {}, {} epochs\n",
        c.name, c.arch, c.task, Device::parse(c.device).str(), precision_note(c), d.train.size(),
        d.val.size(), d.test.size(), c.image_size, c.image_size, c.batch_size, c.epochs));
    if (c.device_transforms)
      run.print(
          fmt::format("data: the transforms run on {} (device_transforms){}\n", Device::parse(c.device).str(),
                      Device::parse(c.device).is_cpu() ? ", by one thread per batch: slower than the workers"
                                                       : ", from images downscaled as the cache keeps them"));
  }
  run.tty = !run.hooks.quiet && isatty(fileno(stdout));
}

// ---- the feature cache ----

// Brings the feature cache in line with the model as start_epoch left it (its mask and BatchNorm modes):
// computed when cacheable_prefix allows a prefix the cache does not hold, dropped when it allows none.
// Says what it did, or why there is no cache, whenever that changes (unless brief).
void update_feature_cache(Run& run) {
  const TrainConfig& c = run.config;
  models::ResNet& model = *run.training.model;
  const PrefixCut cut = c.feature_cache ? cacheable_prefix(model, c.augment) : PrefixCut{};
  if (cut.stages > 0 && (cut.stages == run.train_features.stages() || cut.stages == run.refused_stages))
    return;
  run.train_features = run.val_features = FeatureCache{};
  std::string note;
  if (!c.feature_cache) {
    note = "feature cache: off (feature_cache = false)";
  } else if (cut.stages == 0) {
    note = fmt::format("feature cache: not used: {}", cut.reason);
  } else {
    const size_t bound = size_t(c.feature_cache_mib) << 20;
    std::string refusal;
    FeatureCache train = FeatureCache::compute(model, cut.stages, run.run_data.train, loader_options(c, true),
                                               bound, &refusal);
    FeatureCache val;
    if (!train.empty())
      val = FeatureCache::compute(model, cut.stages, run.run_data.val, loader_options(c, false),
                                  bound - train.bytes(), &refusal);
    if (train.empty() || val.empty()) {
      run.refused_stages = cut.stages;
      note = fmt::format("feature cache: not used: {} (train and val together), over feature_cache_mib = {}",
                         refusal, c.feature_cache_mib);
    } else {
      note = fmt::format(
          "feature cache: {} is frozen and uses running BatchNorm statistics ({}): its outputs for {} train "
          "and {} val images were computed once ({:.1f} MiB, {:.1f} s); the epochs run {} on them",
          cut.prefix_text(), cut.reason, train.size(), val.size(),
          double(train.bytes() + val.bytes()) / 1048576.0, train.seconds() + val.seconds(), cut.rest_text());
      run.feature_cache_s += train.seconds() + val.seconds();
      run.train_features = std::move(train);
      run.val_features = std::move(val);
    }
  }
  if (note != run.feature_cache_note && !run.hooks.brief) run.print(note + "\n");
  run.feature_cache_note = note;
}

// The next training batch of the epoch: the train loader's, or with the feature cache the cached epoch's.
// False at the end of the epoch.
bool next_train_batch(Run& run, data::Batch& batch) {
  return run.train_features.empty() ? run.train_loader->next(batch) : run.cached_epoch.next(batch);
}

// The stage the batches' images enter the model at: 0 for images, the cached prefix's length with the cache.
int first_stage(const Run& run) {
  return run.train_features.empty() ? 0 : run.train_features.stages();
}

// Sets up epoch `epoch` (0-based) for training: its gradual-unfreezing stage, its scheduled learning rates,
// train mode, BatchNorm frozen from bn_frozen_from_epoch on, the feature cache (update_feature_cache), the
// epoch's order (seeded shuffle, or the over-sampler's draw) for the loader or the cached batches; skips the
// state.step batches a resumed checkpoint had already done. Returns the epoch's number of steps.
int64_t start_epoch(Run& run, int64_t epoch) {
  Training& t = run.training;
  const TrainConfig& c = run.config;
  if (t.gradual) t.gradual->apply(t.model->named_parameters(), epoch);
  optim::apply_lr_schedule(*t.optimizer, *t.schedule, t.base_lrs, epoch);
  t.model->train();
  if (c.bn_frozen_from_epoch > 0 && epoch + 1 >= c.bn_frozen_from_epoch) {  // also after a resume
    nn::set_batch_norm_mode(*t.model, {"*"}, nn::BatchNormMode::Frozen);
    if (epoch + 1 == c.bn_frozen_from_epoch && !run.hooks.brief)
      run.print(fmt::format("epoch {}: BatchNorm uses its running statistics from here on\n", epoch + 1));
  }
  update_feature_cache(run);
  if (!run.train_features.empty()) {
    const std::vector<int64_t> order = run.sampler
                                           ? run.sampler->epoch(uint64_t(epoch))
                                           : data::shuffled_order(run.train_loader->size(), c.seed, epoch);
    run.cached_epoch = CachedBatches(run.train_features, order, c.batch_size,
                                     run.train_loader->options().drop_last, Device::parse(c.device));
    data::Batch skipped;
    for (int64_t skip = 0; skip < run.state.step; ++skip)
      next_train_batch(run, skipped);
    return run.cached_epoch.size();
  }
  if (run.sampler) {
    run.train_loader->start_epoch(epoch, run.sampler->epoch(uint64_t(epoch)));
  } else {
    run.train_loader->start_epoch(epoch);
  }
  const int64_t steps = run.train_loader->batches_in_epoch();
  data::Batch skipped;
  for (int64_t skip = 0; skip < run.state.step; ++skip)
    run.train_loader->next(skipped);
  return steps;
}

// Stops the run on a loss that is not finite (step `step` of epoch `epoch`, both 0-based): throws
// "loss is NaN|Inf at epoch E step S; the run stops; last good checkpoint: ...".
[[noreturn]] void fail_on_diverged_loss(const Run& run, double loss, int64_t epoch, int64_t step) {
  if (run.tty) run.print("\n");
  fail("loss is {} at epoch {} step {}; the run stops; last good checkpoint: {}",
       std::isnan(loss) ? "NaN" : "Inf", epoch + 1, step + 1, last_checkpoint_text(run.dir));
}

// One optimizer step on `batch` (step `step` of epoch `epoch`, both 0-based): forward, the loss (passed
// through hooks.filter_loss), backward, the update; adds the batch's loss, correct predictions, images and
// compute time to state. A loss that is not finite throws before the update (fail_on_diverged_loss).
void train_step(Run& run, const data::Batch& batch, int64_t epoch, int64_t step, int64_t global_step) {
  const auto start = Clock::now();
  Training& t = run.training;
  const Tensor logits = t.model->forward_stages(batch.images, first_stage(run), models::ResNet::kStages);
  Tensor loss = t.loss(logits, batch.labels);
  double value = loss.item();
  if (run.hooks.filter_loss) value = run.hooks.filter_loss(global_step, value);
  if (!std::isfinite(value)) fail_on_diverged_loss(run, value, epoch, step);
  loss.backward();
  t.optimizer->step();
  t.optimizer->zero_grad();
  const std::vector<int64_t> predicted = predictions(logits);
  const std::vector<int64_t> labels = batch.labels.to_vector<int64_t>();
  for (size_t i = 0; i < labels.size(); ++i)
    run.state.train_correct += predicted[i] == labels[i];
  run.state.train_loss_sum += value * double(labels.size());
  run.state.train_seen += int64_t(labels.size());
  run.state.compute_s += seconds_since(start);
}

// Ctrl-C or SIGTERM inside epoch `epoch` (0-based) after `steps_done` of its steps: saves that position and
// the epoch's sums so far in the checkpoint, and says so.
void checkpoint_interrupted_epoch(Run& run, int64_t epoch, int64_t steps_done) {
  run.state.epoch = epoch, run.state.step = steps_done;
  save_checkpoint(run.dir, run.state, *run.training.model, *run.training.optimizer);
  run.print(
      fmt::format("{}interrupted{}: checkpoint written to {} (epoch {}, step {}); continue with --resume\n",
                  run.tty ? "\n" : "", g_interrupted ? fmt::format(" ({})", signal_text(g_interrupted)) : "",
                  checkpoint_path(run.dir), epoch + 1, steps_done));
}

// The evaluation of the run's val images after an epoch: on the feature cache's val outputs when it holds
// them, else on the val loader's images.
EvalResult evaluate_val(Run& run) {
  const FeatureCache& cache = run.val_features;
  if (cache.empty())
    return evaluate(*run.training.model, *run.val_loader, run.training.loss, run.num_classes());
  std::vector<int64_t> order(size_t(cache.size()));
  std::iota(order.begin(), order.end(), int64_t(0));
  CachedBatches batches(cache, order, run.config.batch_size, false, Device::parse(run.config.device));
  return evaluate_batches(
      *run.training.model, [&](data::Batch& batch) { return batches.next(batch); },
      [&](const Tensor& x) {
        return run.training.model->forward_stages(x, cache.stages(), models::ResNet::kStages);
      },
      cache.samples(), run.training.loss, run.num_classes());
}

// evaluate_it() for the run's `part` ("val", "test") after epoch `epoch` (0-based); outputs that are NaN or
// Inf (or an image that cannot be read) stop the run naming where, and the last good checkpoint.
EvalResult evaluate_part(Run& run, const char* part, int64_t epoch,
                         const std::function<EvalResult()>& evaluate_it) {
  try {
    return evaluate_it();
  } catch (const Error& e) {
    if (run.tty) run.print("\n");
    fail("{} after epoch {}: {}; the run stops; last good checkpoint: {}", part, epoch + 1, e.what(),
         last_checkpoint_text(run.dir));
  }
}

// Trains epoch `epoch` (0-based) from step state.step to its last batch, one train_step per batch, with a
// progress line on a terminal. Returns Interrupted when Ctrl-C (or hooks.interrupt_after) came during a step,
// after that step and the mid-epoch checkpoint; Completed after the last batch. Throws on a NaN/Inf loss.
TrainStatus train_epoch(Run& run, int64_t epoch) {
  const int64_t steps = start_epoch(run, epoch);
  data::Batch batch;
  for (int64_t step = run.state.step;; ++step) {
    const auto start = Clock::now();
    if (!next_train_batch(run, batch)) break;
    run.state.data_s += seconds_since(start);
    const int64_t global_step = epoch * steps + step + 1;
    train_step(run, batch, epoch, step, global_step);
    if (run.tty) run.print(progress_line(run.state, epoch, run.config.epochs, step + 1, steps));
    if (g_interrupted || (run.hooks.interrupt_after && run.hooks.interrupt_after(global_step))) {
      checkpoint_interrupted_epoch(run, epoch, step + 1);
      return TrainStatus::Interrupted;
    }
  }
  if (run.tty) run.print("\r\033[K");  // the epoch line replaces the progress line
  return TrainStatus::Completed;
}

// Epoch `epoch`'s (0-based) metrics from the train sums in `state` and the val evaluation; lr: the first
// parameter group's.
EpochMetrics epoch_metrics(const CheckpointState& state, int64_t epoch, const EvalResult& val, double lr) {
  const double seen = double(std::max<int64_t>(state.train_seen, 1));
  return {.epoch = epoch + 1,
          .train_loss = state.train_loss_sum / seen,
          .train_acc = double(state.train_correct) / seen,
          .val_loss = val.loss,
          .val_acc = val.accuracy,
          .lr = lr,
          .data_s = state.data_s,
          .compute_s = state.compute_s,
          .images_per_s = seen / std::max(state.data_s + state.compute_s, 1e-9)};
}

// Closes epoch `epoch` (0-based) after its last step: evaluates on val, appends the epoch's metrics to state
// and clears the train sums, rewrites metrics.csv and the checkpoint (position: the start of the next epoch)
// and prints the epoch line.
void record_epoch(Run& run, int64_t epoch) {
  Training& t = run.training;
  const EvalResult val = evaluate_part(run, "val", epoch, [&] { return evaluate_val(run); });
  CheckpointState& state = run.state;
  state.metrics.push_back(epoch_metrics(state, epoch, val, t.optimizer->groups()[0].lr));
  state.epoch = epoch + 1, state.step = 0;
  state.train_loss_sum = state.data_s = state.compute_s = 0;
  state.train_correct = state.train_seen = 0;
  write_text_atomic(run.dir + "/metrics.csv", metrics_csv(state.metrics));
  save_checkpoint(run.dir, state, *t.model, *t.optimizer);
  run.print(epoch_line(state.metrics.back(), run.config.epochs, lrs_text(*t.optimizer)));
  const data::LoaderStats stats = run.train_loader->stats();
  if (stats.cache_full_decodes > 0 && !run.said_cache_full) {
    const bool on_device = run.config.cache_on_device;
    run.print(fmt::format(
        "cache: full at cache_mib = {} ({} images, {:.1f} MiB kept{}); the other training images are decoded "
        "every epoch, to the same batches\n",
        run.config.cache_mib, on_device ? stats.device_cached_images : stats.cached_images,
        double(on_device ? stats.device_cached_bytes : stats.cached_bytes) / 1048576.0,
        on_device ? " on the device; an image too large to upload whole in one region stays out too" : ""));
    run.said_cache_full = true;
  }
}

// Whether Ctrl-C came after epoch `epoch`'s (0-based) last step (during its evaluation or saving): then the
// checkpoint record_epoch wrote is where the run stops, and it says so.
bool interrupted_after_epoch(const Run& run, int64_t epoch) {
  if (!g_interrupted) return false;
  run.print(fmt::format("interrupted ({}): checkpoint written to {} after epoch {}; continue with --resume\n",
                        signal_text(g_interrupted), checkpoint_path(run.dir), epoch + 1));
  return true;
}

// After the last epoch: evaluates on test, lists the files skip_bad left out, writes metrics.csv,
// summary.json, weights.h5 and the plots, and (unless brief) prints the test report and the outputs.
void finish_run(Run& run) {
  const TrainConfig& c = run.config;
  data::Loader test_loader(run.run_data.test, loader_options(c, false));
  const EvalResult test = evaluate_part(run, "test", c.epochs - 1, [&] {
    return evaluate(*run.training.model, test_loader, run.training.loss, run.num_classes());
  });
  std::set<std::string> bad_files;  // every loader's, and the feature caches' (which read the images too)
  for (const data::Loader* loader : {run.train_loader.get(), run.val_loader.get(), &test_loader})
    for (const std::string& file : loader->stats().bad_files)
      bad_files.insert(file);
  for (const FeatureCache* cache : {&run.train_features, &run.val_features})
    bad_files.insert(cache->bad_files().begin(), cache->bad_files().end());
  if (!bad_files.empty())
    run.print(fmt::format("skip_bad: left out {} undecodable files: {}\n", bad_files.size(),
                          fmt::join(bad_files, ", ")));
  write_text_atomic(run.dir + "/metrics.csv", metrics_csv(run.state.metrics));
  RunExtras extras{.this_process_s = seconds_since(run.process_start),
                   .feature_cache_s = run.feature_cache_s,
                   .feature_cache = run.feature_cache_note};
  const data::LoaderStats train_stats = run.train_loader->stats();
  for (const data::WorkerStats& w : train_stats.workers)
    extras.train_decode_s += w.decode_seconds, extras.train_transform_s += w.transform_seconds;
  extras.train_device_upload_s = train_stats.device_upload_seconds;
  extras.train_device_transform_s = train_stats.device_transform_seconds;
  write_summary(c, run.run_data, test, run.state.metrics, extras);
  write_final_weights(c, run.run_data, *run.training.model);
  report::write_run_plots(run.dir);
  if (run.hooks.brief) return;
  run.print(fmt::format("test: {}", format_eval_report(test, run.run_data.class_names)));
  run.print(fmt::format(
      "outputs in {}/: config.toml metrics.csv summary.json checkpoint.h5 weights.h5, and the plots: "
      "index.html (loss.svg accuracy.svg confusion.svg)\n",
      run.dir));
}

}  // namespace

int interrupt_exit_status() {
  return g_last_interrupt == SIGTERM ? 128 + SIGTERM : 128 + SIGINT;
}

TrainStatus run_training(const TrainConfig& c, bool resume, const TrainHooks& hooks) {
  Run run(c, hooks);
  prepare_run(run, resume);
  InterruptGuard interrupt;  // from the first step on, Ctrl-C or SIGTERM stops the run at a checkpoint
  for (int64_t epoch = run.state.epoch; epoch < c.epochs; ++epoch) {
    if (train_epoch(run, epoch) == TrainStatus::Interrupted) return TrainStatus::Interrupted;
    record_epoch(run, epoch);
    if (interrupted_after_epoch(run, epoch)) return TrainStatus::Interrupted;
  }
  finish_run(run);
  return TrainStatus::Completed;
}

}  // namespace thaw::train
