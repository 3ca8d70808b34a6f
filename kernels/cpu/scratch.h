// kernels/cpu/scratch.h: per-thread scratch buffers for the CPU kernels (im2col matrices, gathered
// gradients). A buffer keeps its memory between calls and only grows, so a kernel that runs every training
// step does not allocate, zero and page-fault a fresh buffer each time; its contents are uninitialised.
// Each thread has kScratchSlots buffers; a kernel uses distinct slots for buffers it needs at the same time,
// and never keeps a pointer past its own return (the next kernel on the thread reuses the memory).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace thaw::cpu {

inline constexpr int kScratchSlots = 3;

// A buffer of at least `count` T on the calling thread, 64-byte aligned; valid until the next scratch()
// call for the same slot on this thread.
template <typename T>
T* scratch(int slot, int64_t count) {
  struct Buffer {
    void* data = nullptr;
    size_t bytes = 0;
    ~Buffer() { std::free(data); }
  };
  thread_local Buffer buffers[kScratchSlots];
  Buffer& b = buffers[slot];
  const size_t bytes = (size_t(count) * sizeof(T) + 63) / 64 * 64;
  if (bytes > b.bytes) {
    std::free(b.data);
    b.data = std::aligned_alloc(64, bytes);
    b.bytes = b.data ? bytes : 0;
    if (!b.data) throw std::bad_alloc();
  }
  return static_cast<T*>(b.data);
}

}  // namespace thaw::cpu
