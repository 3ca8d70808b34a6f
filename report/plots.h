// A run's plots, written without Python: loss.svg and accuracy.svg (train and val per epoch), confusion.svg
// (the test set's confusion matrix as a heatmap) and index.html that shows them with the run's summary.
// Inputs: RUN_DIR/metrics.csv and RUN_DIR/summary.json as `thaw train` writes them
// (docs/predict-and-plots.md). `thaw plots RUN_DIR` regenerates them. report/plots.cpp.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace thaw::report {

// One epoch of a training run: a row of metrics.csv (train/trainer.cpp writes it, read_metrics_csv reads it)
// and of the metrics table in a training checkpoint (train/checkpoint.h). Accuracies are fractions (or
// percentages, in a file from elsewhere); lr is the first parameter group's; the times are the epoch's
// training pass (loader waits, and forward + backward + step) and its throughput.
struct EpochMetrics {
  int64_t epoch = 0;  // 1-based
  double train_loss = 0, train_acc = 0, val_loss = 0, val_acc = 0;
  double lr = NAN, data_s = NAN, compute_s = NAN, images_per_s = NAN;  // NaN: not in the file read
};

// metrics.csv. Columns by header name, in any order; epoch, train_loss, train_acc, val_loss and val_acc are
// required; lr, data_s, compute_s and images_per_s are read when present; others are ignored. "nan" is
// accepted (the point is left out of the plot). Strict: a missing file, a missing column, a row with the
// wrong number of fields or a field that is not a number throws thaw::Error "path:line: column N (name):
// ...". At least one row.
std::vector<EpochMetrics> read_metrics_csv(const std::string& path);

// summary.json (trainer.cpp's write_summary): test_accuracy, test_loss (numbers), class_names (strings),
// per_class_accuracy (one number per class), confusion (C x C counts, rows = true class, columns =
// predicted class); and, when the file has them, times and history.
struct RunSummary {
  double test_accuracy = 0, test_loss = 0;
  std::vector<std::string> class_names;
  std::vector<double> per_class_accuracy;
  std::vector<std::vector<int64_t>> confusion;
  double train_seconds = NAN;        // times.train_data_s + times.train_compute_s; NaN without 'times'
  std::vector<double> val_accuracy;  // history[e].val_acc per epoch (NaN where null); empty without 'history'
  // precision.requested and precision.computed (core/precision.h), e.g. "tf32" and "fp32" on the CPU; empty
  // when the file has no 'precision' (runs from before it existed).
  std::string precision_requested, precision_computed;
};

// Throws thaw::Error naming the file (and the line for a JSON syntax error) on a missing key, a wrong type
// or inconsistent sizes.
RunSummary read_run_summary(const std::string& path);

// Reads run_dir/metrics.csv and run_dir/summary.json and writes loss.svg, accuracy.svg, confusion.svg and
// index.html into run_dir, each atomically (a temporary file renamed into place).
void write_run_plots(const std::string& run_dir);

// The pieces, for tests and other callers: each returns the whole document.
std::string loss_svg(const std::vector<EpochMetrics>& metrics);
std::string accuracy_svg(const std::vector<EpochMetrics>& metrics);
std::string confusion_svg(const RunSummary& summary);

// Several runs' validation accuracy per epoch in one chart (thaw demo's comparison.svg). Each run: its name
// and its val accuracy per epoch (fractions or percentages; epoch i + 1 for entry i).
using NamedCurve = std::pair<std::string, std::vector<double>>;
std::string val_accuracy_comparison_svg(const std::string& title, const std::vector<NamedCurve>& runs);

}  // namespace thaw::report
