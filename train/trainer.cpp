// The training run (trainer.h): setup from a TrainConfig, the epoch loop, checkpoints and outputs.
#include "train/trainer.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/atomic_write.h"
#include "core/cuda_runtime.h"
#include "core/error.h"
#include "data/pets.h"
#include "data/splits.h"
#include "models/weights.h"
#include "nn/losses.h"
#include "optim/freeze.h"
#include "optim/lr_schedule.h"
#include "report/plots.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/run_dir.h"

namespace thaw::train {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

volatile std::sig_atomic_t g_interrupted = 0;
extern "C" void on_sigint(int) {
  g_interrupted = 1;
}

// Installs the SIGINT handler for the run's lifetime and restores the previous one.
struct SigintGuard {
  using Handler = void (*)(int);
  Handler previous;
  SigintGuard() : previous(std::signal(SIGINT, on_sigint)) { g_interrupted = 0; }
  ~SigintGuard() { std::signal(SIGINT, previous); }
};

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

std::vector<std::string> task_class_names(const data::PetsDataset& ds, data::Task task) {
  if (task == data::Task::Species) return {"cat", "dog"};
  std::vector<std::string> names = ds.class_names;
  for (size_t c = 0; c < names.size(); ++c)
    if (names[c].empty()) names[c] = fmt::format("class{}", c);
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
  o.threads = int(c.threads);
  o.shuffle = train;
  o.seed = c.seed;
  o.transform.crop_size = c.image_size;
  o.transform.resize_size = c.resize_size;
  o.transform.augment = train && c.augment;
  o.cache = c.cache;
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

std::shared_ptr<models::ResNet> build_model(const TrainConfig& c) {
  Generator gen(c.seed);
  auto model = models::make_resnet(models::parse_arch(c.arch), c.num_outputs(), gen);
  if (c.weights != "none") models::load_weights(*model, c.weights, {/*replace_head=*/true});
  if (c.bn_mode == "frozen") nn::set_batch_norm_mode(*model, {"*"}, nn::BatchNormMode::Frozen);
  return model;
}

optim::GradualUnfreezing gradual_schedule(const TrainConfig& c) {
  const char* layers[4] = {"layer4", "layer3", "layer2", "layer1"};
  std::vector<optim::UnfreezeStage> stages = {{0, {"fc"}, c.lr, "fc"}};
  for (int64_t k = 0; k < 4; ++k)
    stages.push_back({(k + 1) * c.unfreeze_every,
                      {layers[k]},
                      c.layer_lrs.empty() ? c.lr : c.layer_lrs[size_t(k)],
                      layers[k]});
  return optim::GradualUnfreezing(stages);
}

Training build_training(const TrainConfig& c, const RunData& d, std::shared_ptr<models::ResNet> model) {
  Training t;
  t.model = std::move(model);
  const Device device = Device::parse(c.device);
  t.model->to(device);
  const nn::NamedTensors params = t.model->named_parameters();
  std::vector<optim::ParamGroup> groups;
  if (c.trainable == "gradual") {
    t.gradual = std::make_unique<optim::GradualUnfreezing>(gradual_schedule(c));
    groups = t.gradual->param_groups(params, c.weight_decay);
  } else {
    optim::FreezeMask mask = c.trainable == "last_layers" ? optim::last_layers(int(c.layers))
                             : c.trainable == "patterns"  ? optim::FreezeMask(c.patterns)
                             : c.trainable == "bn_only"   ? optim::bn_only(c.bn_with_head)
                                                          : optim::FreezeMask::everything();
    mask.apply(params);
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
          d.class_names);
      std::vector<float> wf(w.begin(), w.end());
      weights = Tensor::from_data<float>({int64_t(wf.size())}, wf).to(device);
    }
    const nn::CrossEntropyLoss ce(weights);
    t.loss = [ce](const Tensor& logits, const Tensor& labels) { return ce(logits, labels); };
  }
  return t;
}

// ---- outputs ----

std::string metrics_csv(const std::vector<MetricsRow>& rows) {
  std::string out = "epoch,train_loss,train_acc,val_loss,val_acc,lr,data_s,compute_s,images_per_s\n";
  for (const MetricsRow& r : rows)
    out += fmt::format("{},{},{},{},{},{},{:.3f},{:.3f},{:.1f}\n", int64_t(r[0]), r[1], r[2], r[3], r[4],
                       r[5], r[6], r[7], r[8]);
  return out;
}

