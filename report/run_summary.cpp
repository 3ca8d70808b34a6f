// Reading a run's summary.json back (run_outcome.h).
#include "report/run_summary.h"

#include <cmath>
#include <filesystem>

#include "core/error.h"

namespace thaw::report {

bool run_finished(const std::string& run_dir) {
  return std::filesystem::exists(run_dir + "/summary.json") &&
         std::filesystem::exists(run_dir + "/weights.h5");
}

RunOutcome read_run_outcome(const std::string& run_dir) {
  const std::string path = run_dir + "/summary.json";
  RunOutcome out = read_run_summary(path);
  THAW_CHECK(!std::isnan(out.train_seconds), "{}: no 'times' (the run's training time); not a finished run",
             path);
  THAW_CHECK(!out.val_accuracy.empty(), "{}: no 'history' (one entry per epoch); not a finished run", path);
  return out;
}

}  // namespace thaw::report
