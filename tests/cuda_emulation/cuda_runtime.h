// A stand-in for <cuda_runtime.h> that runs CUDA code on the CPU, so that the CUDA code no test can run here
// without a GPU is still executed by every test run: the convolution worklog (bench/conv_worklog/) and, in
// a build configured with -DTHAW_CUDA=EMULATE, thaw's whole CUDA backend (kernels/cuda/, data/cuda/, the
// caching allocator) under its own tests. What it checks is the kernels' logic: indexing, tiling, edges,
// barriers, warp exchanges, tensor-core fragment layouts. What it cannot check: speed, the memory model,
// races (the threads of a block take turns), and the hardware's own summation order inside an mma.
//   - A block's threads are fibers run by one scheduler on the launching thread: each runs until
//     it reaches a barrier (__syncthreads, or a warp's shuffle, match or __syncwarp) or ends, then the next
//     one runs. A barrier opens when every thread of its block (or warp) that has not ended waits at it; a
//     launch in which nobody can go on is a divergent barrier, reported and aborted. Blocks run one after
//     another, so __shared__ variables can be function-local statics.
//   - "Device" memory is host memory (256-byte aligned, as cudaMalloc's). Every asynchronous copy, memset
//     and launch runs at once, in the order the host issues them: one valid order of the streams, as long
//     as the code waits on events for what it depends on. Events record nothing; elapsed times are 1 ms.
//   - The card it pretends to be: one device, compute capability 9.0 with 132 SMs (an H100's), code built
//     for it (so the tensor-core paths run). mma.sync m16n8k8 in tf32 and bf16 is emulated lane by lane from
//     PTX's fragment layouts, with the products summed exactly and rounded once.
// Launches are written emu_launch([&] { k(args); }, grid, block[, shared bytes, stream]); rewrite.cmake
// turns every k<<<...>>>(args); of a .cu file into that.
#pragma once

#include <ucontext.h>

#include <math.h>
#include <algorithm>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <type_traits>
#include <vector>

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct float2 {
  float x, y;
};
struct float4 {
  float x, y, z, w;
};
struct int2 {
  int x, y;
};
inline float2 make_float2(float x, float y) {
  return {x, y};
}
inline float4 make_float4(float x, float y, float z, float w) {
  return {x, y, z, w};
}
inline int2 make_int2(int x, int y) {
  return {x, y};
}

inline dim3 threadIdx, blockIdx, blockDim, gridDim;

using cudaError_t = int;
constexpr cudaError_t cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorMemoryAllocation = 2,
                      cudaErrorInvalidConfiguration = 9, cudaErrorNotReady = 600;

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__
#define __restrict__ __restrict
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(bytes) __attribute__((aligned(bytes)))

// ---- the scheduler -------------------------------------------------------------------------------------

extern "C" void emu_switch_stack(void** save_sp, void* load_sp);  // x86-64 only, defined below
extern "C" inline void emu_fiber_entry();                         // a fiber's first frame

