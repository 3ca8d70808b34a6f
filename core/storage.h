// Storage: one allocation of bytes on one device, shared by the tensors that view it.
// CPU memory is 64-byte aligned (AVX-512 friendly); CUDA memory comes from core/cuda_runtime.
//
// CPU memory accounting: every CPU Storage adds its size to a process-wide count while it lives, so that
// `thaw explain --measure` and the tests can read what tensors hold on the host, as
// cuda_runtime::memory_stats does on a GPU. Only Storage is counted (tensors on the CPU); kernel scratch
// buffers, OpenBLAS's buffers and everything else the process allocates are not.
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

// Bytes held by CPU Storage objects, counted as requested (Storage::nbytes, the tensors' numel x element
// size; the allocation's rounding up to 64 bytes is not counted). Thread-safe: the data loader's threads
// allocate too.
struct CpuMemoryStats {
  size_t in_use = 0;       // bytes of the CPU Storage objects alive now
  size_t peak_in_use = 0;  // the most in_use has been since the start or the last reset_cpu_peak()
  size_t allocations = 0;  // CPU Storage objects of non-zero size created so far
};
CpuMemoryStats cpu_memory_stats();
void reset_cpu_peak();  // peak_in_use := in_use

}  // namespace thaw
