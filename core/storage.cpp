// Storage (core/storage.h): host memory (64-byte aligned, counted for cpu_memory_stats) and device memory
// (core/cuda_runtime.h).
#include "core/storage.h"

#include <atomic>
#include <cstdlib>

#include "core/cuda_runtime.h"
#include "core/error.h"

namespace thaw {

namespace {

// The CPU accounting of core/storage.h.
std::atomic<size_t> g_cpu_in_use{0}, g_cpu_peak{0}, g_cpu_allocations{0};

void raise_cpu_peak_to(size_t in_use) {
  size_t peak = g_cpu_peak.load(std::memory_order_relaxed);
  while (in_use > peak && !g_cpu_peak.compare_exchange_weak(peak, in_use, std::memory_order_relaxed)) {
  }
}

void count_cpu_allocation(size_t nbytes) {
  raise_cpu_peak_to(g_cpu_in_use.fetch_add(nbytes, std::memory_order_relaxed) + nbytes);
  g_cpu_allocations.fetch_add(1, std::memory_order_relaxed);
}

void count_cpu_release(size_t nbytes) {
  g_cpu_in_use.fetch_sub(nbytes, std::memory_order_relaxed);
}

}  // namespace

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  if (nbytes == 0) return;
  if (device.is_cpu()) {
    constexpr size_t kAlign = 64;
    data_ = std::aligned_alloc(kAlign, (nbytes + kAlign - 1) / kAlign * kAlign);
    THAW_CHECK(data_ != nullptr, "out of host memory: could not allocate {:.1f} MiB", nbytes / 1048576.0);
    count_cpu_allocation(nbytes);
  } else {
    data_ = cuda_runtime::allocate(nbytes, device.index);
  }
}

Storage::~Storage() {
  if (device_.is_cpu()) {
    if (data_ != nullptr) count_cpu_release(nbytes_);
    std::free(data_);
  } else {
    cuda_runtime::release(data_, device_.index);
  }
}

CpuMemoryStats cpu_memory_stats() {
  CpuMemoryStats s;
  s.in_use = g_cpu_in_use.load(std::memory_order_relaxed);
  s.peak_in_use = g_cpu_peak.load(std::memory_order_relaxed);
  s.allocations = g_cpu_allocations.load(std::memory_order_relaxed);
  return s;
}

void reset_cpu_peak() {
  g_cpu_peak.store(g_cpu_in_use.load(std::memory_order_relaxed), std::memory_order_relaxed);
}

}  // namespace thaw