namespace emu {

inline void die(const char* what) {
  std::fprintf(stderr, "CUDA emulation: %s (block %u,%u,%u thread %u,%u,%u)\n", what, blockIdx.x, blockIdx.y,
               blockIdx.z, threadIdx.x, threadIdx.y, threadIdx.z);
  std::abort();
}

enum class Wait { kNone, kBlock, kWarp, kDone };

// Switching between fibers: on x86-64 a minimal switch of the stack pointer and the callee-saved registers
// (a few nanoseconds; the emulated targets are built with -fcf-protection=none, as a switch of stacks
// needs), elsewhere ucontext (swapcontext also saves the signal mask, a system call per switch).
#if defined(__x86_64__)
// emu_switch_stack: pushes rbp, rbx, r12-r15, stores rsp in *save_sp, loads load_sp and pops the same.
asm(R"(
  .pushsection .text.emu_switch_stack,"axG",@progbits,emu_switch_stack,comdat
  .weak emu_switch_stack
  .type emu_switch_stack, @function
emu_switch_stack:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size emu_switch_stack, .-emu_switch_stack
  .popsection
)");

struct Context {
  void* sp = nullptr;
};
// A fresh stack whose first switch "returns" into emu_fiber_entry as if it had been called: six zeroed
// registers, the entry's address, and a slot for the return address it never uses (16-byte alignment).
inline void prepare(Context& context, char* stack, size_t bytes, Context*) {
  uintptr_t top = (reinterpret_cast<uintptr_t>(stack) + bytes) & ~uintptr_t(15);
  void** sp = reinterpret_cast<void**>(top - 64);
  for (int i = 0; i < 6; ++i)
    sp[i] = nullptr;
  sp[6] = reinterpret_cast<void*>(&emu_fiber_entry);
  sp[7] = nullptr;
  context.sp = sp;
}
inline void switch_to(Context& from, Context& to) {
  emu_switch_stack(&from.sp, to.sp);
}
#else
struct Context {
  ucontext_t uc;
};
inline void prepare(Context& context, char* stack, size_t bytes, Context* back) {
  getcontext(&context.uc);
  context.uc.uc_stack.ss_sp = stack;
  context.uc.uc_stack.ss_size = bytes;
  context.uc.uc_link = &back->uc;
  makecontext(&context.uc, emu_fiber_entry, 0);
}
inline void switch_to(Context& from, Context& to) {
  swapcontext(&from.uc, &to.uc);
}
#endif

struct Fiber {
  Context context;
  std::unique_ptr<char[]> stack;
  Wait wait = Wait::kNone;
};

// One warp's meeting point: how many of its lanes have not ended, how many wait, and one slot per lane for
// what the lanes exchange (a shuffled value, or an mma fragment).
struct Warp {
  unsigned live = 0, waiting = 0;
  uint64_t slots[32] = {};
  uint32_t fragments[32][8] = {};
};

struct Block {
  static constexpr size_t kStackBytes = 256 * 1024;
  std::vector<Fiber> fibers;  // grows to the largest block launched; stacks are kept
  std::vector<Warp> warps;
  Context scheduler;
  unsigned threads = 0, live = 0, waiting = 0, current = 0;
  const std::function<void()>* body = nullptr;
};

inline Block& block() {
  static Block b;
  return b;
}

inline void set_thread_index(unsigned t) {
  threadIdx = dim3(t % blockDim.x, t / blockDim.x % blockDim.y, t / (blockDim.x * blockDim.y));
}

// Hands control back to the scheduler until this fiber may go on.
inline void yield() {
  Block& b = block();
  switch_to(b.fibers[b.current].context, b.scheduler);
}

// Opens the block barrier when every thread that has not ended waits at it.
inline void open_block_barrier_if_full() {
  Block& b = block();
  if (b.waiting == 0 || b.waiting < b.live) return;
  for (unsigned t = 0; t < b.threads; ++t)
    if (b.fibers[t].wait == Wait::kBlock) b.fibers[t].wait = Wait::kNone;
  b.waiting = 0;
}

inline void open_warp_barrier_if_full(unsigned w) {
  Block& b = block();
  Warp& warp = b.warps[w];
  if (warp.waiting == 0 || warp.waiting < warp.live) return;
  const unsigned last = std::min(b.threads, 32 * (w + 1));
  for (unsigned t = 32 * w; t < last; ++t)
    if (b.fibers[t].wait == Wait::kWarp) b.fibers[t].wait = Wait::kNone;
  warp.waiting = 0;
}

inline void block_barrier() {
  Block& b = block();
  b.fibers[b.current].wait = Wait::kBlock;
  ++b.waiting;
  open_block_barrier_if_full();
  yield();
}

inline void warp_barrier() {
  Block& b = block();
  const unsigned w = b.current / 32;
  b.fibers[b.current].wait = Wait::kWarp;
  ++b.warps[w].waiting;
  open_warp_barrier_if_full(w);
  yield();
}

inline unsigned lane() {
  return block().current % 32;
}
inline Warp& my_warp() {
  return block().warps[block().current / 32];
}
// Lanes in the caller's warp: 32, or fewer in the last warp of a block that is not a multiple of 32.
inline unsigned warp_lanes() {
  return std::min(32u, block().threads - block().current / 32 * 32);
}

inline void fiber_main() {
  Block& b = block();
  (*b.body)();
  b.fibers[b.current].wait = Wait::kDone;
  --b.live;
  --b.warps[b.current / 32].live;
  open_block_barrier_if_full();
  open_warp_barrier_if_full(b.current / 32);
}

// Runs body for every thread of the current block (blockIdx, blockDim set).
inline void run_block(const std::function<void()>& body) {
  Block& b = block();
  const unsigned threads = blockDim.x * blockDim.y * blockDim.z;
  if (b.fibers.size() < threads) b.fibers.resize(threads);
  b.warps.assign((threads + 31) / 32, Warp{});
  b.threads = b.live = threads;
  b.waiting = 0;
  b.body = &body;
  for (unsigned t = 0; t < threads; ++t) {
    Fiber& f = b.fibers[t];
    if (!f.stack) f.stack = std::make_unique<char[]>(Block::kStackBytes);
    prepare(f.context, f.stack.get(), Block::kStackBytes, &b.scheduler);
    f.wait = Wait::kNone;
    ++b.warps[t / 32].live;
  }
  while (b.live > 0) {
    bool ran = false;
    for (unsigned t = 0; t < threads; ++t) {
      if (b.fibers[t].wait != Wait::kNone) continue;
      b.current = t;
      set_thread_index(t);
      switch_to(b.scheduler, b.fibers[t].context);
      ran = true;
    }
    if (!ran) die("every thread that has not ended waits at a barrier the others never reach");
  }
}

}  // namespace emu

