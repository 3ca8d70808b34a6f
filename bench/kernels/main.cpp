// thaw-bench-kernels: the program behind `thaw bench kernels` (cli/bench.cpp runs it). A program
// of its own so that cuDNN is linked into it and never into the thaw binary that trains.
//
//   thaw bench kernels [--model resnet18,resnet50] [--batch 32,64] [--filter conv2d,layer3] [--repeat 10]
//                      [--out runs/bench-kernels] [--precision fp32] [--reference cudnn|cpu] [--list]
//
// Exit status: 0 when every row passed or was unsupported; 1 on an error or when a row is incorrect;
// 2 when there is nothing to measure on (no CUDA device, or a build without CUDA). --list needs no GPU.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "bench/kernels/cudnn.h"
#include "bench/kernels/device.h"
#include "bench/kernels/runner.h"
#include "core/cuda_runtime.h"
#include "core/error.h"

namespace thaw::bench {
namespace {

constexpr int kNothingToMeasure = 2;

struct Options {
  TableOptions table;
  RunOptions run;
  std::string out = "runs/bench-kernels";
  std::string precision = "fp32";
  std::string reference;  // cudnn | cpu; default: cudnn when built with it
  bool list = false;
  bool batch_given = false;
};

void print_list(const std::vector<Problem>& problems) {
  fmt::print("{} problems\n{:<24} {:<26} {:>10} {:>10}  {:<16} {}\n", problems.size(), "op", "shape", "GFLOP",
             "MB", "uses", "layers");
  for (const Problem& p : problems) {
    std::string uses;
    for (const auto& [model, n] : p.uses)
      uses += fmt::format("{}{} x{}", uses.empty() ? "" : ", ", model == "resnet18" ? "r18" : "r50", n);
    std::string layers = p.layers.front();
    if (p.layers.size() > 1) layers += fmt::format(" (+{} more)", p.layers.size() - 1);
    fmt::print("{:<24} {:<26} {:>10.3f} {:>10.2f}  {:<16} {}\n", op_name(p.op), p.shape_str(),
               p.flops() * 1e-9, p.bytes() * 1e-6, uses, layers);
  }
}

int run(Options& opt) {
  THAW_CHECK(opt.precision == "fp32" || opt.precision == "tf32" || opt.precision == "bf16",
             "bench kernels: --precision must be fp32, tf32 or bf16 (got '{}')", opt.precision);
  opt.run.precision = parse_precision(opt.precision);
  THAW_CHECK(opt.reference.empty() || opt.reference == "cudnn" || opt.reference == "cpu",
             "bench kernels: --reference must be cudnn or cpu (got '{}')", opt.reference);
  THAW_CHECK(!(opt.reference == "cudnn" && !cudnn_built()),
             "bench kernels: --reference cudnn, but cuDNN was not found when thaw-bench-kernels was built "
             "(configure with -DTHAW_CUDNN=ON, and -DTHAW_CUDNN_ROOT=DIR if it is not in a system folder)");
  opt.run.cpu_reference = opt.reference == "cpu" || !cudnn_built();
  THAW_CHECK(
      opt.run.precision != Precision::BF16 || opt.run.cpu_reference,
      "bench kernels: --precision bf16 has no cuDNN reference yet (cuDNN's bf16 convolutions take bf16 "
      "tensors, and thaw still stores activations in float32); --reference cpu checks thaw's bf16 "
      "kernels against the CPU backend");
  // The CPU reference computes every row on the host: small shapes unless the user chose a batch.
  if (opt.run.cpu_reference && !opt.batch_given) opt.table.batches = {2};

  const std::vector<Problem> problems = make_problems(opt.table);
  if (opt.list) {
    print_list(problems);
    return 0;
  }
  THAW_CHECK(!problems.empty(), "bench kernels: no row matches --filter");
  if (!cuda_runtime::built_with_cuda()) {
    fmt::print(stderr,
               "thaw bench kernels: this thaw was built without CUDA (THAW_CUDA=OFF): there is no GPU "
               "kernel to measure. `thaw bench kernels --list` prints the problem tables.\n");
    return kNothingToMeasure;
  }
  if (cuda_runtime::device_count() == 0) {
    fmt::print(stderr,
               "thaw bench kernels: no CUDA device found (no GPU, no driver, or CUDA_VISIBLE_DEVICES "
               "hides them): nothing was measured. `thaw bench kernels --list` prints the problem "
               "tables without a GPU.\n");
    return kNothingToMeasure;
  }

  RunInfo info;
  info.device = device_description();
  info.precision = opt.precision;
  info.repeat = opt.run.repeat;
  if (opt.run.cpu_reference) {
    info.reference = cudnn_built()
                         ? "thaw CPU backend (--reference cpu; untimed)"
                         : "thaw CPU backend (untimed): cuDNN was not found when thaw-bench-kernels "
                           "was built";
    if (!cudnn_built())
      fmt::print(
          "thaw bench kernels: cuDNN was not found when this bench was built; checking thaw's CUDA "
          "kernels against thaw's CPU backend instead, at batch {}, with no reference times.\n",
          fmt::join(opt.table.batches, ","));
  } else {
    info.reference = cudnn_description();
  }
  fmt::print("measuring the peaks (1 GiB device copy, 8192^3 SGEMM)...\n");
  std::fflush(stdout);
  info.peaks = measure_peaks();
  fmt::print("{}", format_table_head(info));
  std::fflush(stdout);
  const std::vector<RowResult> rows = run_problems(problems, opt.run, [&](const RowResult& row) {
    fmt::print("{}", format_table_row(info, row));
    std::fflush(stdout);
  });

  fmt::print("\n{}", format_totals(network_totals(rows)));
  const std::vector<RowResult> worst = worst_rows(rows, 5);
  if (!worst.empty()) {
    fmt::print("\nthe {} rows where thaw is slowest against the reference:\n", worst.size());
    for (const RowResult& row : worst)
      fmt::print("  {:.2f}x  {:<48} thaw {:.3f} ms, reference {:.3f} ms\n", ratio(row), row.problem.name(),
                 row.thaw_ms, row.ref_ms);
  }
  int passed = 0, incorrect = 0, unsupported = 0;
  for (const RowResult& row : rows) {
    passed += row.verdict == Verdict::Passed;
    incorrect += row.verdict == Verdict::Incorrect;
    unsupported += row.verdict == Verdict::Unsupported;
  }
  fmt::print("\nverdicts: {} passed, {} incorrect, {} unsupported (of {} rows)\n", passed, incorrect,
             unsupported, rows.size());
  for (const std::string& path : write_reports(opt.out, info, rows))
    fmt::print("wrote {}\n", path);
  return incorrect > 0 ? 1 : 0;
}

}  // namespace
}  // namespace thaw::bench

