// thaw bench kernels: check, then time, one row after another (docs/style.md: benchmarks check before they
// time).
#pragma once

#include <functional>
#include <vector>

#include "bench/kernels/report.h"
#include "core/precision.h"

namespace thaw::bench {

struct RunOptions {
  int repeat = 10;             // timed runs per side; the median is reported
  int warmup = 2;              // untimed runs before them (thaw's conv picks its tile on its first call)
  bool cpu_reference = false;  // compare with thaw's CPU backend (untimed) instead of cuDNN
  Precision precision = Precision::FP32;  // of the convolution rows, on both sides
};

// For each problem, on the first CUDA device: builds its inputs (seeded by the row's index), runs thaw's
// kernel and the reference once and compares the outputs (verdict passed / incorrect / unsupported), then
// times both sides (bench_kernels_device.h: median_ms). A thaw::Error from one side of one row makes that
// row unsupported, with the message as its note; the other rows go on. on_row sees each row when done.
std::vector<RowResult> run_problems(const std::vector<Problem>& problems, const RunOptions& options,
                                    const std::function<void(const RowResult&)>& on_row);

}  // namespace thaw::bench
