#include "core/storage.h"

#include <cstdlib>

#include "core/cuda_runtime.h"
#include "core/error.h"

namespace thaw {

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  if (nbytes == 0) return;
  if (device.is_cpu()) {
    constexpr size_t kAlign = 64;
    data_ = std::aligned_alloc(kAlign, (nbytes + kAlign - 1) / kAlign * kAlign);
    THAW_CHECK(data_ != nullptr, "out of host memory: could not allocate {:.1f} MiB", nbytes / 1048576.0);
  } else {
    data_ = cuda_runtime::allocate(nbytes, device.index);
  }
}

Storage::~Storage() {
  if (device_.is_cpu()) {
    std::free(data_);
  } else {
    cuda_runtime::release(data_, device_.index);
  }
}

}  // namespace thaw
