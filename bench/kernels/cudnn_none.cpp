// thaw bench kernels built without cuDNN: the CPU backend is the reference (bench/kernels/runner.cpp).
#include "bench/kernels/cudnn.h"

#include "core/error.h"

namespace thaw::bench {

bool cudnn_built() {
  return false;
}
std::string cudnn_description() {
  fail("bench kernels: cuDNN was not found when thaw-bench-kernels was built (see docs/benchmarks.md)");
}
std::unique_ptr<ReferenceCase> make_cudnn_case(const Problem&, const Case&, Precision) {
  fail("bench kernels: cuDNN was not found when thaw-bench-kernels was built (see docs/benchmarks.md)");
}

}  // namespace thaw::bench