int main(int argc, char** argv) {
  using namespace thaw::bench;
  Options opt;
  CLI::App app{
      "thaw bench kernels: every kernel of a ResNet18/50 training step, checked against cuDNN, then "
      "timed beside it, shape by shape"};
  app.name("thaw bench kernels");
  app.add_option("--model", opt.table.models, "resnet18 and/or resnet50 (comma-separated)")->delimiter(',');
  app.add_option("--batch", opt.table.batches,
                 "batch sizes (comma-separated; default 32,64, or 2 against the CPU)")
      ->delimiter(',')
      ->check(CLI::Range(1, 1024));
  app.add_option(
         "--filter", opt.table.filters,
         "keep rows whose op, shape or a layer contains one of these (comma-separated, case-insensitive)")
      ->delimiter(',');
  app.add_option("--classes", opt.table.classes, "classes of the head (softmax-xent rows; default 37)")
      ->check(CLI::Range(2, 100000));
  app.add_option("--repeat", opt.run.repeat, "timed runs per side; the median is reported")
      ->check(CLI::Range(1, 1000));
  app.add_option("--warmup", opt.run.warmup, "untimed runs before timing")->check(CLI::Range(0, 100));
  app.add_option("--out", opt.out, "folder for report.txt, report.md and report.json");
  app.add_option("--precision", opt.precision,
                 "convolution rows in fp32 (FMA on both sides), tf32 (tensor cores on both sides) or bf16 "
                 "(thaw's tensor cores against the CPU backend: --reference cpu)");
  app.add_option("--reference", opt.reference,
                 "cudnn (default when built with it) or cpu (thaw's CPU backend)");
  app.add_flag("--list", opt.list,
               "print the problem table (shapes, FLOPs, bytes, uses) and exit; needs no GPU");
  try {
    app.parse(argc, argv);
    opt.batch_given = app.count("--batch") > 0;
    return run(opt);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const thaw::Error& e) {
    fmt::print(stderr, "thaw: error: {}\n", e.what());
    return 1;
  }
}
