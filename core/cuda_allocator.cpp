// The CUDA caching allocator: cudaMalloc is slow (it can synchronise the device), and a training step asks
// for the same activation sizes again and again, so freed blocks are kept and handed out again instead of
// being returned to the driver.
//
// The bookkeeping is a BlockPool per device (core/block_pool.h, where the policy is stated): cudaMalloc'd
// segments (2 MiB for requests up to 1 MiB, 20 MiB for requests up to 10 MiB, else the request rounded up to
// 2 MiB) are split into pieces rounded to 512 bytes, best fit, and a released piece coalesces with its free
// neighbours, so the memory reserved from the driver follows what the tensors hold instead of growing a free
// list per size. This file adds the CUDA side: cudaMalloc/cudaFree as the pool's backing store, the lock,
// poisoning and the out-of-memory message. Safe without events because all of thaw's device work runs on one
// stream (kernels/cuda/launch.h): a kernel that uses a reused block is queued after every kernel that used
// it before.
#include <cuda_runtime_api.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "core/block_pool.h"
#include "core/cuda_runtime.h"
#include "core/error.h"

namespace thaw::cuda_runtime {
namespace {

constexpr size_t kMiB = size_t(1) << 20;

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) fail("CUDA error in {}: {} ({})", what, cudaGetErrorString(status), int(status));
}

// The backing store of one device's pool. Out of memory is nullptr (the pool then empties its cache and
// retries); any other CUDA error throws.
BlockPool::Backing device_backing(int device) {
  auto allocate = [device](size_t bytes) -> void* {
    check(cudaSetDevice(device), "cudaSetDevice");
    void* ptr = nullptr;
    const cudaError_t status = cudaMalloc(&ptr, bytes);
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // clear it: the pool may retry, and the next CUDA call must not see it
      return nullptr;
    }
    check(status, "cudaMalloc");
    return ptr;
  };
  auto release = [device](void* ptr, size_t) {
    cudaSetDevice(device);
    cudaFree(ptr);
  };
  return {allocate, release};
}

MemoryStats memory_stats_of(const BlockPool& pool) {
  const BlockPool::Stats& s = pool.stats();
  return {s.in_use, s.peak_in_use, s.reserved, s.peak_reserved, s.backing_allocs, s.cache_hits};
}

[[noreturn]] void fail_out_of_memory(size_t requested, int device, const BlockPool& pool) {
  cudaSetDevice(device);
  size_t free_bytes = 0, total_bytes = 0;
  cudaMemGetInfo(&free_bytes, &total_bytes);
  fail(
      "CUDA out of memory on cuda:{}: tried to allocate {:.1f} MiB with {:.1f} MiB free of {:.1f} MiB "
      "({:.1f} MiB held by thaw's tensors); lower the batch size",
      device, requested / double(kMiB), free_bytes / double(kMiB), total_bytes / double(kMiB),
      pool.stats().in_use / double(kMiB));
}

class CachingAllocator {
 public:
  void* allocate(size_t bytes, int device) {
    if (bytes == 0) return nullptr;
    std::lock_guard<std::mutex> lock(mutex_);
    BlockPool& pool = pool_of(device);
    const BlockPool::Piece piece = pool.allocate(bytes);  // out of memory: has emptied the cache and retried
    if (piece.ptr == nullptr) fail_out_of_memory(bytes, device, pool);
    if (poison_) check(cudaMemsetAsync(piece.ptr, 0xFF, piece.size, nullptr), "cudaMemsetAsync (poison)");
    return piece.ptr;
  }

  void release(void* ptr, int device) noexcept {
    if (ptr == nullptr) return;
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = pools_.find(device);
    // A pointer that is not ours never comes here; the pool ignores it (never free what we did not give).
    if (it != pools_.end()) it->second->release(ptr);
  }

  MemoryStats stats(int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    return memory_stats_of(pool_of(device));
  }

  void reset_peak(int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    pool_of(device).reset_peak();
  }

  void set_poison(bool on) { poison_ = on; }

  void empty_cache(int device) {
    std::lock_guard<std::mutex> lock(mutex_);
    pool_of(device).empty_cache();
  }

 private:
  BlockPool& pool_of(int device) {
    std::unique_ptr<BlockPool>& pool = pools_[device];
    if (pool == nullptr) pool = std::make_unique<BlockPool>(device_backing(device));
    return *pool;
  }

  std::mutex mutex_;
  std::unordered_map<int, std::unique_ptr<BlockPool>> pools_;
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
