// The small slice of the CUDA runtime that core/ needs (device memory and copies), behind plain C++
// declarations so that nothing above kernels/ sees a CUDA header. In a CPU-only build these exist too and
// throw a clear "built without CUDA" error; device_count() returns 0 there.
#pragma once

#include <cstddef>

namespace thaw::cuda_runtime {

bool built_with_cuda();
int device_count();  // 0 when no driver or device is present
// Device memory from the caching allocator (core/cuda_allocator.cpp, policy in core/block_pool.h): a request
// is rounded up to a multiple of 512 bytes and served best fit from a cached free block, split when the rest
// is worth keeping, else from a new cudaMalloc'd segment. release() returns the piece to the cache, merged
// with its free neighbours (no cudaFree, no synchronisation: all work is on one stream, so the next user's
// kernels run after the last user's). Out of memory: the wholly free segments are freed and cudaMalloc
// retried; then a thaw::Error names the requested and free sizes and suggests a smaller batch.
void* allocate(size_t bytes, int device);
void release(void* ptr, int device) noexcept;

struct MemoryStats {
  size_t in_use = 0;         // bytes in the pieces handed out now (512-byte rounded, with any unsplit slack)
  size_t peak_in_use = 0;    // the most in_use has been since start or reset_peak_memory()
  size_t reserved = 0;       // bytes in segments from cudaMalloc not yet freed (in use + cached)
  size_t peak_reserved = 0;  // likewise
  size_t cuda_mallocs = 0;   // calls to cudaMalloc so far
  size_t cache_hits = 0;     // requests served from a cached free block, without cudaMalloc
};
MemoryStats memory_stats(int device);  // all zero in a CPU-only build
void reset_peak_memory(int device);    // peaks := current values
void empty_cache(int device);          // cudaFree every segment that is wholly free
// Debugging aid for tests: when on, every block handed out is first filled with 0xFF bytes (a float NaN),
// so an output element a kernel forgets to write shows up as NaN instead of a plausible stale value.
void set_poison_allocations(bool on);
void copy_to_device(void* dst, const void* src, size_t bytes);
void copy_to_host(void* dst, const void* src, size_t bytes);
void copy_on_device(void* dst, const void* src, size_t bytes);
void zero(void* dst, size_t bytes);
void synchronize();

// Page-locked host memory (cudaMallocHost), for host buffers that feed copies to the device (the data
// loader's batches). In a CPU-only build, or when bytes == 0, plain 64-byte-aligned host memory / nullptr.
// Pair every allocate_pinned with release_pinned.
void* allocate_pinned(size_t bytes);  // throws thaw::Error when out of memory, naming the size
void release_pinned(void* ptr) noexcept;

}  // namespace thaw::cuda_runtime