// A fiber's first frame: the thread's body, then back to the scheduler for good (with ucontext, returning
// does that through uc_link).
extern "C" inline void emu_fiber_entry() {
  emu::fiber_main();
#if defined(__x86_64__)
  emu::Block& b = emu::block();
  emu::switch_to(b.fibers[b.current].context, b.scheduler);
  emu::die("a finished fiber was resumed");
#endif
}

namespace emu {

// The host side's state: the last launch error, and one launch at a time (the statics of __shared__).
inline cudaError_t& last_error() {
  static cudaError_t error = cudaSuccess;
  return error;
}
inline std::mutex& launch_mutex() {
  static std::mutex m;
  return m;
}

// Exchanges value across the warp: every live lane must call it; returns the value of lane source(lane),
// or the caller's own where source is outside the warp.
template <typename T, typename Source>
T exchange(T value, Source source) {
  static_assert(sizeof(T) <= 8, "emulated shuffles move at most 8 bytes");
  Warp& warp = my_warp();
  std::memcpy(&warp.slots[lane()], &value, sizeof(T));
  warp_barrier();
  const unsigned from = source(lane());
  T result = value;
  if (from < warp_lanes()) std::memcpy(&result, &warp.slots[from], sizeof(T));
  warp_barrier();  // nobody overwrites a slot before every lane has read
  return result;
}

}  // namespace emu

template <typename Kernel>
void emu_launch(Kernel kernel, dim3 grid, dim3 block, size_t shared_bytes = 0, void* stream = nullptr) {
  (void)shared_bytes, (void)stream;
  std::lock_guard<std::mutex> lock(emu::launch_mutex());
  const uint64_t threads = uint64_t(block.x) * block.y * block.z;
  if (threads == 0 || threads > 1024 || grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 ||
      grid.z > 65535) {
    emu::last_error() = cudaErrorInvalidConfiguration;
    return;
  }
  gridDim = grid;
  blockDim = block;
  const std::function<void()> body = [&] { kernel(); };
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        blockIdx = dim3(bx, by, bz);
        emu::run_block(body);
      }
}

