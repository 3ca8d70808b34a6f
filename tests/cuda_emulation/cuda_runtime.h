// A stand-in for <cuda_runtime.h> that runs simple CUDA programs on the CPU, so that the convolution
// worklog's kernels (bench/conv_worklog/) are checked by every test run, GPU or not. Each block's threads
// are std::threads and __syncthreads() is a std::barrier; blocks run one after another, so __shared__
// arrays can be function-local statics. "Device" memory is host memory and events time nothing. Enough
// for kernels that use only threadIdx/blockIdx/blockDim/gridDim, shared memory and barriers; not for warp
// shuffles, atomics or tensor-core instructions. Launches are written emu_launch(grid, block, [&] { k(...); })
// (rewrite.cmake turns k<<<grid, block>>>(...) into that).
#pragma once

#include <barrier>
#include <cstdlib>
#include <cstring>
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

inline void __syncthreads() {
  emu_block_barrier->arrive_and_wait();
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
        std::vector<std::thread> team;
        for (unsigned t = 0; t < threads; ++t)
          team.emplace_back([&, t] {
            threadIdx = dim3(t % block.x, t / block.x % block.y, t / (block.x * block.y));
            blockIdx = dim3(bx, by, bz);
            kernel();
          });
        for (std::thread& member : team)
          member.join();
      }
}

// The runtime calls the worklog makes.
using cudaError_t = int;
constexpr cudaError_t cudaSuccess = 0;
enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost };
using cudaEvent_t = int;
struct cudaDeviceProp {
  char name[64] = "CPU emulation (tests/cuda_emulation)";
};
inline const char* cudaGetErrorString(cudaError_t) {
  return "emulation error";
}
template <typename T>
cudaError_t cudaMalloc(T** ptr, size_t bytes) {
  *ptr = static_cast<T*>(std::malloc(bytes));
  return *ptr != nullptr ? cudaSuccess : 2;
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
inline cudaError_t cudaEventCreate(cudaEvent_t*) {
  return cudaSuccess;
}
inline cudaError_t cudaEventRecord(cudaEvent_t) {
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
