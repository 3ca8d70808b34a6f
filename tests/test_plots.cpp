// thaw plots (report/plots.h): the SVGs and index.html written from a run's metrics.csv and summary.json, and
// the reader's errors naming the file and line.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "core/error.h"
#include "report/plots.h"
#include "report/run_summary.h"
#include "tests/support/catch.h"
#include "tests/support/scratch.h"

using namespace thaw;
namespace fs = std::filesystem;

namespace {

void write(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

const char* kMetrics =
    "epoch,train_loss,train_acc,val_loss,val_acc,lr,data_s,compute_s,images_per_s\n"
    "1,2.90,0.21,2.50,0.35,0.001,1.2,10.1,300\n"
    "2,1.80,0.52,1.60,0.58,0.001,1.1,10.0,310\n"
    "3,1.20,0.68,1.30,0.66,0.001,1.1,10.0,310\n"
    "4,0.90,0.76,1.20,0.70,0.0001,1.1,10.0,310\n";

const char* kSummary = R"({"test_accuracy": 0.75, "test_loss": 0.8,
  "class_names": ["Abyssinian", "american_bulldog", "Bengal & <friends>"],
  "per_class_accuracy": [0.8, 0.7, 0.75],
  "confusion": [[8, 1, 1], [2, 7, 1], [0, 1, 3]]})";

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
    ++n;
  return n;
}

// The points="..." of each polyline with class="series", by its data-series name.
std::map<std::string, int> series_points(const std::string& svg) {
  std::map<std::string, int> out;
  const std::regex polyline(R"re(<polyline class="series" data-series="([^"]*)"[^>]*points="([^"]*)")re");
  for (auto it = std::sregex_iterator(svg.begin(), svg.end(), polyline); it != std::sregex_iterator(); ++it) {
    std::istringstream points((*it)[2].str());
    std::string point;
    int n = 0;
    while (points >> point) {
      REQUIRE(std::regex_match(point, std::regex(R"(-?[0-9.]+,-?[0-9.]+)")));
      ++n;
    }
    out[(*it)[1].str()] = n;
  }
  return out;
}

// Root element and balance: starts with <svg xmlns=...>, ends with </svg>, one of each.
void check_svg_document(const std::string& svg) {
  REQUIRE(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0) == 0);
  REQUIRE(svg.find("</svg>") == svg.size() - std::string("</svg>\n").size());
  CHECK(svg.find("<svg", 1) == std::string::npos);
  // Raw '&' only as the start of an entity (XML well-formedness for escaped class names).
  CHECK_FALSE(std::regex_search(svg, std::regex("&(?!amp;|lt;|gt;|quot;)")));
  CHECK(std::count(svg.begin(), svg.end(), '<') == std::count(svg.begin(), svg.end(), '>'));
}

}  // namespace

TEST_CASE("write_run_plots: loss, accuracy and confusion SVGs and index.html") {
  test::TempDir dir;
  write(dir.path / "metrics.csv", kMetrics);
  write(dir.path / "summary.json", kSummary);
  report::write_run_plots(dir.path.string());

  const std::string loss = read(dir.path / "loss.svg"), accuracy = read(dir.path / "accuracy.svg");
  check_svg_document(loss);
  check_svg_document(accuracy);
  CHECK(series_points(loss) == std::map<std::string, int>{{"train", 4}, {"val", 4}});
  CHECK(series_points(accuracy) == std::map<std::string, int>{{"train", 4}, {"val", 4}});
  CHECK_THAT(loss, ContainsSubstring("Loss per epoch"));
  CHECK_THAT(loss, ContainsSubstring(">epoch</text>"));
  CHECK_THAT(accuracy, ContainsSubstring("accuracy (%)"));

  const std::string confusion = read(dir.path / "confusion.svg");
  check_svg_document(confusion);
  CHECK_THAT(confusion, ContainsSubstring(">Abyssinian</text>"));
  CHECK_THAT(confusion, ContainsSubstring(">american_bulldog</text>"));
  CHECK_THAT(confusion, ContainsSubstring(">Bengal &amp; &lt;friends&gt;</text>"));
  // Every class on both axes, one cell per pair.
  CHECK(count(confusion, "class=\"cell\"") == 9);
  CHECK(count(confusion, "class=\"row-label\"") == 3);
  CHECK(count(confusion, "class=\"col-label\"") == 3);

  const std::string html = read(dir.path / "index.html");
  CHECK_THAT(html, ContainsSubstring("<img src=\"loss.svg\""));
  CHECK_THAT(html, ContainsSubstring("<img src=\"accuracy.svg\""));
  CHECK_THAT(html, ContainsSubstring("<img src=\"confusion.svg\""));
  CHECK_THAT(html, ContainsSubstring("75.00%"));            // test accuracy, fractions shown as percentages
  CHECK_THAT(html, ContainsSubstring("70.00% (epoch 4)"));  // best val accuracy

  // No temporary files left behind; a second run overwrites in place.
  report::write_run_plots(dir.path.string());
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir.path)) {
    CHECK(entry.path().filename().string().find(".tmp") == std::string::npos);
    ++files;
  }
  CHECK(files == 6);
}

