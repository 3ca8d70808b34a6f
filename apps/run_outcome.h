// What a finished `thaw train` run came to, read back from its runs/<name>/summary.json: the numbers that
// `thaw demo` and `thaw reproduce` put in their comparison tables.
#pragma once

#include <string>
#include <vector>

namespace thaw::apps {

struct RunOutcome {
  std::string run_dir;
  double test_accuracy = 0;          // fraction, 0..1
  double train_seconds = 0;          // data + compute time of all epochs (the report's "compute time")
  std::vector<double> val_accuracy;  // per epoch, fractions
};

// True when run_dir holds summary.json and weights.h5, which a run writes only once it has finished.
bool run_finished(const std::string& run_dir);

// Throws thaw::Error naming the file on a missing file, a JSON error or a missing/mistyped key.
RunOutcome read_run_outcome(const std::string& run_dir);

}  // namespace thaw::apps
