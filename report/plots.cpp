// thaw plots RUN_DIR and write_run_plots (report/plots.h): a strict reader for metrics.csv, summary.json
// through nlohmann_json, and hand-written SVG (the output format only) for the loss and accuracy curves and
// the confusion matrix, plus an index.html that shows them.
#include "report/plots.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/atomic_write.h"
#include "core/error.h"

namespace thaw::report {

namespace fs = std::filesystem;

namespace {

// ---- Reading ----

std::vector<std::string> split_fields(const std::string& line) {
  std::vector<std::string> fields(1);
  for (char c : line) {
    if (c == ',') {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  return fields;
}

std::string trimmed(const std::string& s) {
  const size_t begin = s.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(" \t") - begin + 1);
}

double parse_number(const std::string& text, const std::string& where) {
  const std::string s = trimmed(text);
  char* end = nullptr;
  const double value = s.empty() ? 0 : std::strtod(s.c_str(), &end);
  THAW_CHECK(!s.empty() && end == s.c_str() + s.size(), "{}: '{}' is not a number", where, text);
  return value;
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// ---- Charts ----

// A round tick step (1, 2 or 5 times a power of ten) that cuts range into about `target` pieces.
double nice_step(double range, int target) {
  if (!(range > 0)) return 1;
  const double raw = range / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / magnitude;
  return (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * magnitude;
}

std::string tick_label(double value, double step) {
  const int decimals = step >= 1 ? 0 : int(std::ceil(-std::log10(step) - 1e-9));
  return fmt::format("{:.{}f}", std::abs(value) < step * 1e-6 ? 0.0 : value, decimals);
}

struct Series {
  std::string name, color;
  std::vector<std::pair<double, double>> points;  // (epoch, value); non-finite values are left out
};

struct Chart {
  std::string title, y_label;
  bool y_from_zero = true;
  double y_ceiling = INFINITY;  // the y axis never goes above this (100 for accuracy in %)
  bool legend_top = true;       // top right (falling curves) or bottom right (rising curves)
  std::vector<Series> series;
};

constexpr double kWidth = 640, kHeight = 400, kLeft = 72, kRight = 24, kTop = 44, kBottom = 56;

std::string line_chart_svg(const Chart& chart) {
  double x_min = INFINITY, x_max = -INFINITY, y_min = INFINITY, y_max = -INFINITY;
  for (const Series& s : chart.series)
    for (const auto& [x, y] : s.points) {
      x_min = std::min(x_min, x), x_max = std::max(x_max, x);
      y_min = std::min(y_min, y), y_max = std::max(y_max, y);
    }
  if (!std::isfinite(x_min)) x_min = 0, x_max = 1;
  if (x_max - x_min < 1) x_min -= 0.5, x_max += 0.5;
  if (!std::isfinite(y_min)) y_min = 0, y_max = 1;
  if (chart.y_from_zero) y_min = std::min(0.0, y_min);
  if (y_max - y_min < 1e-12) y_max = y_min + 1;
  const double y_step = nice_step(y_max - y_min, 5);
  y_min = std::floor(y_min / y_step + 1e-9) * y_step;
  y_max = std::min(std::ceil(y_max / y_step - 1e-9) * y_step, std::max(chart.y_ceiling, y_min + y_step));
  const double x_step = std::max(1.0, std::round(nice_step(x_max - x_min, 8)));

  const double plot_w = kWidth - kLeft - kRight, plot_h = kHeight - kTop - kBottom;
  auto px = [&](double x) { return kLeft + (x - x_min) / (x_max - x_min) * plot_w; };
  auto py = [&](double y) { return kTop + (1 - (y - y_min) / (y_max - y_min)) * plot_h; };

  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"{0}\" height=\"{1}\" fill=\"white\"/>\n"
      "<text x=\"{2}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">{3}</text>\n",
      kWidth, kHeight, kLeft + plot_w / 2, xml_escape(chart.title));
  // Grid and ticks.
  for (double y = y_min; y <= y_max + y_step * 1e-6; y += y_step) {
    svg += fmt::format(
        "<line x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\" stroke=\"#ddd\"/>\n"
        "<text x=\"{3}\" y=\"{4:.1f}\" text-anchor=\"end\">{5}</text>\n",
        kLeft, py(y), kLeft + plot_w, kLeft - 6, py(y) + 4, tick_label(y, y_step));
  }
  for (double x = std::ceil(x_min); x <= x_max + 1e-9; x += x_step) {
    svg += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"#eee\"/>\n"
        "<text x=\"{0:.1f}\" y=\"{3}\" text-anchor=\"middle\">{4}</text>\n",
        px(x), kTop, kTop + plot_h, kTop + plot_h + 18, tick_label(x, 1));
  }
  svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#333\"/>\n",
                     kLeft, kTop, plot_w, plot_h);
  svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">epoch</text>\n", kLeft + plot_w / 2,
                     kHeight - 14);
  svg += fmt::format("<text transform=\"translate(18 {}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n",
                     kTop + plot_h / 2, xml_escape(chart.y_label));
  // One polyline per series, a marker with its value per point, and the legend on a white box.
  const double legend_y = chart.legend_top ? kTop + 8 : kTop + plot_h - 8 - 18 * double(chart.series.size());
  size_t longest_name = 4;
  for (const Series& s : chart.series)
    longest_name = std::max(longest_name, s.name.size());
  const double legend_w = std::max(96.0, 40 + 7 * double(longest_name));
  const double legend_x = kLeft + plot_w - legend_w - 20;
  svg += fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"white\" fill-opacity=\"0.85\" "
      "stroke=\"#ccc\"/>\n",
      legend_x, legend_y, legend_w, 18 * double(chart.series.size()) + 2);
  for (size_t i = 0; i < chart.series.size(); ++i) {
    const Series& s = chart.series[i];
    std::vector<std::string> coords;
    for (const auto& [x, y] : s.points)
      coords.push_back(fmt::format("{:.1f},{:.1f}", px(x), py(y)));
    svg += fmt::format(
        "<polyline class=\"series\" data-series=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\" "
        "points=\"{}\"/>\n",
        xml_escape(s.name), s.color, fmt::join(coords, " "));
    for (const auto& [x, y] : s.points) {
      svg += fmt::format(
          "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"><title>{} epoch {}: "
          "{:.4g}</title></circle>\n",
          px(x), py(y), s.color, xml_escape(s.name), x, y);
    }
    const double ly = legend_y + 10 + 18 * double(i), lx = legend_x + 8;
    svg += fmt::format(
        "<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"{3}\" stroke-width=\"2\"/>\n"
        "<text x=\"{4}\" y=\"{5}\">{6}</text>\n",
        lx, ly, lx + 24, s.color, lx + 30, ly + 4, xml_escape(s.name));
  }
  svg += "</svg>\n";
  return svg;
}

