// DeviceTransformer in a build without CUDA: constructing one is an error that says so.
#include "core/error.h"
#include "data/device_transforms.h"

namespace thaw::data {

struct DeviceTransformer::Impl {};

DeviceTransformer::DeviceTransformer(const TransformConfig&, int64_t, int64_t, int, Device device) {
  fail(
      "device transforms on {} requested, but this thaw was built without the CUDA backend; rebuild with "
      "-DTHAW_CUDA=ON or leave device_transforms off",
      device.str());
}
DeviceTransformer::~DeviceTransformer() = default;
uint8_t* DeviceTransformer::host_regions(int) {
  return nullptr;
}
void DeviceTransformer::wait_until_writable(int) {}
DeviceTransformer::Times DeviceTransformer::times() {
  return {};
}
void DeviceTransformer::set_cache_limit(int64_t) {}
uint8_t* DeviceTransformer::allocate_cache(int64_t) {
  return nullptr;
}
void DeviceTransformer::run(int, int64_t, const std::vector<int64_t>&, Tensor&, Tensor&) {}

}  // namespace thaw::data
