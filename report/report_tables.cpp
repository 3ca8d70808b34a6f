// The report's numbers (report_tables.h), copied by hand from docs/the-report.md section 5; the
// experiment files say the same number in their first comment line. Accuracies in %, times in seconds.
#include "report/report_tables.h"

#include <fmt/format.h>

#include <algorithm>

namespace thaw::report {

const std::vector<ReportTable>& report_tables() {
  static const std::vector<ReportTable> tables = {
      {"5.1 Binary classification (ResNet18, cat/dog, fc only, BCE + Adam)",
       "Run",
       {{"binary_head_only", "Final layer only", 98.39, -1}}},
      {"5.2.1 Strategy 1: the last l layers (ResNet18, 37 breeds)",
       "Active layers l",
       {{"breeds_l1", "1", 86.56, -1},
        {"breeds_l2", "2", 88.33, -1},
        {"breeds_l3", "3", 88.91, -1},
        {"breeds_l4", "4", 89.32, -1},
        {"breeds_l5", "5", 89.07, -1}}},
      {"5.2.1 Strategy 1, other factors at l = 3",
       "Factor (l = 3)",
       {{"breeds_l3", "Baseline", 88.91, -1},
        {"breeds_l3_higher_lr", "Higher learning rate", 88.25, -1},
        {"breeds_l3_l2", "L2 regularization", 88.58, -1},
        {"breeds_l3_augment", "Data augmentation", 89.72, -1}}},
      {"5.2.2 Strategy 2: gradual unfreezing (ResNet18, 37 breeds)",
       "Factor",
       {{"gradual_base", "Baseline", 88.77, 208},
        {"gradual_higher_lr", "Higher learning rate", 88.85, 207},
        {"gradual_l2", "L2 regularization", 88.49, 208},
        {"gradual_augment", "Data augmentation", 85.34, 232},
        {"gradual_layerwise_lr", "Different learning rate on different layers", 88.69, 208}}},
      {"5.2.3 Imbalanced classes (dog majority), the last l layers",
       "Active layers l",
       {{"imbalanced_l1", "1", 75.85, -1},
        {"imbalanced_l2", "2", 83.37, -1},
        {"imbalanced_l3", "3", 85.93, -1},
        {"imbalanced_l4", "4", 84.98, -1},
        {"imbalanced_l5", "5", 85.17, -1}}},
      {"5.2.3 Imbalanced classes, other factors at l = 3",
       "Factor (l = 3)",
       {{"imbalanced_l3", "Baseline", 85.93, -1},
        {"imbalanced_l3_weighted_loss", "Weighted loss", 85.42, -1},
        {"imbalanced_l3_cat_majority", "Cat majority dataset", 83.13, -1},
        {"imbalanced_l3_oversample", "Over-sampling (not in the report's tables)", -1, -1}}},
      {"5.3.1 Deeper networks: ResNet50",
       "Optimizer, depth",
       {{"resnet50_l0_sgd", "SGD, l = 0", 90.49, -1},
        {"resnet50_l0_sgd_wd", "SGD with L2, l = 0", 90.71, -1},
        {"resnet50_l0_adamw", "AdamW, l = 0", 90.95, -1},
        {"resnet50_l1_sgd", "SGD, l = 1 (no table in the report)", -1, -1},
        {"resnet50_l1_sgd_wd", "SGD with L2, l = 1 (no table in the report)", -1, -1},
        {"resnet50_l1_adamw", "AdamW, l = 1 (no table in the report)", -1, -1},
        {"resnet50_l3_sgd", "SGD, l = 3", 91.99, -1},
        {"resnet50_l3_sgd_wd", "SGD with L2, l = 3", 91.74, -1},
        {"resnet50_l3_adamw", "AdamW, l = 3", 48.71, -1}}},
      {"5.3.2 Batch normalisation (ResNet18, 37 breeds)",
       "Unfrozen layers",
       {{"bn_head_only", "Final layer", 88.31, -1}, {"bn_head_and_bn", "Final + batch norm", 88.72, -1}}},
  };
  return tables;
}

std::vector<std::string> report_experiments() {
  std::vector<std::string> names;
  for (const ReportTable& table : report_tables())
    for (const ReportRow& row : table.rows)
      if (std::find(names.begin(), names.end(), row.experiment) == names.end())
        names.push_back(row.experiment);
  return names;
}

namespace {

std::string percent_or_dash(double percent) {
  return percent < 0 ? "-" : fmt::format("{:.2f}%", percent);
}

std::string seconds_or_dash(double seconds) {
  return seconds < 0 ? "-" : fmt::format("{:.0f} s", seconds);
}

}  // namespace

std::string report_tables_markdown(const std::map<std::string, ExperimentResult>& results,
                                   const std::string& header) {
  std::string md = "# The report's tables, reproduced by thaw\n\n" + header + "\n";
  for (const ReportTable& table : report_tables()) {
    const bool any_result = std::any_of(table.rows.begin(), table.rows.end(), [&](const ReportRow& row) {
      return results.count(row.experiment) > 0;
    });
    if (!any_result) continue;  // a --only run shows the tables it touched
    md += fmt::format(
        "\n## {}\n\n| {} | experiment | report | thaw | thaw - report | report time | thaw time |\n"
        "|---|---|---|---|---|---|---|\n",
        table.title, table.row_header);
    for (const ReportRow& row : table.rows) {
      const auto found = results.find(row.experiment);
      const ExperimentResult none;
      const ExperimentResult& r = found == results.end() ? none : found->second;
      std::string thaw = "not run", diff = "-", time = "-";
      if (r.state == ExperimentResult::State::Finished) {
        const double percent = 100 * r.outcome.test_accuracy;
        thaw = percent_or_dash(percent);
        if (row.accuracy >= 0) diff = fmt::format("{:+.2f}", percent - row.accuracy);
        time = seconds_or_dash(r.outcome.train_seconds);
      } else if (r.state == ExperimentResult::State::Failed) {
        thaw = "failed: " + r.error;
        for (char& c : thaw)
          if (c == '|' || c == '\n') c = ' ';  // keep the markdown row intact
      }
      md += fmt::format("| {} | {} | {} | {} | {} | {} | {} |\n", row.label, row.experiment,
                        percent_or_dash(row.accuracy), thaw, diff, seconds_or_dash(row.seconds), time);
    }
  }
  return md;
}

}  // namespace thaw::report