// Accuracies may be fractions (0..1) or percentages; shown as percentages either way.
double percent_scale(const std::vector<double>& values) {
  for (double v : values)
    if (std::isfinite(v) && v > 1.0) return 1;
  return 100;
}

Series series_of(const std::string& name, const std::string& color, const std::vector<EpochMetrics>& metrics,
                 double EpochMetrics::*field, double scale) {
  Series s{name, color, {}};
  for (const EpochMetrics& m : metrics) {
    const double v = m.*field;
    if (std::isfinite(v)) s.points.emplace_back(double(m.epoch), v * scale);
  }
  return s;
}

constexpr const char* kTrainColor = "#1f77b4";
constexpr const char* kValColor = "#d62728";

// The row-normalised share of cell (r, c), 0 for an empty row.
double row_share(const RunSummary& s, size_t r, size_t c) {
  int64_t total = 0;
  for (int64_t n : s.confusion[r])
    total += n;
  return total > 0 ? double(s.confusion[r][c]) / double(total) : 0;
}

std::string shade(double share) {  // white -> dark blue
  auto mix = [&](int from, int to) { return int(std::lround(from + (to - from) * share)); };
  return fmt::format("rgb({},{},{})", mix(255, 8), mix(255, 48), mix(255, 107));
}

std::string index_html(const std::vector<EpochMetrics>& metrics, const RunSummary& summary,
                       const std::string& run_name) {
  std::vector<double> accuracies{summary.test_accuracy};
  for (const EpochMetrics& m : metrics)
    accuracies.push_back(m.train_acc), accuracies.push_back(m.val_acc);
  accuracies.insert(accuracies.end(), summary.per_class_accuracy.begin(), summary.per_class_accuracy.end());
  const double scale = percent_scale(accuracies);
  auto pct = [&](double v) {
    return std::isfinite(v) ? fmt::format("{:.2f}%", v * scale) : std::string("-");
  };
  auto num = [](double v) { return std::isfinite(v) ? fmt::format("{:.4f}", v) : std::string("-"); };

  const EpochMetrics* best = nullptr;
  for (const EpochMetrics& m : metrics)
    if (std::isfinite(m.val_acc) && (!best || m.val_acc > best->val_acc)) best = &m;
  const EpochMetrics& last = metrics.back();

  std::string html = fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>thaw run {0}</title>\n"
      "<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}"
      "table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:2px 8px;"
      "text-align:right}}th{{background:#f4f4f4}}td.name{{text-align:left}}img{{max-width:100%}}</style>\n"
      "</head>\n<body>\n<h1>thaw run {0}</h1>\n<table>\n"
      "<tr><th>test accuracy</th><td>{1}</td></tr>\n<tr><th>test loss</th><td>{2}</td></tr>\n"
      "<tr><th>epochs</th><td>{3}</td></tr>\n"
      "<tr><th>last epoch: train loss / acc</th><td>{4} / {5}</td></tr>\n"
      "<tr><th>last epoch: val loss / acc</th><td>{6} / {7}</td></tr>\n",
      xml_escape(run_name), pct(summary.test_accuracy), num(summary.test_loss), metrics.size(),
      num(last.train_loss), pct(last.train_acc), num(last.val_loss), pct(last.val_acc));
  if (best) {
    html += fmt::format("<tr><th>best val accuracy</th><td>{} (epoch {})</td></tr>\n", pct(best->val_acc),
                        best->epoch);
  }
  if (!summary.precision_requested.empty()) {
    const bool same = summary.precision_computed == summary.precision_requested;
    html += fmt::format("<tr><th>precision</th><td>{}{}</td></tr>\n", xml_escape(summary.precision_requested),
                        same ? "" : fmt::format(" (computed in {})", xml_escape(summary.precision_computed)));
  }
  html +=
      "</table>\n<h2>Loss</h2>\n<img src=\"loss.svg\" alt=\"train and val loss per epoch\">\n"
      "<h2>Accuracy</h2>\n<img src=\"accuracy.svg\" alt=\"train and val accuracy per epoch\">\n"
      "<h2>Confusion matrix (test set)</h2>\n<img src=\"confusion.svg\" alt=\"confusion matrix\">\n"
      "<h2>Per-class test accuracy</h2>\n<table>\n<tr><th>class</th><th>name</th><th>images</th>"
      "<th>accuracy</th></tr>\n";
  for (size_t c = 0; c < summary.class_names.size(); ++c) {
    int64_t images = 0;
    for (int64_t n : summary.confusion[c])
      images += n;
    html += fmt::format("<tr><td>{}</td><td class=\"name\">{}</td><td>{}</td><td>{}</td></tr>\n", c,
                        xml_escape(summary.class_names[c]), images, pct(summary.per_class_accuracy[c]));
  }
  html +=
      "</table>\n<h2>Per epoch</h2>\n<table>\n<tr><th>epoch</th><th>train loss</th><th>train acc</th>"
      "<th>val loss</th><th>val acc</th></tr>\n";
  for (const EpochMetrics& m : metrics) {
    html += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n", m.epoch,
                        num(m.train_loss), pct(m.train_acc), num(m.val_loss), pct(m.val_acc));
  }
  html += "</table>\n</body>\n</html>\n";
  return html;
}

}  // namespace

