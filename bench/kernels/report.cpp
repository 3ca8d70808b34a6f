// thaw bench kernels: totals and the three report forms (terminal table, markdown, JSON).
#include "bench/kernels/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/atomic_write.h"
#include "core/error.h"

namespace thaw::bench {

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::Passed:
      return "passed";
    case Verdict::Incorrect:
      return "incorrect";
    case Verdict::Unsupported:
      return "unsupported";
  }
  return "?";
}

double ratio(const RowResult& row) {
  return row.thaw_ms > 0 && row.ref_ms > 0 ? row.thaw_ms / row.ref_ms : -1;
}

double achieved(const RowResult& row) {
  if (row.thaw_ms <= 0) return -1;
  const double seconds = row.thaw_ms * 1e-3;
  return is_conv(row.problem.op) ? row.problem.flops() / seconds * 1e-12
                                 : row.problem.bytes() / seconds * 1e-9;
}

double peak_fraction(const RowResult& row, const Peaks& peaks) {
  const double got = achieved(row), peak = is_conv(row.problem.op) ? peaks.sgemm_tflops : peaks.copy_gbps;
  return got > 0 && peak > 0 ? got / peak : -1;
}

std::vector<NetworkTotal> network_totals(const std::vector<RowResult>& rows) {
  std::vector<NetworkTotal> totals;
  for (const RowResult& row : rows) {
    for (const auto& [model, uses] : row.problem.uses) {
      auto it = std::find_if(totals.begin(), totals.end(), [&](const NetworkTotal& t) {
        return t.model == model && t.batch == row.problem.n;
      });
      if (it == totals.end()) {
        NetworkTotal total;
        total.model = model;
        total.batch = row.problem.n;
        totals.push_back(total);
        it = totals.end() - 1;
      }
      const bool counted = row.verdict == Verdict::Passed && row.thaw_ms > 0 && row.ref_ms > 0;
      if (!counted) {
        it->rows_left_out += 1;
        continue;
      }
      it->rows_counted += 1;
      it->thaw_ms += double(uses) * row.thaw_ms;
      it->ref_ms += double(uses) * row.ref_ms;
      const std::string op = op_name(row.problem.op);
      auto by = std::find_if(it->by_op.begin(), it->by_op.end(), [&](const auto& b) { return b.op == op; });
      if (by == it->by_op.end()) {
        it->by_op.push_back({op});
        by = it->by_op.end() - 1;
      }
      by->thaw_ms += double(uses) * row.thaw_ms;
      by->ref_ms += double(uses) * row.ref_ms;
    }
  }
  return totals;
}

std::vector<RowResult> worst_rows(const std::vector<RowResult>& rows, size_t count) {
  std::vector<RowResult> timed;
  for (const RowResult& row : rows)
    if (ratio(row) > 0) timed.push_back(row);
  std::stable_sort(timed.begin(), timed.end(),
                   [](const RowResult& a, const RowResult& b) { return ratio(a) > ratio(b); });
  if (timed.size() > count) timed.resize(count);
  return timed;
}

namespace {

std::string ms_str(double ms) {
  return ms > 0 ? fmt::format("{:.3f}", ms) : "-";
}
std::string ratio_str(double r) {
  return r > 0 ? fmt::format("{:.2f}x", r) : "-";
}
std::string achieved_str(const RowResult& row) {
  const double a = achieved(row);
  if (a <= 0) return "-";
  return is_conv(row.problem.op) ? fmt::format("{:.1f} TFLOP/s", a) : fmt::format("{:.0f} GB/s", a);
}
std::string fraction_str(double f) {
  return f > 0 ? fmt::format("{:.0f}%", f * 100) : "-";
}
std::string error_str(const RowResult& row) {
  return row.verdict == Verdict::Unsupported ? "-" : fmt::format("{:.1e}", row.error);
}
// "resnet18 layer1.0.conv1 (+3 more)"
std::string layers_str(const Problem& p) {
  if (p.layers.empty()) return "";
  return p.layers.size() == 1 ? p.layers[0] : fmt::format("{} (+{} more)", p.layers[0], p.layers.size() - 1);
}
// "r18 x2, r50 x4"
std::string uses_str(const Problem& p) {
  std::string s;
  for (const auto& [model, uses] : p.uses) {
    if (!s.empty()) s += ", ";
    s += fmt::format("{} x{}", model == "resnet18" ? "r18" : model == "resnet50" ? "r50" : model, uses);
  }
  return s;
}
std::string header(const RunInfo& info) {
  return fmt::format(
      "{}, {}, reference: {}, median of {} after warm-up, L2 flushed between repeats\n"
      "measured peaks: copy {:.0f} GB/s, SGEMM {:.1f} TFLOP/s\n",
      info.device, info.precision, info.reference, info.repeat, info.peaks.copy_gbps,
      info.peaks.sgemm_tflops);
}

}  // namespace

