// thaw bench kernels: the results and their three forms (a terminal table, markdown, JSON), plus the totals
// per network. Pure C++: the runner (bench/kernels/runner.h) fills the structs, this file only reads.
//
// Reading a row: ratio = thaw ms / reference ms (above 1: thaw is slower). "achieved" is thaw's TFLOP/s for
// a conv and its GB/s for the other ops (Problem::flops, Problem::bytes); "of peak" divides it by the card's
// measured ceiling: a large float32 SGEMM for TFLOP/s, a device-to-device copy for GB/s.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/kernels/problems.h"

namespace thaw::bench {

enum class Verdict { Passed, Incorrect, Unsupported };
const char* verdict_name(Verdict v);  // "passed", "incorrect", "unsupported"

struct RowResult {
  Problem problem;
  Verdict verdict = Verdict::Unsupported;
  std::string note;       // why a row is incorrect or unsupported (the worst output); empty otherwise
  double error = 0;       // worst over the outputs of max |thaw - ref| / max |ref|
  double tolerance = 0;   // the error allowed for this op
  double thaw_ms = -1;    // median; -1 when not timed
  double ref_ms = -1;     // the reference's median; -1 when not timed (the CPU reference is never timed)
  std::string algorithm;  // the reference's algorithm for this row (cuDNN's search result), or empty
};

struct Peaks {
  double copy_gbps = 0;     // device-to-device copy: (read + write bytes) / s
  double sgemm_tflops = 0;  // cuBLAS float32 SGEMM on large square matrices
};

struct RunInfo {
  std::string device;     // "NVIDIA H200 (132 SMs, 139 GiB)"
  std::string reference;  // "cuDNN 9.14.0" or "thaw CPU backend (cuDNN not found)"
  std::string precision = "fp32";
  int repeat = 0;
  Peaks peaks;
};

double ratio(const RowResult& row);     // thaw_ms / ref_ms; -1 when either is missing
double achieved(const RowResult& row);  // thaw's TFLOP/s (conv) or GB/s (others); -1 when not timed
double peak_fraction(const RowResult& row, const Peaks& peaks);  // achieved / the matching peak; -1 if none

// One training step of one network at one batch size: sum over rows of uses[model] x ms.
struct NetworkTotal {
  std::string model;
  int64_t batch = 0;
  double thaw_ms = 0, ref_ms = 0;  // over the rows counted
  int64_t rows_counted = 0;        // distinct rows of this network that passed and were timed on both sides
  int64_t rows_left_out = 0;       // rows of this network that were not (incorrect, unsupported, untimed)
  struct ByOp {
    std::string op;  // op_name()
    double thaw_ms = 0, ref_ms = 0;
  };
  std::vector<ByOp> by_op;  // the same sums split by op, in OpKind order
};
// Totals for every (model, batch) that the rows use, in order of first appearance.
std::vector<NetworkTotal> network_totals(const std::vector<RowResult>& rows);

// The rows with the largest ratio (thaw slowest relative to the reference), at most count of them.
std::vector<RowResult> worst_rows(const std::vector<RowResult>& rows, size_t count);

std::string format_table(const RunInfo& info, const std::vector<RowResult>& rows);  // the terminal table
std::string format_table_head(const RunInfo& info);  // its first lines, for printing row by row
std::string format_table_row(const RunInfo& info, const RowResult& row);  // one line of it
std::string format_totals(const std::vector<NetworkTotal>& totals);       // terminal, after it
std::string format_markdown(const RunInfo& info, const std::vector<RowResult>& rows);
std::string format_json(const RunInfo& info, const std::vector<RowResult>& rows);  // rows, totals, peaks

// Writes report.txt (table and totals), report.md and report.json into dir (created if missing), each
// atomically (train/run_dir.h). Returns the paths written.
std::vector<std::string> write_reports(const std::string& dir, const RunInfo& info,
                                       const std::vector<RowResult>& rows);

}  // namespace thaw::bench