std::vector<EpochMetrics> read_metrics_csv(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  THAW_CHECK(in.is_open(), "{}: cannot open (no metrics.csv: was the run finished?)", path);
  std::string line;
  int64_t line_no = 0;
  std::vector<std::string> header;
  std::map<std::string, size_t> column;
  std::vector<EpochMetrics> rows;
  const char* required[] = {"epoch", "train_loss", "train_acc", "val_loss", "val_acc"};
  const std::pair<const char*, double EpochMetrics::*> optional[] = {
      {"lr", &EpochMetrics::lr},
      {"data_s", &EpochMetrics::data_s},
      {"compute_s", &EpochMetrics::compute_s},
      {"images_per_s", &EpochMetrics::images_per_s}};
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (trimmed(line).empty()) continue;
    THAW_CHECK(line.find('"') == std::string::npos, "{}:{}: quoted fields are not supported", path, line_no);
    std::vector<std::string> fields = split_fields(line);
    if (header.empty()) {
      header = fields;
      for (size_t i = 0; i < header.size(); ++i) {
        header[i] = trimmed(header[i]);
        THAW_CHECK(column.emplace(header[i], i).second, "{}:{}: column {} ('{}') appears twice", path,
                   line_no, i + 1, header[i]);
      }
      for (const char* name : required)
        THAW_CHECK(column.count(name), "{}:{}: the header has no '{}' column (header: '{}')", path, line_no,
                   name, line);
      continue;
    }
    THAW_CHECK(fields.size() == header.size(), "{}:{}: {} fields, the header has {} (line: '{}')", path,
               line_no, fields.size(), header.size(), line);
    auto get = [&](const char* name) {
      const size_t i = column.at(name);
      return parse_number(fields[i], fmt::format("{}:{}: column {} ({})", path, line_no, i + 1, name));
    };
    EpochMetrics m;
    const double epoch = get("epoch");
    THAW_CHECK(std::isfinite(epoch) && epoch == std::floor(epoch),
               "{}:{}: column {} (epoch): '{}' is not "
               "an integer",
               path, line_no, column.at("epoch") + 1, fields[column.at("epoch")]);
    m.epoch = int64_t(epoch);
    m.train_loss = get("train_loss"), m.train_acc = get("train_acc");
    m.val_loss = get("val_loss"), m.val_acc = get("val_acc");
    for (auto [name, field] : optional)
      if (column.count(name)) m.*field = get(name);
    THAW_CHECK(rows.empty() || m.epoch > rows.back().epoch, "{}:{}: epoch {} does not follow epoch {}", path,
               line_no, m.epoch, rows.empty() ? 0 : rows.back().epoch);
    rows.push_back(m);
  }
  THAW_CHECK(!header.empty(), "{}: empty file (expected a header line and one row per epoch)", path);
  THAW_CHECK(!rows.empty(), "{}: a header but no rows (no epoch finished)", path);
  return rows;
}

