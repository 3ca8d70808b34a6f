// The train command's configuration: a TOML file (toml++) plus `--key value` overrides, checked strictly and
// resolved into a TrainConfig. Every key, its default and its allowed values are in one table
// (train_config.cpp, kKeys; docs/training.md lists them). An unknown key, a value of the wrong type or out of
// range is a thaw::Error naming the key, where it came from (file:line or --key) and what is allowed.
// Defaults follow the report's protocol (docs/the-report.md).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace thaw::train {

// The crop sizes thaw train, eval and predict accept (image_size, --image-size, a weights file's image_size).
inline constexpr int64_t kMinImageSize = 8, kMaxImageSize = 4096;

struct TrainConfig {
  std::string name;  // run name: runs_dir/name; default the config file's stem
  std::string runs_dir = "runs";
  std::string arch = "resnet18";  // resnet18 | resnet50
  std::string task = "breeds";    // breeds | species
  std::string data;               // dataset root (required)
  std::string weights;            // torchvision weights (HDF5) or "none" for random init (required)
  bool new_head = false;          // a new fc even when the file's fits the task (trainer.cpp choose_head)
  std::string device = "cpu";
  std::string precision = "fp32";  // fp32 | tf32 | bf16 (core/precision.h)
  int64_t image_size = 224, resize_size = 256, batch_size = 32, epochs = 10, threads = 0, limit = 0;
  uint64_t seed = 42;
  bool cache = false;
  int64_t cache_mib = 4096;
  bool device_transforms = false;      // transforms as kernels on the device (data/device_transforms.h)
  bool cache_on_device = false;        // the decoded-image cache in device memory (data/loader.h)
  bool skip_bad = false;               // leave undecodable images out of their batch instead of stopping
  std::string loss = "cross_entropy";  // cross_entropy | bce ("auto" resolves by task)
  std::string optimizer = "sgd";       // sgd | adam | adamw
  double lr = 1e-3, momentum = 0.9, weight_decay = 0, eps = 1e-8;
  bool nesterov = true;
  std::vector<double> betas = {0.9, 0.999};
  std::string schedule = "step";  // none | step | cosine ("auto": step for cross_entropy, none for bce)
  int64_t step_size = 7;
  double gamma = 0.1;
  std::string trainable = "last_layers";  // last_layers | patterns | bn_only | gradual | all
  int64_t layers = 1;
  std::vector<std::string> patterns;
  bool bn_with_head = true;
  int64_t unfreeze_every = 2;
  std::vector<double> layer_lrs;  // gradual: lrs of layer4..layer1 (empty: all at lr)
  std::string bn_mode = "train";  // train | frozen
  // bn_mode = "train" only: from this epoch on (1-based) BatchNorm uses and keeps its running statistics, as
  // in the report's code from epoch 2 (docs/the-report.md); 0: never.
  int64_t bn_frozen_from_epoch = 0;
  bool augment = false;
  bool feature_cache = true;         // train/feature_cache.h
  int64_t feature_cache_mib = 2048;  // its bound
  std::string split = "normal";      // normal | imbalanced
  std::string majority = "dogs";
  std::string imbalance_rule = "seeded";  // seeded | report_code
  double val_fraction = 0.2, keep_fraction = 0.25;
  std::string class_weights = "none";  // none | report | inverse
  bool oversample = false;

  std::string run_dir() const { return runs_dir + "/" + name; }
  int64_t num_outputs() const;  // fc outputs: 1 for bce, else the task's classes
};

using Overrides = std::vector<std::pair<std::string, std::string>>;  // (key, value text) from the CLI

// The `--key value` / `--key=value` pairs a command line left over (CLI11's remaining()), as overrides.
// Throws naming an argument that is not a --key or a --key without its value.
Overrides overrides_from_args(const std::vector<std::string>& args);

// Reads config_path (may be "" for defaults only), applies the overrides in order, checks and resolves.
TrainConfig load_train_config(const std::string& config_path, const Overrides& overrides);

// A resolved config back from train_config_toml's text (as saved in a run directory and its checkpoint).
TrainConfig train_config_from_toml(const std::string& toml_text);

// The resolved config as TOML, every key present (what runs/<name>/config.toml holds).
std::string train_config_toml(const TrainConfig& config);

// The keys that differ between two resolved configs ("epochs: 10 -> 12"); empty when equal.
std::vector<std::string> train_config_diff(const TrainConfig& a, const TrainConfig& b);

// "--batch-size", "--batch_size", "batch_size" -> "batch_size".
std::string config_key_of_flag(const std::string& flag);

// Markdown table of every key (default, allowed values, meaning), for docs/training.md.
std::string train_config_keys_markdown();

// The run's CPU threads: threads > 0 sets the compute pool to that many (ops::set_cpu_threads; the GEMMs
// run inside it), 0 keeps its default (THAW_NUM_THREADS, else the CPUs this process may use). Returns the
// pool's size, which the caller gives the data loader as its worker count: one number for the whole run.
int apply_threads(int64_t threads);

}  // namespace thaw::train