TEST_CASE("write_run_plots: 37 classes, a single epoch, percentages and nan") {
  test::TempDir dir;
  write(dir.path / "metrics.csv", "epoch,train_loss,train_acc,val_loss,val_acc\n1,3.5,4.2,nan,nan\n");
  std::string names, per_class, rows;
  for (int c = 0; c < 37; ++c) {
    names += fmt::format("{}\"breed_{}\"", c ? "," : "", c);
    per_class += fmt::format("{}{}", c ? "," : "", 50);
    std::string row;
    for (int k = 0; k < 37; ++k)
      row += fmt::format("{}{}", k ? "," : "", k == c ? 5 : k == (c + 1) % 37);
    rows += fmt::format("{}[{}]", c ? "," : "", row);
  }
  write(dir.path / "summary.json",
        fmt::format(R"({{"test_accuracy": 50, "test_loss": 2, "class_names": [{}], "per_class_accuracy": [{}],
                    "confusion": [{}]}})",
                    names, per_class, rows));
  report::write_run_plots(dir.path.string());
  const std::string confusion = read(dir.path / "confusion.svg");
  check_svg_document(confusion);
  for (int c = 0; c < 37; ++c)
    CHECK_THAT(confusion, ContainsSubstring(fmt::format(">breed_{}</text>", c)));
  const std::string accuracy = read(dir.path / "accuracy.svg");
  CHECK(series_points(accuracy) == std::map<std::string, int>{{"train", 1}, {"val", 0}});
  CHECK_THAT(read(dir.path / "index.html"), ContainsSubstring("50.00%"));  // already a percentage
}

TEST_CASE("read_metrics_csv: errors name the file, the line and the column") {
  test::TempDir dir;
  const fs::path csv = dir.path / "metrics.csv";
  const std::string header = "epoch,train_loss,train_acc,val_loss,val_acc\n";

  write(csv, header + "1,2.5,0.3,2.4,0.35\n2,1.9,zero,2.0,0.4\n");
  CHECK_THROWS_WITH(report::read_metrics_csv(csv.string()),
                    ContainsSubstring(csv.string() + ":3: column 3 (train_acc): 'zero' is not a number"));
  write(csv, header + "1,2.5,0.3,2.4\n");
  CHECK_THROWS_WITH(report::read_metrics_csv(csv.string()),
                    ContainsSubstring(csv.string() + ":2: 4 fields, the header has 5"));
  write(csv, header + "1,2.5,0.3,2.4,\n");
  CHECK_THROWS_WITH(report::read_metrics_csv(csv.string()),
                    ContainsSubstring(csv.string() + ":2: column 5 (val_acc): '' is not a number"));
  write(csv, "epoch,train_loss,train_acc,val_acc\n1,2,0.5,0.5\n");
  CHECK_THROWS_WITH(report::read_metrics_csv(csv.string()),
                    ContainsSubstring(csv.string() + ":1: the header has no 'val_loss' column"));
  write(csv, header + "2,1,0.5,1,0.5\n1,1,0.5,1,0.5\n");
  CHECK_THROWS_WITH(report::read_metrics_csv(csv.string()),
                    ContainsSubstring(csv.string() + ":3: epoch 1 does not follow epoch 2"));
  write(csv, header);
  CHECK_THROWS_WITH(report::read_metrics_csv(csv.string()), ContainsSubstring("no rows"));
  write(csv, header + "1,2.5,0.3,2.4,0.35\r\n");  // CRLF is fine
  CHECK(report::read_metrics_csv(csv.string()).size() == 1);

  // write_run_plots: a missing or bad file is named, and nothing is written.
  write(dir.path / "summary.json", kSummary);
  fs::remove(csv);
  CHECK_THROWS_WITH(report::write_run_plots(dir.path.string()), ContainsSubstring(csv.string()));
  write(csv, header + "1,2.5,0.3,2.4,0.35\n");
  write(dir.path / "summary.json", "{\"test_accuracy\": 0.5,\n  \"test_loss\": }");
  CHECK_THROWS_WITH(report::write_run_plots(dir.path.string()),
                    ContainsSubstring((dir.path / "summary.json").string() + ": not valid JSON") &&
                        ContainsSubstring("line 2"));
  write(dir.path / "summary.json", R"({"test_accuracy": 0.5, "test_loss": 1, "class_names": ["a", "b"],
    "per_class_accuracy": [1, 0], "confusion": [[1, 0]]})");
  CHECK_THROWS_WITH(report::write_run_plots(dir.path.string()),
                    ContainsSubstring("'confusion' has 1 rows for 2 class names"));
  write(dir.path / "summary.json", R"({"test_loss": 1})");
  CHECK_THROWS_WITH(report::write_run_plots(dir.path.string()), ContainsSubstring("no 'test_accuracy' key"));
  CHECK_FALSE(fs::exists(dir.path / "loss.svg"));
}

