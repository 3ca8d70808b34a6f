// CUDA build: device memory through the CUDA runtime. Every call is checked; out-of-memory names the
// requested and free sizes. (A caching allocator replaces the plain cudaMalloc here with the CUDA backend.)
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

void* allocate(size_t bytes, int device) {
  if (bytes == 0) return nullptr;
  check(cudaSetDevice(device), "cudaSetDevice");
  void* ptr = nullptr;
  cudaError_t status = cudaMalloc(&ptr, bytes);
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    fail(
        "CUDA out of memory on cuda:{}: tried to allocate {:.1f} MiB with {:.1f} MiB free of {:.1f} MiB; "
        "lower the batch size",
        device, bytes / 1048576.0, free_bytes / 1048576.0, total_bytes / 1048576.0);
  }
  check(status, "cudaMalloc");
  return ptr;
}

void release(void* ptr, int device) noexcept {
  if (ptr == nullptr) return;
  cudaSetDevice(device);
  cudaFree(ptr);
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
