// Storage (core/storage.h): host memory (64-byte aligned, counted for cpu_memory_stats) and device memory
// (core/cuda_runtime.h).
#include "core/storage.h"

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>

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

// The host block cache of core/storage.h: freed blocks by rounded size, oldest first within a size.
class HostBlockCache {
 public:
  static size_t rounded(size_t nbytes) {
    return (nbytes + kCpuCacheGranule - 1) / kCpuCacheGranule * kCpuCacheGranule;
  }

  // A cached block of at least `bytes` (a rounded size) and at most 1/8 more, or nullptr; *block_bytes gets
  // the block's size.
  void* take(size_t bytes, size_t* block_bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_.lower_bound(bytes);
    if (it == free_.end() || it->first > bytes + bytes / 8) return nullptr;
    void* block = it->second;
    *block_bytes = it->first;
    cached_ -= it->first;
    free_.erase(it);
    ++hits_;
    return block;
  }
  // Keeps the block if the cache has room for it, else frees it.
  void give(void* block, size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_ + bytes <= limit_) {
        free_.emplace(bytes, block);
        cached_ += bytes;
        return;
      }
    }
    std::free(block);
  }
  void set_limit(size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    limit_ = bytes;
    trim_locked(limit_);
  }
  void trim_to(size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    trim_locked(bytes);
  }
  size_t limit() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return limit_;
  }
  void stats(CpuMemoryStats& s) const {
    std::lock_guard<std::mutex> lock(mutex_);
    s.cached = cached_;
    s.cache_hits = hits_;
  }

 private:
  void trim_locked(size_t bytes) {
    while (cached_ > bytes) {  // the largest blocks go first
      auto last = std::prev(free_.end());
      cached_ -= last->first;
      std::free(last->second);
      free_.erase(last);
    }
  }

  mutable std::mutex mutex_;
  std::multimap<size_t, void*> free_;
  size_t cached_ = 0, hits_ = 0, limit_ = kDefaultLimit;
#ifdef __SANITIZE_ADDRESS__
  static constexpr size_t kDefaultLimit = 0;  // AddressSanitizer sees every free, and every use after one
#else
  static constexpr size_t kDefaultLimit = size_t(2) << 30;
#endif
};

// Never destroyed: Storage objects in static tensors may be freed after main returns.
HostBlockCache& host_cache() {
  static HostBlockCache* cache = new HostBlockCache;
  return *cache;
}

void* allocate_host(size_t nbytes, size_t* block_bytes) {
  constexpr size_t kAlign = 64;
  if (nbytes >= kCpuCacheMinBytes) {
    const size_t bytes = HostBlockCache::rounded(nbytes);
    if (void* block = host_cache().take(bytes, block_bytes)) return block;
    *block_bytes = bytes;
    return std::aligned_alloc(kAlign, bytes);
  }
  *block_bytes = (nbytes + kAlign - 1) / kAlign * kAlign;
  return std::aligned_alloc(kAlign, *block_bytes);
}

void free_host(void* block, size_t block_bytes) {
  if (block_bytes >= kCpuCacheMinBytes)
    host_cache().give(block, block_bytes);
  else
    std::free(block);
}

}  // namespace

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  if (nbytes == 0) return;
  if (device.is_cpu()) {
    data_ = allocate_host(nbytes, &block_bytes_);
    THAW_CHECK(data_ != nullptr, "out of host memory: could not allocate {:.1f} MiB", nbytes / 1048576.0);
    count_cpu_allocation(nbytes);
  } else {
    data_ = cuda_runtime::allocate(nbytes, device.index);
  }
}

Storage::~Storage() {
  if (device_.is_cpu()) {
    if (data_ == nullptr) return;
    count_cpu_release(nbytes_);
    free_host(data_, block_bytes_);
  } else {
    cuda_runtime::release(data_, device_.index);
  }
}

CpuMemoryStats cpu_memory_stats() {
  CpuMemoryStats s;
  s.in_use = g_cpu_in_use.load(std::memory_order_relaxed);
  s.peak_in_use = g_cpu_peak.load(std::memory_order_relaxed);
  s.allocations = g_cpu_allocations.load(std::memory_order_relaxed);
  host_cache().stats(s);
  return s;
}

void reset_cpu_peak() {
  g_cpu_peak.store(g_cpu_in_use.load(std::memory_order_relaxed), std::memory_order_relaxed);
}

size_t cpu_cache_limit() {
  return host_cache().limit();
}
void set_cpu_cache_limit(size_t bytes) {
  host_cache().set_limit(bytes);
}
void release_cpu_cache() {
  host_cache().trim_to(0);
}

}  // namespace thaw