// ---- device functions ----------------------------------------------------------------------------------

inline void __syncthreads() {
  emu::block_barrier();
}
inline void __syncwarp(unsigned = 0xffffffffu) {
  emu::warp_barrier();
}
template <typename T>
T __shfl_down_sync(unsigned, T value, int offset) {
  return emu::exchange(value, [&](unsigned l) { return l + unsigned(offset); });
}
template <typename T>
T __shfl_xor_sync(unsigned, T value, int mask) {
  return emu::exchange(value, [&](unsigned l) { return l ^ unsigned(mask); });
}
template <typename T>
T __shfl_sync(unsigned, T value, int source) {
  return emu::exchange(value, [&](unsigned) { return unsigned(source) % 32; });
}
// The lanes of the warp whose value equals the caller's (every live lane must call it).
template <typename T>
unsigned __match_any_sync(unsigned, T value) {
  emu::Warp& warp = emu::my_warp();
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  warp.slots[emu::lane()] = bits;
  emu::warp_barrier();
  unsigned mask = 0;
  for (unsigned l = 0; l < emu::warp_lanes(); ++l)
    if (warp.slots[l] == bits) mask |= 1u << l;
  emu::warp_barrier();
  return mask;
}
// CUDA's global math functions (expf, logf, ... come with <math.h>).
using std::isfinite;
using std::isinf;
using std::isnan;

// CUDA's min and max for any two arithmetic types, compared in their common type.
template <typename A, typename B>
std::common_type_t<A, B> min(A a, B b) {
  using T = std::common_type_t<A, B>;
  return T(b) < T(a) ? T(b) : T(a);
}
template <typename A, typename B>
std::common_type_t<A, B> max(A a, B b) {
  using T = std::common_type_t<A, B>;
  return T(a) < T(b) ? T(b) : T(a);
}
inline int __ffs(unsigned x) {
  return __builtin_ffs(int(x));
}
inline int __popc(unsigned x) {
  return __builtin_popcount(x);
}
inline void __trap() {
  emu::die("__trap()");
}

template <typename T>
T atomicAdd(T* address, T value) {
  const T old = *address;  // the threads of a block take turns, and blocks run one after another
  *address = old + value;
  return old;
}

template <typename T>
T __ldg(const T* p) {
  return *p;
}
inline unsigned __float_as_uint(float x) {
  unsigned u;
  std::memcpy(&u, &x, 4);
  return u;
}
inline float __uint_as_float(unsigned u) {
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}
inline int __float_as_int(float x) {
  return int(__float_as_uint(x));
}
inline float __int_as_float(int i) {
  return __uint_as_float(unsigned(i));
}
// The round-to-nearest intrinsics: the host's float arithmetic (built with -ffp-contract=off) is exactly
// that.
inline float __fmul_rn(float a, float b) {
  return a * b;
}
inline float __fadd_rn(float a, float b) {
  return a + b;
}
inline float __fsub_rn(float a, float b) {
  return a - b;
}
inline float __fdiv_rn(float a, float b) {
  return a / b;
}
inline float __fsqrt_rn(float a) {
  return std::sqrt(a);
}
inline float __fmaf_rn(float a, float b, float c) {
  return std::fma(a, b, c);
}
inline double __dmul_rn(double a, double b) {
  return a * b;
}
inline double __dadd_rn(double a, double b) {
  return a + b;
}

// ---- tensor cores (PTX mma.sync.aligned.m16n8k8.row.col.f32.{tf32,bf16}) --------------------------------

