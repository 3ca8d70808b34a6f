// What a finished `thaw train` run came to, read back from its runs/<name>/summary.json: the numbers that
// `thaw demo` and `thaw reproduce` put in their comparison tables (test accuracy, training time, validation
// accuracy per epoch). The reader is plots.h's read_run_summary; this adds what a finished run must have.
#pragma once

#include <string>

#include "report/plots.h"

namespace thaw::report {

using RunOutcome = RunSummary;

// True when run_dir holds summary.json and weights.h5, which a run writes only once it has finished.
bool run_finished(const std::string& run_dir);

// read_run_summary of run_dir/summary.json, which must also have its 'times' and 'history'. Throws
// thaw::Error naming the file on a missing file, a JSON error or a missing/mistyped key.
RunOutcome read_run_outcome(const std::string& run_dir);

}  // namespace thaw::report
