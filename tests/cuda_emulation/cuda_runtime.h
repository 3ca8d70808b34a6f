// A stand-in for <cuda_runtime.h> that runs simple CUDA programs on the CPU, so that CUDA code that cannot
// run here without a GPU is still executed by every test run: the convolution worklog's kernels
// (bench/conv_worklog/) and the device transforms' kernels and their stream logic
// (data/cuda/device_transforms.cu).
//   - Each block's threads are std::threads; __syncthreads() is a std::barrier, and each warp of 32 threads
//     has its own barrier for __shfl_down_sync. Blocks run one after another, so __shared__ arrays can be
//     function-local statics. atomicAdd is an atomic read-modify-write.
//   - "Device" memory is host memory. Every asynchronous copy, memset and launch runs at once, in the order
//     the host issues them: one valid order of the streams, as long as the code waits on events for what
//     it depends on (it must issue the producer first anyway). Events record nothing and time nothing.
//   - Not emulated: tensor-core instructions, inline PTX, intrinsics beyond those here.
// Launches are written emu_launch(grid, block, [&] { k(...); }); rewrite.cmake turns k<<<grid, block>>>(...)
// and k<<<grid, block, 0, stream>>>(...) into that.
#pragma once

#include <atomic>
#include <barrier>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct float4 {
  float x, y, z, w;
};

inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;
inline std::barrier<>* emu_block_barrier = nullptr;

// One warp's meeting point for shuffles: its barrier and one 8-byte slot per lane.
struct EmuWarp {
  explicit EmuWarp(unsigned lanes) : barrier(lanes) {}
  std::barrier<> barrier;
  uint64_t slots[32] = {};
};
inline thread_local EmuWarp* emu_warp = nullptr;
inline thread_local unsigned emu_lane = 0;

inline void __syncthreads() {
  emu_block_barrier->arrive_and_wait();
}

// Every lane of the warp must call it, as on the GPU with a full mask.
template <typename T>
T __shfl_down_sync(unsigned, T value, int offset) {
  static_assert(sizeof(T) <= 8, "emulated shuffles move at most 8 bytes");
  std::memcpy(&emu_warp->slots[emu_lane], &value, sizeof(T));
  emu_warp->barrier.arrive_and_wait();
  T result = value;
  if (emu_lane + unsigned(offset) < 32) std::memcpy(&result, &emu_warp->slots[emu_lane + offset], sizeof(T));
  emu_warp->barrier.arrive_and_wait();  // nobody overwrites a slot before every lane has read
  return result;
}

template <typename T>
T atomicAdd(T* address, T value) {
  return std::atomic_ref<T>(*address).fetch_add(value);
}

#define __global__
#define __device__
#define __host__
#define __forceinline__
#define __launch_bounds__(threads)
#define __shared__ static
#define __align__(bytes)

// Runs `kernel` (a callable that makes the kernel call) for every thread of every block.
template <typename Kernel>
void emu_launch(dim3 grid, dim3 block, Kernel kernel) {
  gridDim = grid;
  blockDim = block;
  const unsigned threads = block.x * block.y * block.z;
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        std::barrier<> barrier(threads);
        emu_block_barrier = &barrier;
        std::vector<std::unique_ptr<EmuWarp>> warps;
        for (unsigned first = 0; first < threads; first += 32)
          warps.push_back(std::make_unique<EmuWarp>(std::min(32u, threads - first)));
        std::vector<std::thread> team;
        for (unsigned t = 0; t < threads; ++t)
          team.emplace_back([&, t] {
            threadIdx = dim3(t % block.x, t / block.x % block.y, t / (block.x * block.y));
            blockIdx = dim3(bx, by, bz);
            emu_warp = warps[t / 32].get();
            emu_lane = t % 32;
            kernel();
          });
        for (std::thread& member : team)
          member.join();
      }
}

// The runtime calls the worklog and the device transforms make.
using cudaError_t = int;
constexpr cudaError_t cudaSuccess = 0, cudaErrorMemoryAllocation = 2, cudaErrorNotReady = 600;
enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
using cudaEvent_t = int*;  // events: never waited for, everything has run already
using cudaStream_t = int*;
constexpr unsigned cudaStreamNonBlocking = 1, cudaEventDisableTiming = 2, cudaEventBlockingSync = 1;
struct cudaDeviceProp {
  char name[64] = "CPU emulation (tests/cuda_emulation)";
};
inline const char* cudaGetErrorString(cudaError_t) {
  return "emulation error";
}
template <typename T>
cudaError_t cudaMalloc(T** ptr, size_t bytes) {
  *ptr = static_cast<T*>(std::malloc(bytes));
  return *ptr != nullptr ? cudaSuccess : cudaErrorMemoryAllocation;
}
inline cudaError_t cudaFree(void* ptr) {
  std::free(ptr);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
  std::memcpy(dst, src, bytes);
  return cudaSuccess;
}
inline cudaError_t cudaMemset(void* dst, int value, size_t bytes) {
  std::memset(dst, value, bytes);
  return cudaSuccess;
}
inline cudaError_t cudaGetLastError() {
  return cudaSuccess;
}
inline cudaError_t cudaDeviceSynchronize() {
  return cudaSuccess;
}
inline int emu_handle = 0;  // every stream and event handle points here
inline cudaError_t cudaEventCreate(cudaEvent_t* event) {
  *event = &emu_handle;
  return cudaSuccess;
}
inline cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned) {
  *event = &emu_handle;
  return cudaSuccess;
}
inline cudaError_t cudaEventDestroy(cudaEvent_t) {
  return cudaSuccess;
}
inline cudaError_t cudaEventRecord(cudaEvent_t, cudaStream_t = nullptr) {
  return cudaSuccess;
}
inline cudaError_t cudaEventQuery(cudaEvent_t) {
  return cudaSuccess;
}
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned) {
  *stream = &emu_handle;
  return cudaSuccess;
}
inline cudaError_t cudaStreamDestroy(cudaStream_t) {
  return cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t) {
  return cudaSuccess;
}
inline cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned) {
  return cudaSuccess;
}
template <typename T>
cudaError_t cudaMallocHost(T** ptr, size_t bytes) {
  *ptr = static_cast<T*>(std::malloc(bytes));
  return *ptr != nullptr ? cudaSuccess : cudaErrorMemoryAllocation;
}
inline cudaError_t cudaFreeHost(void* ptr) {
  std::free(ptr);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind, cudaStream_t) {
  std::memcpy(dst, src, bytes);
  return cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t) {
  std::memset(dst, value, bytes);
  return cudaSuccess;
}
inline cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  *free_bytes = *total_bytes = size_t(1) << 30;
  return cudaSuccess;
}
inline cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}
inline cudaError_t cudaSetDevice(int) {
  return cudaSuccess;
}
inline cudaError_t cudaEventSynchronize(cudaEvent_t) {
  return cudaSuccess;
}
inline cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t, cudaEvent_t) {
  *ms = 1.0f;
  return cudaSuccess;
}
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp*, int) {
  return cudaSuccess;
}
