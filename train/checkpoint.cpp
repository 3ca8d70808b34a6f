// Checkpoints of a training run (checkpoint.h).
#include "train/checkpoint.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <regex>

#include "core/error.h"
#include "core/finite.h"
#include "core/hdf5_file.h"

namespace thaw::train {

namespace {

constexpr const char* kFormat = "thaw-checkpoint-1";
constexpr int64_t kMetricsColumns = 9;

// The `metrics` dataset's row of one epoch: its fields in metrics.csv's column order.
std::vector<double> metrics_row(const EpochMetrics& m) {
  std::vector<double> row = {double(m.epoch), m.train_loss, m.train_acc, m.val_loss, m.val_acc};
  row.insert(row.end(), {m.lr, m.data_s, m.compute_s, m.images_per_s});
  return row;
}

// The inverse of metrics_row; row: kMetricsColumns values.
EpochMetrics metrics_of_row(const double* row) {
  EpochMetrics m;
  m.epoch = int64_t(row[0]);
  m.train_loss = row[1], m.train_acc = row[2], m.val_loss = row[3], m.val_acc = row[4];
  m.lr = row[5], m.data_s = row[6], m.compute_s = row[7], m.images_per_s = row[8];
  return m;
}

}  // namespace

std::string checkpoint_path(const std::string& run_dir) {
  return run_dir + "/checkpoint.h5";
}

void save_checkpoint(const std::string& run_dir, const CheckpointState& state, const models::ResNet& model,
                     const optim::Optimizer& optimizer) {
  for (const auto& [name, t] : model.state_dict()) {
    const int64_t bad = first_non_finite(t);
    THAW_CHECK(
        bad < 0,
        "checkpoint not written: the model's '{}' holds a non-finite value at element {}; {} stays the "
        "last good checkpoint",
        name, bad, checkpoint_path(run_dir));
  }
  std::string previous_optimizer_file;
  if (std::filesystem::exists(checkpoint_path(run_dir)))
    previous_optimizer_file = H5File::open(checkpoint_path(run_dir)).attr_string("optimizer_file");
  const std::string optimizer_file = fmt::format("optimizer-e{}-s{}.h5", state.epoch, state.step);
  optimizer.save_state(run_dir + "/" + optimizer_file);

  H5File file = H5File::create(checkpoint_path(run_dir));
  for (const auto& [name, t] : model.state_dict())
    file.write("model/" + name, t);
  if (!state.metrics.empty()) {
    std::vector<double> flat;
    for (const EpochMetrics& m : state.metrics) {
      const std::vector<double> row = metrics_row(m);
      flat.insert(flat.end(), row.begin(), row.end());
    }
    file.write("metrics", Tensor::from_data<double>({int64_t(state.metrics.size()), kMetricsColumns}, flat));
  }
  file.set_attr("format", std::string(kFormat));
  file.set_attr("epoch", state.epoch);
  file.set_attr("step", state.step);
  file.set_attr("train_loss_sum", state.train_loss_sum);
  file.set_attr("train_correct", state.train_correct);
  file.set_attr("train_seen", state.train_seen);
  file.set_attr("data_s", state.data_s);
  file.set_attr("compute_s", state.compute_s);
  file.set_attr("config", state.config_toml);
  file.set_attr("optimizer_file", optimizer_file);
  file.commit();
  if (!previous_optimizer_file.empty() && previous_optimizer_file != optimizer_file)
    std::filesystem::remove(run_dir + "/" + previous_optimizer_file);
}

CheckpointState load_checkpoint(const std::string& run_dir, models::ResNet* model,
                                optim::Optimizer* optimizer) {
  const std::string path = checkpoint_path(run_dir);
  THAW_CHECK(std::filesystem::exists(path), "no checkpoint to resume: '{}' does not exist", path);
  const H5File file = H5File::open(path);
  THAW_CHECK(file.has_attr("format") && file.attr_string("format") == kFormat,
             "'{}' is not a thaw checkpoint (format attribute is not {})", path, kFormat);
  CheckpointState s;
  s.epoch = file.attr_int("epoch");
  s.step = file.attr_int("step");
  s.train_loss_sum = file.attr_double("train_loss_sum");
  s.train_correct = file.attr_int("train_correct");
  s.train_seen = file.attr_int("train_seen");
  s.data_s = file.attr_double("data_s");
  s.compute_s = file.attr_double("compute_s");
  s.config_toml = file.attr_string("config");
  if (file.has("metrics")) {
    const Tensor m = file.read("metrics");
    THAW_CHECK(m.dim() == 2 && m.size(1) == kMetricsColumns, "'{}': metrics must be (epochs, {})", path,
               kMetricsColumns);
    const std::vector<double> flat = m.to_vector<double>();
    for (int64_t r = 0; r < m.size(0); ++r)
      s.metrics.push_back(metrics_of_row(&flat[size_t(r * kMetricsColumns)]));
  }
  if (model) {
    std::map<std::string, Tensor> tensors;
    for (const auto& [name, t] : model->state_dict()) {
      THAW_CHECK(file.has("model/" + name), "'{}': the checkpoint has no 'model/{}'", path, name);
      tensors[name] = file.read("model/" + name);
      const int64_t bad = first_non_finite(tensors[name]);
      THAW_CHECK(
          bad < 0,
          "'{}': 'model/{}' holds a non-finite value (NaN or Inf) at element {}: not a good checkpoint "
          "to resume from",
          path, name, bad);
    }
    model->load_state_dict(tensors);
  }
  if (optimizer) optimizer->load_state(run_dir + "/" + file.attr_string("optimizer_file"));
  return s;
}

std::vector<std::string> remove_orphan_optimizer_files(const std::string& run_dir) {
  std::string named;  // the checkpoint's own optimizer file, kept
  if (std::filesystem::exists(checkpoint_path(run_dir))) {
    try {
      named = H5File::open(checkpoint_path(run_dir)).attr_string("optimizer_file");
    } catch (const Error&) {
      return {};  // a checkpoint that cannot be read: leave everything for the user to look at
    }
  }
  static const std::regex optimizer_name(R"(optimizer-e[0-9]+-s[0-9]+\.h5)");
  std::vector<std::string> removed;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(run_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name == named || !std::regex_match(name, optimizer_name)) continue;
    if (std::filesystem::remove(entry.path(), ec)) removed.push_back(name);
  }
  std::sort(removed.begin(), removed.end());
  return removed;
}

}  // namespace thaw::train