std::string format_table_head(const RunInfo& info) {
  return header(info) + fmt::format("{:<24} {:<26} {:>9} {:>9} {:>7} {:>14} {:>5} {:<11} {:>8}  {}\n", "op",
                                    "shape", "thaw ms", "ref ms", "ratio", "achieved", "peak", "verdict",
                                    "error", "reference algorithm; layers");
}

std::string format_table_row(const RunInfo& info, const RowResult& row) {
  std::string tail = row.algorithm.empty() ? "" : row.algorithm + "; ";
  tail += layers_str(row.problem);
  if (!row.note.empty()) tail += " -- " + row.note;
  return fmt::format("{:<24} {:<26} {:>9} {:>9} {:>7} {:>14} {:>5} {:<11} {:>8}  {}\n",
                     op_name(row.problem.op), row.problem.shape_str(), ms_str(row.thaw_ms),
                     ms_str(row.ref_ms), ratio_str(ratio(row)), achieved_str(row),
                     fraction_str(peak_fraction(row, info.peaks)), verdict_name(row.verdict), error_str(row),
                     tail);
}

std::string format_table(const RunInfo& info, const std::vector<RowResult>& rows) {
  std::string out = format_table_head(info);
  for (const RowResult& row : rows)
    out += format_table_row(info, row);
  return out;
}

std::string format_totals(const std::vector<NetworkTotal>& totals) {
  std::string out = "one training step per network (every layer trainable): sum over rows of uses x ms\n";
  out += fmt::format("{:<10} {:>5} {:>10} {:>10} {:>7} {:>8} {:>9}\n", "model", "batch", "thaw ms", "ref ms",
                     "ratio", "counted", "left out");
  for (const NetworkTotal& t : totals) {
    out += fmt::format("{:<10} {:>5} {:>10} {:>10} {:>7} {:>8} {:>9}\n", t.model, t.batch, ms_str(t.thaw_ms),
                       ms_str(t.ref_ms), ratio_str(t.ref_ms > 0 ? t.thaw_ms / t.ref_ms : -1), t.rows_counted,
                       t.rows_left_out);
    for (const auto& b : t.by_op)
      out += fmt::format("  {:<24} {:>10} {:>10} {:>7}\n", b.op, ms_str(b.thaw_ms), ms_str(b.ref_ms),
                         ratio_str(b.ref_ms > 0 ? b.thaw_ms / b.ref_ms : -1));
  }
  return out;
}

std::string format_markdown(const RunInfo& info, const std::vector<RowResult>& rows) {
  std::string out = "# thaw bench kernels\n\n";
  out += fmt::format(
      "- device: {}\n- precision: {}\n- reference: {}\n- timing: median of {} (CUDA events, "
      "after warm-up, L2 flushed between repeats)\n- measured peaks: device-to-device copy "
      "{:.0f} GB/s, float32 SGEMM {:.1f} TFLOP/s\n\n",
      info.device, info.precision, info.reference, info.repeat, info.peaks.copy_gbps,
      info.peaks.sgemm_tflops);
  out += "## Totals: one training step, every layer trainable\n\n";
  out += "| model | batch | thaw ms | reference ms | thaw / reference | rows counted | rows left out |\n";
  out += "|---|---|---|---|---|---|---|\n";
  const std::vector<NetworkTotal> totals = network_totals(rows);
  for (const NetworkTotal& t : totals)
    out += fmt::format("| {} | {} | {} | {} | {} | {} | {} |\n", t.model, t.batch, ms_str(t.thaw_ms),
                       ms_str(t.ref_ms), ratio_str(t.ref_ms > 0 ? t.thaw_ms / t.ref_ms : -1), t.rows_counted,
                       t.rows_left_out);
  for (const NetworkTotal& t : totals) {
    out += fmt::format(
        "\n{} at batch {}, by op:\n\n| op | thaw ms | reference ms | thaw / reference |\n"
        "|---|---|---|---|\n",
        t.model, t.batch);
    for (const auto& b : t.by_op)
      out += fmt::format("| {} | {} | {} | {} |\n", b.op, ms_str(b.thaw_ms), ms_str(b.ref_ms),
                         ratio_str(b.ref_ms > 0 ? b.thaw_ms / b.ref_ms : -1));
  }
  out +=
      "\n## Rows\n\n| op | shape | uses | thaw ms | reference ms | thaw / reference | thaw achieved | of "
      "peak "
      "| verdict | error | reference algorithm | layers "
      "|\n|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const RowResult& row : rows) {
    std::string layers = layers_str(row.problem);
    if (!row.note.empty()) layers += " (" + row.note + ")";
    std::replace(layers.begin(), layers.end(), '|', '/');
    out += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                       op_name(row.problem.op), row.problem.shape_str(), uses_str(row.problem),
                       ms_str(row.thaw_ms), ms_str(row.ref_ms), ratio_str(ratio(row)), achieved_str(row),
                       fraction_str(peak_fraction(row, info.peaks)), verdict_name(row.verdict),
                       error_str(row), row.algorithm.empty() ? "-" : row.algorithm, layers);
  }
  return out;
}