RunSummary read_run_summary(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  THAW_CHECK(in.is_open(), "{}: cannot open (no summary.json: was the run finished?)", path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    fail("{}: not valid JSON: {}", path, e.what());
  }
  THAW_CHECK(j.is_object(), "{}: expected a JSON object at the top", path);
  auto field = [&](const char* key) -> const nlohmann::json& {
    THAW_CHECK(j.contains(key), "{}: no '{}' key", path, key);
    return j.at(key);
  };
  auto number = [&](const nlohmann::json& v, const std::string& what) {
    THAW_CHECK(v.is_number() || v.is_null(), "{}: {} is {}, expected a number", path, what, v.type_name());
    return v.is_null() ? NAN : v.get<double>();
  };
  auto array = [&](const nlohmann::json& v, const std::string& what) -> const nlohmann::json& {
    THAW_CHECK(v.is_array(), "{}: {} is {}, expected an array", path, what, v.type_name());
    return v;
  };
  RunSummary s;
  s.test_accuracy = number(field("test_accuracy"), "'test_accuracy'");
  s.test_loss = number(field("test_loss"), "'test_loss'");
  for (const auto& name : array(field("class_names"), "'class_names'")) {
    THAW_CHECK(name.is_string(), "{}: 'class_names' holds a {}, expected strings", path, name.type_name());
    s.class_names.push_back(name.get<std::string>());
  }
  const size_t n = s.class_names.size();
  THAW_CHECK(n >= 1, "{}: 'class_names' is empty", path);
  const nlohmann::json& per_class = array(field("per_class_accuracy"), "'per_class_accuracy'");
  THAW_CHECK(per_class.size() == n, "{}: 'per_class_accuracy' has {} entries for {} class names", path,
             per_class.size(), n);
  for (size_t c = 0; c < n; ++c)
    s.per_class_accuracy.push_back(number(per_class[c], fmt::format("per_class_accuracy[{}]", c)));
  const nlohmann::json& confusion = array(field("confusion"), "'confusion'");
  THAW_CHECK(confusion.size() == n, "{}: 'confusion' has {} rows for {} class names", path, confusion.size(),
             n);
  for (size_t r = 0; r < n; ++r) {
    const nlohmann::json& row = array(confusion[r], fmt::format("confusion[{}]", r));
    THAW_CHECK(row.size() == n, "{}: confusion[{}] has {} entries for {} class names", path, r, row.size(),
               n);
    s.confusion.emplace_back();
    for (size_t c = 0; c < n; ++c) {
      const double v = number(row[c], fmt::format("confusion[{}][{}]", r, c));
      THAW_CHECK(v >= 0 && v == std::floor(v), "{}: confusion[{}][{}] = {} is not a count", path, r, c, v);
      s.confusion.back().push_back(int64_t(v));
    }
  }
  if (j.contains("times")) {
    const nlohmann::json& times = j.at("times");
    THAW_CHECK(times.is_object(), "{}: 'times' is {}, expected an object", path, times.type_name());
    for (const char* key : {"train_data_s", "train_compute_s"})
      THAW_CHECK(times.contains(key), "{}: 'times' has no '{}' key", path, key);
    s.train_seconds = number(times.at("train_data_s"), "times.train_data_s") +
                      number(times.at("train_compute_s"), "times.train_compute_s");
  }
  if (j.contains("precision")) {
    const nlohmann::json& p = j.at("precision");
    auto text = [&](const char* key) {
      THAW_CHECK(
          p.is_object() && p.contains(key) && p.at(key).is_string(),
          "{}: 'precision' needs a string '{}' (e.g. {{\"requested\": \"tf32\", \"computed\": \"tf32\"}})",
          path, key);
      return p.at(key).get<std::string>();
    };
    s.precision_requested = text("requested");
    s.precision_computed = text("computed");
  }
  if (j.contains("history")) {
    const nlohmann::json& history = array(j.at("history"), "'history'");
    for (size_t e = 0; e < history.size(); ++e) {
      THAW_CHECK(history[e].is_object() && history[e].contains("val_acc"), "{}: history[{}] has no 'val_acc'",
                 path, e);
      s.val_accuracy.push_back(number(history[e].at("val_acc"), fmt::format("history[{}].val_acc", e)));
    }
  }
  return s;
}

