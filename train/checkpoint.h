// The train command's checkpoint: everything a run needs to continue bit-for-bit on the CPU. The shuffles,
// the augmentation and the over-sampler are pure functions of (seed, epoch, sample), so with the model, the
// optimizer state and the position (epoch, step within it) nothing else is needed.
//
// runs/<name>/checkpoint.h5: model/<state dict name> datasets; `metrics` (epochs done x 9, float64: an
// EpochMetrics per row, its fields in metrics.csv's column order, the epoch as a float64); attributes format
// "thaw-checkpoint-1", epoch (0-based epoch in progress or next), step (batches of that epoch already done),
// the train accumulators of the partial epoch, config (the resolved TOML), optimizer_file (the optimizer
// state, optim's save_state format, a file beside it whose name carries epoch and step: it is written first
// and the previous one removed after checkpoint.h5 is replaced, so the pair is always consistent).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "models/resnet.h"
#include "optim/optimizer.h"
#include "report/plots.h"

namespace thaw::train {

using report::EpochMetrics;  // one row of metrics.csv

// Where a run stands: the position, the sums of the epoch in progress (its steps so far), the finished
// epochs' metrics and the resolved config.
struct CheckpointState {
  int64_t epoch = 0, step = 0;  // 0-based epoch in progress (or next), steps of it done
  double train_loss_sum = 0, data_s = 0, compute_s = 0;
  int64_t train_correct = 0, train_seen = 0;
  std::vector<EpochMetrics> metrics;  // one per finished epoch
  std::string config_toml;
};

std::string checkpoint_path(const std::string& run_dir);  // run_dir/checkpoint.h5

// Writes the optimizer state file, then checkpoint.h5 (atomically), then removes the previous optimizer file.
// A model state holding NaN or Inf is not saved: that is an Error naming the tensor, and the checkpoint on
// disk stays the last good one.
void save_checkpoint(const std::string& run_dir, const CheckpointState& state, const models::ResNet& model,
                     const optim::Optimizer& optimizer);

// Reads the state; with model/optimizer given, loads them too. A model tensor or optimizer buffer holding
// NaN or Inf is an Error naming the file and the tensor (such a checkpoint is not a good one).
CheckpointState load_checkpoint(const std::string& run_dir, models::ResNet* model,
                                optim::Optimizer* optimizer);

// Removes the optimizer-e<E>-s<S>.h5 files in run_dir that its checkpoint does not name (every one when
// there is no checkpoint): what a run killed between writing the optimizer state and the checkpoint left.
// Nothing is removed when the checkpoint cannot be read. Call it only with the run directory's lock held.
// Returns the names removed, sorted.
std::vector<std::string> remove_orphan_optimizer_files(const std::string& run_dir);

}  // namespace thaw::train