namespace emu {

// cvt.rna.tf32.f32: the top 10 mantissa bits, rounded to nearest with ties away from zero, in a float's
// layout (the low 13 bits zero). NaN and infinities pass through.
inline uint32_t cvt_rna_tf32(float x) {
  uint32_t u = __float_as_uint(x);
  if ((u & 0x7f800000u) == 0x7f800000u) return u;
  return (u + 0x1000u) & 0xffffe000u;
}

// cvt.rn.bf16.f32: the top 16 bits, rounded to nearest even; NaN stays a (quiet) NaN.
inline uint16_t cvt_rn_bf16(float x) {
  const uint32_t u = __float_as_uint(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40u);
  return uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

inline float bf16_value(uint32_t half) {
  return __uint_as_float((half & 0xffffu) << 16);
}

// d[0..3] += A (16 x 8) B (8 x 8) for this lane, given every lane's fragments of A and B as the element
// getters a_at(row, k) and b_at(k, col) rebuild them. The accumulator fragment of lane l = 4 g + t is rows
// g and g + 8, columns 2t and 2t + 1: d0 (g, 2t), d1 (g, 2t + 1), d2 (g + 8, 2t), d3 (g + 8, 2t + 1).
template <typename AAt, typename BAt>
void mma_accumulate(float (&d)[4], AAt a_at, BAt b_at) {
  const unsigned g = lane() / 4, t = lane() % 4;
  for (int i = 0; i < 4; ++i) {
    const unsigned row = g + 8 * (i / 2), col = 2 * t + i % 2;
    double sum = d[i];
    for (unsigned k = 0; k < 8; ++k)
      sum += double(a_at(row, k)) * double(b_at(k, col));
    d[i] = float(sum);
  }
}

// tf32: lane l = 4 g + t holds a0 = A[g][t], a1 = A[g + 8][t], a2 = A[g][t + 4], a3 = A[g + 8][t + 4] and
// b0 = B[t][g], b1 = B[t + 4][g]. The multiplier reads only the tf32 bits of each register.
inline void mma_m16n8k8_tf32(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  Warp& warp = my_warp();
  std::copy(a, a + 4, warp.fragments[lane()]);
  std::copy(b, b + 2, warp.fragments[lane()] + 4);
  warp_barrier();
  auto tf32 = [](uint32_t u) { return __uint_as_float(u & 0xffffe000u); };
  mma_accumulate(
      d,
      [&](unsigned row, unsigned k) {
        const unsigned owner = 4 * (row % 8) + k % 4;
        return tf32(warp.fragments[owner][(row / 8) + 2 * (k / 4)]);
      },
      [&](unsigned k, unsigned col) { return tf32(warp.fragments[4 * col + k % 4][4 + k / 4]); });
  warp_barrier();
}

// bf16: two bf16 per register, the lower k in the low half. Lane l = 4 g + t holds
// a0 = A[g][2t, 2t + 1], a1 = A[g + 8][2t, 2t + 1] and b0 = B[2t, 2t + 1][g].
inline void mma_m16n8k8_bf16(float (&d)[4], const uint32_t (&a)[2], uint32_t b) {
  Warp& warp = my_warp();
  warp.fragments[lane()][0] = a[0];
  warp.fragments[lane()][1] = a[1];
  warp.fragments[lane()][2] = b;
  warp_barrier();
  auto half = [](uint32_t reg, unsigned k) { return bf16_value(k % 2 == 0 ? reg : reg >> 16); };
  mma_accumulate(
      d, [&](unsigned row, unsigned k) { return half(warp.fragments[4 * (row % 8) + k / 2][row / 8], k); },
      [&](unsigned k, unsigned col) { return half(warp.fragments[4 * col + k / 2][2], k); });
  warp_barrier();
}

}  // namespace emu

// ---- the runtime API -------------------------------------------------------------------------------------

enum cudaMemcpyKind {
  cudaMemcpyHostToHost,
  cudaMemcpyHostToDevice,
  cudaMemcpyDeviceToHost,
  cudaMemcpyDeviceToDevice,
  cudaMemcpyDefault
};
enum cudaDeviceAttr {
  cudaDevAttrMultiProcessorCount,
  cudaDevAttrComputeCapabilityMajor,
  cudaDevAttrComputeCapabilityMinor
};
using cudaEvent_t = int*;
using cudaStream_t = int*;
constexpr unsigned cudaStreamNonBlocking = 1, cudaEventDisableTiming = 2, cudaEventBlockingSync = 1;
struct cudaDeviceProp {
  char name[64] = "CPU emulation (tests/cuda_emulation)";
  int major = 9, minor = 0, multiProcessorCount = 132;
  size_t totalGlobalMem = size_t(1) << 30;
};
struct cudaFuncAttributes {
  int ptxVersion = 90, binaryVersion = 90, maxThreadsPerBlock = 1024, numRegs = 0;
  size_t sharedSizeBytes = 0;
};

inline const char* cudaGetErrorString(cudaError_t error) {
  switch (error) {
    case cudaSuccess:
      return "no error";
    case cudaErrorMemoryAllocation:
      return "out of memory";
    case cudaErrorInvalidConfiguration:
      return "invalid configuration argument";
    default:
      return "emulation error";
  }
}
inline cudaError_t cudaGetLastError() {
  const cudaError_t error = emu::last_error();
  emu::last_error() = cudaSuccess;
  return error;
}
inline cudaError_t cudaPeekAtLastError() {
  return emu::last_error();
}

// Device memory: host memory aligned to 256 bytes, as cudaMalloc's.
inline void* emu_allocate(size_t bytes) {
  return std::aligned_alloc(256, (std::max<size_t>(bytes, 1) + 255) / 256 * 256);
}
template <typename T>
cudaError_t cudaMalloc(T** ptr, size_t bytes) {
  *ptr = static_cast<T*>(emu_allocate(bytes));
  return *ptr != nullptr ? cudaSuccess : cudaErrorMemoryAllocation;
}
inline cudaError_t cudaFree(void* ptr) {
  std::free(ptr);
  return cudaSuccess;
}
template <typename T>
cudaError_t cudaMallocHost(T** ptr, size_t bytes) {
  return cudaMalloc(ptr, bytes);
}
inline cudaError_t cudaFreeHost(void* ptr) {
  return cudaFree(ptr);
}
inline cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind) {
  if (bytes > 0) std::memmove(dst, src, bytes);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind,
                                   cudaStream_t = nullptr) {
  return cudaMemcpy(dst, src, bytes, kind);
}
inline cudaError_t cudaMemset(void* dst, int value, size_t bytes) {
  if (bytes > 0) std::memset(dst, value, bytes);
  return cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void* dst, int value, size_t bytes, cudaStream_t = nullptr) {
  return cudaMemset(dst, value, bytes);
}
inline cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  *free_bytes = *total_bytes = cudaDeviceProp{}.totalGlobalMem;
  return cudaSuccess;
}

inline cudaError_t cudaGetDeviceCount(int* count) {
  *count = 1;
  return cudaSuccess;
}
inline cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}
inline cudaError_t cudaSetDevice(int device) {
  return device == 0 ? cudaSuccess : cudaErrorInvalidValue;
}
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int) {
  *prop = cudaDeviceProp{};
  return cudaSuccess;
}
inline cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int) {
  const cudaDeviceProp prop;
  *value = attr == cudaDevAttrMultiProcessorCount      ? prop.multiProcessorCount
           : attr == cudaDevAttrComputeCapabilityMajor ? prop.major
                                                       : prop.minor;
  return cudaSuccess;
}
template <typename F>
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* attributes, F) {
  *attributes = cudaFuncAttributes{};
  return cudaSuccess;
}
template <typename F>
cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, F, int, size_t) {
  *blocks = 2;
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
inline cudaError_t cudaEventSynchronize(cudaEvent_t) {
  return cudaSuccess;
}
inline cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t, cudaEvent_t) {
  *ms = 1.0f;
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
inline cudaError_t cudaStreamWaitEvent(cudaStream_t, cudaEvent_t, unsigned = 0) {
  return cudaSuccess;
}