std::string loss_svg(const std::vector<EpochMetrics>& metrics) {
  Chart chart{"Loss per epoch", "cross-entropy loss", true, INFINITY, true, {}};
  chart.series.push_back(series_of("train", kTrainColor, metrics, &EpochMetrics::train_loss, 1));
  chart.series.push_back(series_of("val", kValColor, metrics, &EpochMetrics::val_loss, 1));
  return line_chart_svg(chart);
}

std::string accuracy_svg(const std::vector<EpochMetrics>& metrics) {
  std::vector<double> values;
  for (const EpochMetrics& m : metrics)
    values.push_back(m.train_acc), values.push_back(m.val_acc);
  const double scale = percent_scale(values);
  Chart chart{"Accuracy per epoch", "accuracy (%)", false, 100, false, {}};
  chart.series.push_back(series_of("train", kTrainColor, metrics, &EpochMetrics::train_acc, scale));
  chart.series.push_back(series_of("val", kValColor, metrics, &EpochMetrics::val_acc, scale));
  return line_chart_svg(chart);
}

std::string val_accuracy_comparison_svg(const std::string& title, const std::vector<NamedCurve>& runs) {
  static const char* kPalette[] = {"#d62728", "#1f77b4", "#2ca02c", "#9467bd",
                                   "#ff7f0e", "#8c564b", "#7f7f7f"};
  std::vector<double> values;
  for (const auto& [name, curve] : runs)
    values.insert(values.end(), curve.begin(), curve.end());
  const double scale = percent_scale(values);
  Chart chart{title, "validation accuracy (%)", true, 100, false, {}};
  for (size_t i = 0; i < runs.size(); ++i) {
    Series s{runs[i].first, kPalette[i % std::size(kPalette)], {}};
    for (size_t e = 0; e < runs[i].second.size(); ++e)
      if (std::isfinite(runs[i].second[e])) s.points.emplace_back(double(e + 1), runs[i].second[e] * scale);
    chart.series.push_back(std::move(s));
  }
  return line_chart_svg(chart);
}

