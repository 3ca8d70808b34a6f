// The report's result tables (docs/the-report.md, section 5), as data: which experiments/*.toml run
// fills which row, and the report's own test accuracy and compute time for it. `thaw reproduce` prints
// these tables with thaw's numbers beside the report's.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "report/run_summary.h"

namespace thaw::report {

struct ReportRow {
  std::string experiment;  // experiments/<experiment>.toml
  std::string label;       // the row's label in the report ("Higher learning rate")
  double accuracy = -1;    // the report's test accuracy in %, -1 where the report gives none
  double seconds = -1;     // the report's compute time in s, -1 where the report gives none
};

struct ReportTable {
  std::string title;  // "5.2.1 Strategy 1: the last l layers (ResNet18, 37 breeds)"
  std::string row_header;
  std::vector<ReportRow> rows;
};

const std::vector<ReportTable>& report_tables();

// Every experiment named in report_tables(), in table order, each once (a baseline appears in two tables).
std::vector<std::string> report_experiments();

// What a reproduce run came to, per experiment: finished (outcome), failed (the error), or not run.
struct ExperimentResult {
  enum class State { NotRun, Finished, Failed } state = State::NotRun;
  RunOutcome outcome;
  std::string error;
};

// The tables that have at least one result, as markdown, thaw's test accuracy and training time beside the
// report's; rows whose experiment has no result say "not run" (or "failed: <error>"). header: lines printed
// above the tables (machine, date, overrides).
std::string report_tables_markdown(const std::map<std::string, ExperimentResult>& results,
                                   const std::string& header);

}  // namespace thaw::report