TEST_CASE("read_run_summary reads times and history when present and read_run_outcome requires them") {
  test::TempDir dir;
  const fs::path path = dir.path / "summary.json";
  write(path, kSummary);
  report::RunSummary s = report::read_run_summary(path.string());
  CHECK(std::isnan(s.train_seconds));
  CHECK(s.val_accuracy.empty());
  CHECK_THROWS_WITH(report::read_run_outcome(dir.path.string()),
                    ContainsSubstring(path.string()) && ContainsSubstring("no 'times'"));

  std::string finished = kSummary;
  finished.pop_back();  // the closing brace
  finished += R"(, "times": {"train_data_s": 1.5, "train_compute_s": 10.25},
    "history": [{"epoch": 1, "val_acc": 0.5}, {"epoch": 2, "val_acc": null}, {"epoch": 3, "val_acc": 0.75}]})";
  write(path, finished);
  const report::RunOutcome r = report::read_run_outcome(dir.path.string());
  CHECK(r.test_accuracy == 0.75);
  CHECK(r.train_seconds == 11.75);
  REQUIRE(r.val_accuracy.size() == 3);
  CHECK(r.val_accuracy[0] == 0.5);
  CHECK(std::isnan(r.val_accuracy[1]));  // an epoch without validation
  CHECK(r.val_accuracy[2] == 0.75);

  std::string bad = kSummary;
  bad.pop_back();
  write(path, bad + R"(, "times": {"train_data_s": "soon"}})");
  CHECK_THROWS_WITH(report::read_run_summary(path.string()), ContainsSubstring("no 'train_compute_s' key"));
  write(path, bad + R"(, "times": {"train_data_s": "soon", "train_compute_s": 1}})");
  CHECK_THROWS_WITH(report::read_run_summary(path.string()),
                    ContainsSubstring("times.train_data_s is string, expected a number"));
  write(path, bad + R"(, "history": [{"epoch": 1}]})");
  CHECK_THROWS_WITH(report::read_run_summary(path.string()),
                    ContainsSubstring("history[0] has no 'val_acc'"));
}

TEST_CASE("index.html names the precision, and the one computed where it differs") {
  test::TempDir dir;
  write(dir.path / "metrics.csv", kMetrics);
  std::string summary = kSummary;
  summary.pop_back();  // the closing brace
  write(dir.path / "summary.json", summary + R"(, "precision": {"requested": "tf32", "computed": "fp32"}})");
  report::write_run_plots(dir.path.string());
  CHECK_THAT(read(dir.path / "index.html"),
             ContainsSubstring("<tr><th>precision</th><td>tf32 (computed in fp32)</td></tr>"));

  write(dir.path / "summary.json", summary + R"(, "precision": {"requested": "bf16", "computed": "bf16"}})");
  report::write_run_plots(dir.path.string());
  CHECK_THAT(read(dir.path / "index.html"), ContainsSubstring("<tr><th>precision</th><td>bf16</td></tr>"));

  // A run from before the key existed shows no row; a malformed one is named.
  write(dir.path / "summary.json", kSummary);
  report::write_run_plots(dir.path.string());
  CHECK_THAT(read(dir.path / "index.html"), !ContainsSubstring("precision"));
  write(dir.path / "summary.json", summary + R"(, "precision": "tf32"})");
  CHECK_THROWS_WITH(report::write_run_plots(dir.path.string()),
                    ContainsSubstring("summary.json: 'precision' needs a string 'requested'"));
}