namespace {

nlohmann::json number_or_null(double v) {
  return v > 0 ? nlohmann::json(v) : nlohmann::json(nullptr);
}

}  // namespace

std::string format_json(const RunInfo& info, const std::vector<RowResult>& rows) {
  nlohmann::json j_rows = nlohmann::json::array();
  for (const RowResult& row : rows) {
    const Problem& p = row.problem;
    j_rows.push_back({{"op", op_name(p.op)},
                      {"shape", p.shape_str()},
                      {"x_shape", p.x_shape()},
                      {"y_shape", p.y_shape()},
                      {"k", p.k},
                      {"r", p.r},
                      {"stride", p.stride},
                      {"pad", p.pad},
                      {"layers", p.layers},
                      {"uses", p.uses},
                      {"flops", p.flops()},
                      {"bytes", p.bytes()},
                      {"verdict", verdict_name(row.verdict)},
                      {"note", row.note},
                      {"error", row.error},
                      {"tolerance", row.tolerance},
                      {"thaw_ms", number_or_null(row.thaw_ms)},
                      {"ref_ms", number_or_null(row.ref_ms)},
                      {"ratio", number_or_null(ratio(row))},
                      {"achieved", number_or_null(achieved(row))},
                      {"achieved_unit", is_conv(p.op) ? "TFLOP/s" : "GB/s"},
                      {"peak_fraction", number_or_null(peak_fraction(row, info.peaks))},
                      {"algorithm", row.algorithm}});
  }
  nlohmann::json j_totals = nlohmann::json::array();
  for (const NetworkTotal& t : network_totals(rows)) {
    nlohmann::json by_op = nlohmann::json::array();
    for (const auto& b : t.by_op)
      by_op.push_back({{"op", b.op}, {"thaw_ms", b.thaw_ms}, {"ref_ms", b.ref_ms}});
    j_totals.push_back({{"model", t.model},
                        {"batch", t.batch},
                        {"thaw_ms", t.thaw_ms},
                        {"ref_ms", t.ref_ms},
                        {"ratio", number_or_null(t.ref_ms > 0 ? t.thaw_ms / t.ref_ms : -1)},
                        {"rows_counted", t.rows_counted},
                        {"rows_left_out", t.rows_left_out},
                        {"by_op", by_op}});
  }
  const nlohmann::json doc = {
      {"format", "thaw-bench-kernels-1"},
      {"device", info.device},
      {"reference", info.reference},
      {"precision", info.precision},
      {"repeat", info.repeat},
      {"peaks", {{"copy_gbps", info.peaks.copy_gbps}, {"sgemm_tflops", info.peaks.sgemm_tflops}}},
      {"totals", j_totals},
      {"rows", j_rows}};
  return doc.dump(2) + "\n";
}

std::vector<std::string> write_reports(const std::string& dir, const RunInfo& info,
                                       const std::vector<RowResult>& rows) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  THAW_CHECK(!ec, "bench kernels: cannot create the output folder {}: {}", dir, ec.message());
  const std::filesystem::path base(dir);
  const std::vector<std::pair<std::string, std::string>> files = {
      {"report.txt", format_table(info, rows) + "\n" + format_totals(network_totals(rows))},
      {"report.md", format_markdown(info, rows)},
      {"report.json", format_json(info, rows)},
  };
  std::vector<std::string> written;
  for (const auto& [name, text] : files) {
    const std::string path = (base / name).string();
    write_text_atomic(path, text);
    written.push_back(path);
  }
  return written;
}

}  // namespace thaw::bench