std::string confusion_svg(const RunSummary& summary) {
  const size_t n = summary.class_names.size();
  const double cell = n > 20 ? 18 : n > 8 ? 30 : 64, font = n > 20 ? 8 : 11;
  size_t longest = 0;
  for (const std::string& name : summary.class_names)
    longest = std::max(longest, name.size());
  const double label = 6.5 * double(longest) + 12;  // room for the class names (11 px font)
  const double left = 28 + label, top = 48, side = cell * double(n), bar_x = left + side + 24;
  const double width = std::max(bar_x + 80, 560.0), height = top + side + label + 36;
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0:.0f}\" height=\"{1:.0f}\" viewBox=\"0 0 {0:.0f} "
      "{1:.0f}\" font-family=\"sans-serif\" font-size=\"11\">\n"
      "<rect width=\"{0:.0f}\" height=\"{1:.0f}\" fill=\"white\"/>\n"
      "<text x=\"{2:.1f}\" y=\"22\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">"
      "Confusion matrix (test set)</text>\n"
      "<text x=\"{2:.1f}\" y=\"38\" text-anchor=\"middle\" fill=\"#555\">rows: true class, columns: "
      "predicted class; shading: share of the row, numbers: image counts</text>\n",
      width, height, width / 2);
  for (size_t r = 0; r < n; ++r) {
    const double y = top + cell * double(r);
    svg += fmt::format("<text class=\"row-label\" x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n",
                       left - 6, y + cell / 2 + 4, xml_escape(summary.class_names[r]));
    for (size_t c = 0; c < n; ++c) {
      const double x = left + cell * double(c), share = row_share(summary, r, c);
      const int64_t count = summary.confusion[r][c];
      svg += fmt::format(
          "<rect class=\"cell\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{}\" height=\"{}\" fill=\"{}\" "
          "stroke=\"{}\"><title>true {}, predicted {}: {} ({:.1f}% of the row)</title></rect>\n",
          x, y, cell, cell, shade(share), r == c ? "#888" : "#eee", xml_escape(summary.class_names[r]),
          xml_escape(summary.class_names[c]), count, 100 * share);
      if (count > 0) {
        svg += fmt::format(
            "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" font-size=\"{}\" fill=\"{}\">{}</text>\n",
            x + cell / 2, y + cell / 2 + font * 0.35, font, share > 0.5 ? "white" : "black", count);
      }
    }
  }
  for (size_t c = 0; c < n; ++c) {  // predicted-class names below the matrix, reading upwards
    const double x = left + cell * (double(c) + 0.5) + 4, y = top + side + 6;
    svg += fmt::format(
        "<text class=\"col-label\" x=\"{0:.1f}\" y=\"{1:.1f}\" text-anchor=\"end\" "
        "transform=\"rotate(-90 {0:.1f} {1:.1f})\">{2}</text>\n",
        x, y, xml_escape(summary.class_names[c]));
  }
  svg += fmt::format(
      "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"none\" stroke=\"#333\"/>\n"
      "<text transform=\"translate(14 {:.1f}) rotate(-90)\" text-anchor=\"middle\">true class</text>\n"
      "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">predicted class</text>\n",
      left, top, side, side, top + side / 2, left + side / 2, height - 10);
  // Colour scale: share of the row, 0% to 100%.
  const double bar_h = std::max(100.0, std::min(side, 240.0));
  for (int i = 0; i < 10; ++i) {
    svg += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"16\" height=\"{:.1f}\" fill=\"{}\"/>\n",
                       bar_x, top + bar_h * (1 - (i + 1) / 10.0), bar_h / 10 + 0.5, shade((i + 0.5) / 10));
  }
  svg += fmt::format(
      "<rect x=\"{0:.1f}\" y=\"{1:.1f}\" width=\"16\" height=\"{2:.1f}\" fill=\"none\" stroke=\"#333\"/>\n"
      "<text x=\"{3:.1f}\" y=\"{4:.1f}\">100%</text>\n<text x=\"{3:.1f}\" y=\"{5:.1f}\">0%</text>\n",
      bar_x, top, bar_h, bar_x + 20, top + 8, top + bar_h);
  svg += "</svg>\n";
  return svg;
}

void write_run_plots(const std::string& run_dir) {
  const fs::path dir(run_dir);
  THAW_CHECK(fs::is_directory(dir), "{}: not a directory", run_dir);
  const std::vector<EpochMetrics> metrics = read_metrics_csv((dir / "metrics.csv").string());
  const RunSummary summary = read_run_summary((dir / "summary.json").string());
  std::string name = fs::absolute(dir).lexically_normal().filename().string();
  if (name.empty()) name = fs::absolute(dir).lexically_normal().parent_path().filename().string();
  write_text_atomic((dir / "loss.svg").string(), loss_svg(metrics));
  write_text_atomic((dir / "accuracy.svg").string(), accuracy_svg(metrics));
  write_text_atomic((dir / "confusion.svg").string(), confusion_svg(summary));
  write_text_atomic((dir / "index.html").string(), index_html(metrics, summary, name));
}

}  // namespace thaw::report
