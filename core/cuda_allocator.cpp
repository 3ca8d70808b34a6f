// The CUDA caching allocator: cudaMalloc is slow (it can synchronise the device), and a training step asks
// for the same activation sizes again and again, so freed blocks are kept in per-size-class free lists and
// handed out again instead of being returned to the driver.
//
// Size classes: up to 1 MiB, multiples of 512 bytes; above, 8 classes per power of two (1 MiB, 1.125 MiB,
// 1.25 MiB, ...), so at most 12.5% of a large block is rounding. A block serves only requests of its own
// class, which keeps the bookkeeping a map from class to a stack of pointers, at the price of not splitting
// big cached blocks for small requests. Safe without events because all of thaw's device work runs on one
// stream (kernels/cuda/launch.h): a kernel that uses a reused block is queued after every kernel that used
// it before.
#include <cuda_runtime_api.h>

#include <atomic>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/cuda_runtime.h"
#include "core/error.h"

namespace thaw::cuda_runtime {
namespace {

constexpr size_t kMiB = size_t(1) << 20;

size_t size_class(size_t bytes) {
  constexpr size_t kSmallGranule = 512;
  if (bytes <= kMiB) return (bytes + kSmallGranule - 1) / kSmallGranule * kSmallGranule;
  size_t power = kMiB;
  while (power * 2 < bytes)
    power *= 2;  // power < bytes <= 2 power
  const size_t step = power / 8;
  return (bytes + step - 1) / step * step;
}

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) fail("CUDA error in {}: {} ({})", what, cudaGetErrorString(status), int(status));
}

struct DeviceCache {
  std::map<size_t, std::vector<void*>> free_blocks;  // class -> cached blocks of that class
  std::unordered_map<void*, size_t> block_class;     // every live or cached block -> its class
  MemoryStats stats;

  void free_cached() {
    for (auto& [cls, blocks] : free_blocks) {
      for (void* ptr : blocks) {
        cudaFree(ptr);
        block_class.erase(ptr);
        stats.reserved -= cls;
      }
    }
    free_blocks.clear();
  }
};

class CachingAllocator {
 public:
  void* allocate(size_t bytes, int device) {
    if (bytes == 0) return nullptr;
    const size_t cls = size_class(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    DeviceCache& cache = caches_[device];
    void* ptr = nullptr;
    auto it = cache.free_blocks.find(cls);
    if (it != cache.free_blocks.end() && !it->second.empty()) {
      ptr = it->second.back();
      it->second.pop_back();
      ++cache.stats.cache_hits;
    } else {
      check(cudaSetDevice(device), "cudaSetDevice");
      ptr = device_malloc(cls, bytes, device, cache);
      cache.block_class[ptr] = cls;
      ++cache.stats.cuda_mallocs;
      cache.stats.reserved += cls;
      cache.stats.peak_reserved = std::max(cache.stats.peak_reserved, cache.stats.reserved);
    }
    cache.stats.in_use += cls;
    cache.stats.peak_in_use = std::max(cache.stats.peak_in_use, cache.stats.in_use);
    if (poison_) check(cudaMemsetAsync(ptr, 0xFF, cls, nullptr), "cudaMemsetAsync (poison)");
    return ptr;
  }

  void release(void* ptr, int device) noexcept {
    if (ptr == nullptr) return;
    std::lock_guard<std::mutex> lock(mutex_);
    DeviceCache& cache = caches_[device];
    auto it = cache.block_class.find(ptr);
    if (it == cache.block_class.end()) return;  // not ours: never happens; do not free what we did not give
    cache.free_blocks[it->second].push_back(ptr);
    cache.stats.in_use -= it->second;
  }

  MemoryStats stats(int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    return caches_[device].stats;
  }

  void reset_peak(int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    MemoryStats& s = caches_[device].stats;
    s.peak_in_use = s.in_use;
    s.peak_reserved = s.reserved;
  }

  void set_poison(bool on) { poison_ = on; }

  void empty_cache(int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    cudaSetDevice(device);
    caches_[device].free_cached();
  }

 private:
  // cudaMalloc of one block of class cls; on out-of-memory frees the cache and tries once more.
  static void* device_malloc(size_t cls, size_t requested, int device, DeviceCache& cache) {
    void* ptr = nullptr;
    cudaError_t status = cudaMalloc(&ptr, cls);
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear it, then retry with the cached blocks handed back to the driver
      cache.free_cached();
      status = cudaMalloc(&ptr, cls);
    }
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      size_t free_bytes = 0, total_bytes = 0;
      cudaMemGetInfo(&free_bytes, &total_bytes);
      fail(
          "CUDA out of memory on cuda:{}: tried to allocate {:.1f} MiB with {:.1f} MiB free of {:.1f} MiB "
          "({:.1f} MiB held by thaw's tensors); lower the batch size",
          device, requested / double(kMiB), free_bytes / double(kMiB), total_bytes / double(kMiB),
          cache.stats.in_use / double(kMiB));
    }
    check(status, "cudaMalloc");
    return ptr;
  }

  std::mutex mutex_;
  std::unordered_map<int, DeviceCache> caches_;
  std::atomic<bool> poison_{false};
};

// Never destroyed: tensors in static objects may be released during exit, after any static allocator would
// be gone. The driver reclaims the memory at process exit.
CachingAllocator& allocator() {
  static CachingAllocator* instance = new CachingAllocator;
  return *instance;
}

}  // namespace

void* allocate(size_t bytes, int device) {
  return allocator().allocate(bytes, device);
}
void release(void* ptr, int device) noexcept {
  allocator().release(ptr, device);
}
MemoryStats memory_stats(int device) {
  return allocator().stats(device);
}
void reset_peak_memory(int device) {
  allocator().reset_peak(device);
}
void empty_cache(int device) {
  allocator().empty_cache(device);
}
void set_poison_allocations(bool on) {
  allocator().set_poison(on);
}

}  // namespace thaw::cuda_runtime
