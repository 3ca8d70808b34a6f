// CUDA build: device queries, copies and pinned host memory through the CUDA runtime, every call checked.
// Device memory itself comes from the caching allocator in core/cuda_allocator.cpp.
#include "core/cuda_runtime.h"

#include <cuda_runtime_api.h>

#include "core/error.h"

namespace thaw::cuda_runtime {
namespace {

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) fail("CUDA error in {}: {} ({})", what, cudaGetErrorString(status), int(status));
}

}  // namespace

bool built_with_cuda() {
  return true;
}

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver"/"no device" error
    return 0;
  }
  return count;
}

void copy_to_device(void* dst, const void* src, size_t bytes) {
  check(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "cudaMemcpy host->device");
}
void copy_to_host(void* dst, const void* src, size_t bytes) {
  check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "cudaMemcpy device->host");
}
void copy_on_device(void* dst, const void* src, size_t bytes) {
  check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice), "cudaMemcpy device->device");
}
void zero(void* dst, size_t bytes) {
  check(cudaMemset(dst, 0, bytes), "cudaMemset");
}
void synchronize() {
  check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
}

void* allocate_pinned(size_t bytes) {
  if (bytes == 0) return nullptr;
  void* ptr = nullptr;
  const cudaError_t status = cudaMallocHost(&ptr, bytes);
  if (status != cudaSuccess) {
    cudaGetLastError();
    fail("could not allocate {:.1f} MiB of pinned host memory: {}", bytes / 1048576.0,
         cudaGetErrorString(status));
  }
  return ptr;
}

void release_pinned(void* ptr) noexcept {
  if (ptr != nullptr) cudaFreeHost(ptr);
}

}  // namespace thaw::cuda_runtime
