// thaw bench kernels: one row = build the inputs, check thaw against the reference, time both.
#include "bench/kernels/runner.h"

#include <memory>

#include "bench/kernels/cases.h"
#include "bench/kernels/cudnn.h"
#include "bench/kernels/device.h"
#include "core/error.h"

namespace thaw::bench {

namespace {

RowResult run_row(const Problem& p, uint64_t seed, const RunOptions& options) {
  RowResult row;
  row.problem = p;
  Case thaw = make_case(p, Device::cuda(), seed, options.precision);
  row.tolerance = thaw.tolerance;

  // The reference's outputs; cuDNN's case is built before thaw's first call (it copies what thaw updates).
  std::unique_ptr<ReferenceCase> cudnn;
  std::vector<Tensor> ref;
  std::string ref_problem;
  try {
    if (options.cpu_reference) {
      ref = make_case(p, Device::cpu(), seed).run();
      row.algorithm = "thaw CPU backend";
    } else {
      cudnn = make_cudnn_case(p, thaw, options.precision);
      row.algorithm = cudnn->algorithm();
    }
  } catch (const Error& e) {
    ref_problem = std::string("reference: ") + e.what();
  }

  std::vector<Tensor> got;
  try {
    got = thaw.run();
  } catch (const Error& e) {
    row.verdict = Verdict::Unsupported;
    row.note = std::string("thaw: ") + e.what();
    return row;
  }
  try {
    if (cudnn) ref = cudnn->check();
  } catch (const Error& e) {
    ref_problem = std::string("reference: ") + e.what();
    cudnn.reset();
  }

  if (ref_problem.empty()) {
    const Comparison cmp = compare_outputs(thaw.outputs, got, ref);
    row.error = cmp.error;
    const bool ok = cmp.finite && cmp.error <= row.tolerance;
    row.verdict = ok ? Verdict::Passed : Verdict::Incorrect;
    if (!ok) row.note = (cmp.finite ? "" : "non-finite output; ") + cmp.worst;
  } else {
    row.verdict = Verdict::Unsupported;
    row.note = ref_problem;
  }

  got.clear();
  ref.clear();
  row.thaw_ms = median_ms(options.repeat, options.warmup, [&] { thaw.run(); });
  if (cudnn) row.ref_ms = median_ms(options.repeat, options.warmup, [&] { cudnn->run(); });
  return row;
}

}  // namespace

std::vector<RowResult> run_problems(const std::vector<Problem>& problems, const RunOptions& options,
                                    const std::function<void(const RowResult&)>& on_row) {
  std::vector<RowResult> rows;
  for (size_t i = 0; i < problems.size(); ++i) {
    rows.push_back(run_row(problems[i], 1000 + i, options));
    if (on_row) on_row(rows.back());
  }
  return rows;
}

}  // namespace thaw::bench
