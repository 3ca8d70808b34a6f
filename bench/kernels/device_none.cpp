// thaw bench kernels in a CPU-only build: nothing to time on; every entry says so.
#include "bench/kernels/device.h"

#include "core/error.h"

namespace thaw::bench {

std::string device_description() {
  fail("bench kernels: this thaw was built without CUDA (configure with -DTHAW_CUDA=ON)");
}
Peaks measure_peaks() {
  fail("bench kernels: this thaw was built without CUDA (configure with -DTHAW_CUDA=ON)");
}
double median_ms(int, int, const std::function<void()>&) {
  fail("bench kernels: this thaw was built without CUDA (configure with -DTHAW_CUDA=ON)");
}

}  // namespace thaw::bench
