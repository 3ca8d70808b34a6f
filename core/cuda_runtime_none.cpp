// CPU-only build: every CUDA entry point says that this thaw was built without CUDA.
#include <cstdlib>

#include "core/cuda_runtime.h"
#include "core/error.h"

namespace thaw::cuda_runtime {
namespace {
[[noreturn]] void not_built() {
  fail(
      "this thaw was built without the CUDA backend (THAW_CUDA=OFF or no CUDA toolkit at configure time); "
      "use --device cpu, or rebuild with -DTHAW_CUDA=ON");
}
}  // namespace

bool built_with_cuda() {
  return false;
}
int device_count() {
  return 0;
}
void* allocate(size_t, int) {
  not_built();
}
void release(void*, int) noexcept {}
MemoryStats memory_stats(int) {
  return {};
}
void reset_peak_memory(int) {}
void empty_cache(int) {}
void set_poison_allocations(bool) {}
void copy_to_device(void*, const void*, size_t) {
  not_built();
}
void copy_to_host(void*, const void*, size_t) {
  not_built();
}
void copy_on_device(void*, const void*, size_t) {
  not_built();
}
void zero(void*, size_t) {
  not_built();
}
void synchronize() {}

// No CUDA, so nothing to pin: plain aligned host memory (the loader uses it the same way either way).
void* allocate_pinned(size_t bytes) {
  if (bytes == 0) return nullptr;
  constexpr size_t kAlign = 64;
  void* ptr = std::aligned_alloc(kAlign, (bytes + kAlign - 1) / kAlign * kAlign);
  THAW_CHECK(ptr != nullptr, "out of host memory: could not allocate {:.1f} MiB", bytes / 1048576.0);
  return ptr;
}
void release_pinned(void* ptr) noexcept {
  std::free(ptr);
}

}  // namespace thaw::cuda_runtime
