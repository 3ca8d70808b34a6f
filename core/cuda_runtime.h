// The small slice of the CUDA runtime that core/ needs (device memory and copies), behind plain C++
// declarations so that nothing above kernels/ sees a CUDA header. In a CPU-only build these exist too and
// throw a clear "built without CUDA" error; device_count() returns 0 there.
#pragma once

#include <cstddef>

namespace thaw::cuda_runtime {

bool built_with_cuda();
int device_count();                        // 0 when no driver or device is present
void* allocate(size_t bytes, int device);  // throws thaw::Error on out-of-memory, naming sizes
void release(void* ptr, int device) noexcept;
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