nlohmann::json finite_or_null(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

void write_summary(const TrainConfig& c, const RunData& d, const EvalResult& test,
                   const std::vector<MetricsRow>& rows, double total_s) {
  nlohmann::json j;
  j["name"] = c.name;
  j["arch"] = c.arch;
  j["task"] = c.task;
  j["device"] = c.device;
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
  double data_s = 0, compute_s = 0;
  nlohmann::json history = nlohmann::json::array();
  for (const MetricsRow& r : rows) {
    data_s += r[6], compute_s += r[7];
    history.push_back({{"epoch", int64_t(r[0])},
                       {"train_loss", r[1]},
                       {"train_acc", r[2]},
                       {"val_loss", r[3]},
                       {"val_acc", r[4]},
                       {"lr", r[5]},
                       {"data_s", r[6]},
                       {"compute_s", r[7]},
                       {"images_per_s", r[8]}});
  }
  j["history"] = history;
  j["times"] = {{"train_data_s", data_s},
                {"train_compute_s", compute_s},
                {"test_s", test.seconds},
                {"this_process_s", total_s}};
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

}  // namespace

TrainHooks hooks_from_env() {
  TrainHooks h;
  if (const char* v = std::getenv("THAW_TEST_NAN_STEP")) h.nan_at_step = std::atoll(v);
  if (const char* v = std::getenv("THAW_TEST_INTERRUPT_STEP")) h.interrupt_at_step = std::atoll(v);
  return h;
}

TrainStatus run_training(const TrainConfig& c, bool resume, const TrainHooks& hooks) {
  const auto process_start = Clock::now();
  const Device device = Device::parse(c.device);
  THAW_CHECK(!device.is_cuda() || cuda_runtime::built_with_cuda(),
             "device: '{}' requested, but this thaw was built without CUDA (use device = \"cpu\")", c.device);
  const std::string run_dir = c.run_dir();
  const std::string config_toml = train_config_toml(c);
  auto print = [&](const std::string& text) {
    if (!hooks.quiet) fmt::print("{}", text), std::fflush(stdout);
  };

  // Pre-flight: the run directory, before any data is read.
  if (!resume) {
    THAW_CHECK(
        !std::filesystem::exists(checkpoint_path(run_dir)),
        "run directory '{}' already has a checkpoint: add --resume to continue that run, or choose another "
        "--name",
        run_dir);
  }
  std::shared_ptr<models::ResNet> model = build_model(c);
  prepare_run_dir(run_dir, bytes_needed(*model));

  const RunData d = load_run_data(c);
  Training t = build_training(c, d, std::move(model));
  data::Loader train_loader(d.train, loader_options(c, true));
  data::Loader val_loader(d.val, loader_options(c, false));
  std::unique_ptr<data::WeightedSampler> sampler;
  if (c.oversample) {
    const auto counts = data::count_labels(d.train_labels, int64_t(d.class_names.size()));
    sampler = std::make_unique<data::WeightedSampler>(
        data::sample_weights(
            d.train_labels,
            data::class_weights(counts, data::ClassWeighting::InverseFrequency, d.class_names)),
        c.seed);
  }

  CheckpointState state;
  if (resume) {
    state = load_checkpoint(run_dir, nullptr, nullptr);
    const std::vector<std::string> diff = train_config_diff(train_config_from_toml(state.config_toml), c);
    std::vector<std::string> blocking;
    for (const auto& line : diff)
      if (line.rfind("epochs:", 0) != 0 && line.rfind("threads:", 0) != 0) blocking.push_back(line);
    THAW_CHECK(blocking.empty(),
               "--resume: the config differs from the checkpoint's ({}); only epochs and threads "
               "may change",
               fmt::join(blocking, "; "));
    state = load_checkpoint(run_dir, t.model.get(), t.optimizer.get());
    print(fmt::format("resuming {} at epoch {} step {}\n", run_dir, state.epoch + 1, state.step));
  } else {
    state.config_toml = config_toml;
  }
  write_text_atomic(run_dir + "/config.toml", config_toml);

  if (!hooks.brief)
    print(fmt::format(
        "thaw train {}: {} {} on {}, {} train / {} val / {} test images, {}x{}, batch {}, {} epochs\n",
        c.name, c.arch, c.task, device.str(), d.train.size(), d.val.size(), d.test.size(), c.image_size,
        c.image_size, c.batch_size, c.epochs));
  const bool tty = !hooks.quiet && isatty(fileno(stdout));
  SigintGuard sigint;
  for (int64_t epoch = state.epoch; epoch < c.epochs; ++epoch) {
    if (t.gradual) t.gradual->apply(t.model->named_parameters(), epoch);
    optim::apply_lr_schedule(*t.optimizer, *t.schedule, t.base_lrs, epoch);
    t.model->train();
    if (sampler) {
      train_loader.start_epoch(epoch, sampler->epoch(uint64_t(epoch)));
    } else {
      train_loader.start_epoch(epoch);
    }
    const int64_t steps = train_loader.batches_in_epoch();
    data::Batch batch;
    for (int64_t skip = 0; skip < state.step; ++skip)
      train_loader.next(batch);  // resume inside an epoch
    for (int64_t step = state.step;; ++step) {
      auto t0 = Clock::now();
      if (!train_loader.next(batch)) break;
      state.data_s += seconds_since(t0);
      t0 = Clock::now();
      const Tensor logits = t.model->forward(batch.images);
      Tensor loss = t.loss(logits, batch.labels);
      double value = loss.item();
      const int64_t global_step = epoch * steps + step + 1;
      if (global_step == hooks.nan_at_step) value = std::nan("");
      if (!std::isfinite(value)) {
        if (tty) print("\n");
        fail("loss is {} at epoch {} step {}; the run stops; last good checkpoint: {}",
             std::isnan(value) ? "NaN" : "Inf", epoch + 1, step + 1, last_checkpoint_text(run_dir));
      }
      loss.backward();
      t.optimizer->step();
      t.optimizer->zero_grad();
      const std::vector<int64_t> predicted = predictions(logits);
      const std::vector<int64_t> labels = batch.labels.to_vector<int64_t>();
      for (size_t i = 0; i < labels.size(); ++i)
        state.train_correct += predicted[i] == labels[i];
      state.train_loss_sum += value * double(labels.size());
      state.train_seen += int64_t(labels.size());
      state.compute_s += seconds_since(t0);
      if (tty) print(progress_line(state, epoch, c.epochs, step + 1, steps));
      if (global_step == hooks.interrupt_at_step) g_interrupted = 1;
      if (g_interrupted) {
        state.epoch = epoch, state.step = step + 1;
        save_checkpoint(run_dir, state, *t.model, *t.optimizer);
        print(fmt::format(
            "{}interrupted: checkpoint written to {} (epoch {}, step {}); continue with --resume\n",
            tty ? "\n" : "", checkpoint_path(run_dir), epoch + 1, step + 1));
        return TrainStatus::Interrupted;
      }
    }
    if (tty) print("\r\033[K");  // the epoch line replaces the progress line
    const EvalResult val = evaluate(*t.model, val_loader, t.loss, int64_t(d.class_names.size()));
    const double seen = double(std::max<int64_t>(state.train_seen, 1));
    state.metrics.push_back({double(epoch + 1), state.train_loss_sum / seen,
                             double(state.train_correct) / seen, val.loss, val.accuracy,
                             t.optimizer->groups()[0].lr, state.data_s, state.compute_s,
                             seen / std::max(state.data_s + state.compute_s, 1e-9)});
    state.epoch = epoch + 1, state.step = 0;
    state.train_loss_sum = state.data_s = state.compute_s = 0;
    state.train_correct = state.train_seen = 0;
    write_text_atomic(run_dir + "/metrics.csv", metrics_csv(state.metrics));
    save_checkpoint(run_dir, state, *t.model, *t.optimizer);
    const MetricsRow& r = state.metrics.back();
    print(fmt::format(
        "epoch {}/{}  train loss {:.4f} acc {:.2f}%  val loss {:.4f} acc {:.2f}%  lr {}  data {:.1f} s "
        "compute {:.1f} s  {:.1f} img/s\n",
        epoch + 1, c.epochs, r[1], 100 * r[2], r[3], 100 * r[4], lrs_text(*t.optimizer), r[6], r[7], r[8]));
    if (g_interrupted) {
      print(fmt::format("interrupted: checkpoint written to {} after epoch {}; continue with --resume\n",
                        checkpoint_path(run_dir), epoch + 1));
      return TrainStatus::Interrupted;
    }
  }

  data::Loader test_loader(d.test, loader_options(c, false));
  const EvalResult test = evaluate(*t.model, test_loader, t.loss, int64_t(d.class_names.size()));
  for (const data::Loader* loader : {&train_loader, &val_loader, &test_loader}) {
    const data::LoaderStats stats = loader->stats();
    if (!stats.bad_files.empty())
      print(fmt::format("skip_bad: left out {} undecodable files: {}\n", stats.bad_files.size(),
                        fmt::join(stats.bad_files, ", ")));
  }
  write_text_atomic(run_dir + "/metrics.csv", metrics_csv(state.metrics));
  write_summary(c, d, test, state.metrics, seconds_since(process_start));
  write_final_weights(c, d, *t.model);
  report::write_run_plots(run_dir);
  if (hooks.brief) return TrainStatus::Completed;
  print(fmt::format("test: {}", format_eval_report(test, d.class_names)));
  print(fmt::format(
      "outputs in {}/: config.toml metrics.csv summary.json checkpoint.h5 weights.h5, and the plots: "
      "index.html (loss.svg accuracy.svg confusion.svg)\n",
      run_dir));
  return TrainStatus::Completed;
}

}  // namespace thaw::train
