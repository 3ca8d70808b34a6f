// thaw bench kernels built without cuDNN: the CPU backend is the reference (apps/bench_kernels_runner.cpp).
#include "apps/bench_kernels_cudnn.h"

#include "core/error.h"

namespace thaw::apps::bench {

bool cudnn_built() {
  return false;
}
std::string cudnn_description() {
  fail("bench kernels: cuDNN was not found when thaw-bench-kernels was built (see docs/benchmarks.md)");
}
std::unique_ptr<ReferenceCase> make_cudnn_case(const Problem&, const Case&) {
  fail("bench kernels: cuDNN was not found when thaw-bench-kernels was built (see docs/benchmarks.md)");
}

}  // namespace thaw::apps::bench
