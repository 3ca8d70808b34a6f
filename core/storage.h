// Storage: one allocation of bytes on one device, shared by the tensors that view it.
// CPU memory is 64-byte aligned (AVX-512 friendly); CUDA memory comes from core/cuda_runtime.
//
// CPU memory accounting: every CPU Storage adds its size to a process-wide count while it lives, so that
// `thaw explain --measure` and the tests can read what tensors hold on the host, as
// cuda_runtime::memory_stats does on a GPU. Only Storage is counted (tensors on the CPU); kernel scratch
// buffers, OpenBLAS's buffers and everything else the process allocates are not.
//
// Large CPU blocks are cached: a freed block of at least kCpuCacheMinBytes is kept (up to
// cpu_cache_limit() bytes in all) and handed to the next Storage of the same rounded size. A training or
// inference step frees and allocates the same activation sizes every step; without the cache each of those
// blocks went back to the kernel (glibc maps blocks over 32 MiB with mmap) and every step paid for the page
// faults of zeroing them again (~8% of a ResNet18 inference step on the CPU).
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
  size_t block_bytes_ = 0;  // CPU: the block's size (nbytes rounded up), for the block cache
  Device device_;
};

// Bytes held by CPU Storage objects, counted as requested (Storage::nbytes, the tensors' numel x element
// size; the allocation's rounding up to 64 bytes is not counted). Thread-safe: the data loader's threads
// allocate too.
struct CpuMemoryStats {
  size_t in_use = 0;       // bytes of the CPU Storage objects alive now
  size_t peak_in_use = 0;  // the most in_use has been since the start or the last reset_cpu_peak()
  size_t allocations = 0;  // CPU Storage objects of non-zero size created so far
  size_t cached = 0;       // bytes of freed blocks kept for reuse (not in in_use)
  size_t cache_hits = 0;   // allocations served from the cache
};
CpuMemoryStats cpu_memory_stats();
void reset_cpu_peak();  // peak_in_use := in_use

// The host block cache (see above). Blocks are rounded up to kCpuCacheGranule bytes; a request takes a
// cached block of its rounded size, or one at most 1/8 larger.
inline constexpr size_t kCpuCacheMinBytes = size_t(1) << 20, kCpuCacheGranule = size_t(64) << 10;
size_t cpu_cache_limit();                // 2 GiB unless set (0 under AddressSanitizer)
void set_cpu_cache_limit(size_t bytes);  // 0 turns the cache off; cached blocks over the new limit are freed
void release_cpu_cache();                // free every cached block

}  // namespace thaw
