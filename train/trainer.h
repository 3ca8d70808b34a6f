// The training run behind `thaw train` (docs/training.md): data, model, freeze strategy, optimizer and
// schedule from a TrainConfig; the epoch loop with per-epoch metrics; checkpoints after every epoch (and on
// Ctrl-C) that resume bit-for-bit on the CPU; the final test evaluation and the outputs in runs/<name>/:
//   config.toml    the resolved config
//   metrics.csv    epoch,train_loss,train_acc,val_loss,val_acc,lr,data_s,compute_s,images_per_s
//   summary.json   test_accuracy, test_loss, per_class_accuracy, confusion, class_names, times, history
//   checkpoint.h5  model state, epoch/step, metrics so far, the name of the optimizer state file beside it
//   weights.h5     final weights (models/weights.h) + attributes task, image_size, class_names ('\n'-joined),
//                  head ("softmax" or "sigmoid": one output, class_names[1] when the logit > 0)
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "train/config.h"

namespace thaw::train {

// How a caller watches and steers a run. The callbacks are for tests (a NaN loss, a Ctrl-C at a chosen step)
// without touching the data or the signal; global_step counts steps from the run's start, 1-based (epoch e,
// step s of n: e * n + s + 1 with both 0-based).
struct TrainHooks {
  // Given each step's loss before the NaN/Inf check; the run goes on with what it returns (and stops if that
  // is not finite). Empty: the loss as computed.
  std::function<double(int64_t global_step, double loss)> filter_loss = nullptr;
  // Asked after each step; true acts as a Ctrl-C during that step (a SIGINT or SIGTERM the hook raises itself
  // acts as that signal). Empty: never.
  std::function<bool(int64_t global_step)> interrupt_after = nullptr;
  bool quiet = false;  // print nothing
  bool brief = false;  // print the progress and epoch lines only (no header, no test report)
};

enum class TrainStatus { Completed, Interrupted };

// Runs (or with resume, continues) the run. Throws thaw::Error for configuration, data and I/O problems, for
// a NaN/Inf loss ("loss is NaN at epoch E step S; last good checkpoint: ...") and for NaN/Inf outputs on the
// val or test images ("val after epoch E: the model's outputs are NaN for image '...' ..."); the checkpoint
// on disk is then the one of the last completed epoch. Ctrl-C (SIGINT) or SIGTERM finishes the current step,
// writes a checkpoint and returns Interrupted.
//
// The run owns its directory from the moment it is made (train/run_dir.h RunDirLock): another run in the same
// directory meanwhile is an error, as a fresh run into a directory that holds a checkpoint is. On taking the
// directory it removes what a killed run left: temporary files and optimizer states no checkpoint names.
// With a weights file, its fc is kept when it fits the run (the task's shape, and the file's task and
// class_names when it has them) unless config.new_head; else it is replaced by a new one from the seed.
// Either way a line says which (unless quiet or brief). At image_size <= 32, where layer4's feature maps are
// 1x1, batch_size 1 is an error and a last batch of one image is dropped every epoch (BatchNorm's batch
// statistics need two values).
TrainStatus run_training(const TrainConfig& config, bool resume, const TrainHooks& hooks = {});

// After run_training returned Interrupted: the exit status a command should end with, 130 after SIGINT
// (or hooks.interrupt_after), 143 after SIGTERM.
int interrupt_exit_status();

}  // namespace thaw::train
