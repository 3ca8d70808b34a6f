// Storage: one allocation of bytes on one device, shared by the tensors that view it.
// CPU memory is 64-byte aligned (AVX-512 friendly); CUDA memory comes from core/cuda_runtime.
#pragma once

#include <cstddef>

#include "core/device.h"

namespace thaw {

class Storage {
 public:
  Storage(size_t nbytes, Device device);  // uninitialised memory
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
};

}  // namespace thaw
