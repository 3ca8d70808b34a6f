// thaw reproduce's tables (report/report_tables.h): they name exactly the experiments in experiments/, each
// report number agrees with the one its experiment file states, and the markdown puts thaw's numbers beside
// the report's. The command end to end runs as the ctest `reproduce_cli` (tests/CMakeLists.txt).
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include "report/report_tables.h"
#include "tests/support/catch.h"
#include "train/config.h"

namespace fs = std::filesystem;
using namespace thaw::train;
using namespace thaw::report;

namespace {

const fs::path kExperiments = fs::path(THAW_SOURCE_DIR) / "experiments";

// The comment lines at the top of a file, joined by spaces.
std::string leading_comment(const fs::path& path) {
  std::ifstream in(path);
  std::string text;
  for (std::string line; std::getline(in, line) && line.rfind('#', 0) == 0;)
    text += line + " ";
  return text;
}

ExperimentResult finished(double accuracy, double seconds) {
  ExperimentResult r;
  r.state = ExperimentResult::State::Finished;
  r.outcome.test_accuracy = accuracy;
  r.outcome.train_seconds = seconds;
  return r;
}

}  // namespace

TEST_CASE("reproduce: the report's tables name exactly the experiments in experiments/") {
  std::set<std::string> files;
  for (const auto& entry : fs::directory_iterator(kExperiments))
    if (entry.path().extension() == ".toml") files.insert(entry.path().stem().string());
  const std::vector<std::string> named = report_experiments();
  CHECK(std::set<std::string>(named.begin(), named.end()).size() == named.size());  // each once
  CHECK(std::set<std::string>(named.begin(), named.end()) == files);
  CHECK(named.size() == 33);
}

TEST_CASE("reproduce: each report number is the first one its experiment file's comment states") {
  const std::regex stated(R"(report (\d+\.\d+)%)");
  int checked = 0;
  for (const ReportTable& table : report_tables())
    for (const ReportRow& row : table.rows) {
      const fs::path path = kExperiments / (row.experiment + ".toml");
      const std::string line = leading_comment(path);
      std::smatch m;
      INFO(path.string() << ": " << line);
      if (row.accuracy < 0) {
        CHECK(line.find("not in the report's") != std::string::npos);
        continue;
      }
      REQUIRE(std::regex_search(line, m, stated));
      CHECK(std::stod(m[1]) == Approx(row.accuracy).margin(1e-9));
      // And the file is a valid config.
      CHECK_NOTHROW(load_train_config(path.string(), {{"data", "pets"}, {"weights", "none"}}));
      ++checked;
    }
  CHECK(checked == 31);  // 29 experiments with a report number; breeds_l3 and imbalanced_l3 in two tables
}

TEST_CASE("reproduce: the markdown puts thaw's numbers beside the report's") {
  std::map<std::string, ExperimentResult> results;
  results["breeds_l3"] = finished(0.9012, 61.4);
  results["gradual_base"] = finished(0.8801, 250.2);
  ExperimentResult failed;
  failed.state = ExperimentResult::State::Failed;
  failed.error = "loss is NaN | at step 3\nsee log";
  results["breeds_l4"] = failed;
  const std::string md = report_tables_markdown(results, "- header line\n");

  CHECK(md.find("- header line") != std::string::npos);
  // l = 3 row: report 88.91, thaw 90.12, +1.21 points, no report time, thaw 61 s.
  CHECK(md.find("| 3 | breeds_l3 | 88.91% | 90.12% | +1.21 | - | 61 s |") != std::string::npos);
  CHECK(md.find("| Baseline | breeds_l3 | 88.91% | 90.12% | +1.21 | - | 61 s |") != std::string::npos);
  CHECK(md.find("| Baseline | gradual_base | 88.77% | 88.01% | -0.76 | 208 s | 250 s |") !=
        std::string::npos);
  CHECK(md.find("| 1 | breeds_l1 | 86.56% | not run | - | - | - |") != std::string::npos);
  // A failure's text cannot break the row.
  CHECK(md.find("| 4 | breeds_l4 | 89.32% | failed: loss is NaN   at step 3 see log | - | - | - |") !=
        std::string::npos);
  // Tables without any result are left out.
  CHECK(md.find("ResNet50") == std::string::npos);
  CHECK(md.find("5.2.2 Strategy 2") != std::string::npos);
}
