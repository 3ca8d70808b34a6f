// Tile machinery shared by the three implicit-GEMM convolution kernels (conv2d_forward.cu,
// conv2d_backward_data.cu, conv2d_backward_weight.cu).
//
// Each kernel computes one GEMM  C (M x Ncols) = A (M x Kd) @ B (Kd x Ncols)  whose operands are never
// materialised: an "operands" struct (one per kernel) gathers each (BM x 8) tile of A and (8 x BN) tile of B
// straight from the tensors (implicit im2col, zero where the convolution reads padding). This file holds
// what is the same for all three:
//   - the block tiling: 256 threads, a BM x BN tile of C per block (128x128, 64x128 or 64x64), Kd walked in
//     steps of kTileK = 8; each thread owns a TM x TN = (BM/16) x (BN/16) micro-tile of C in registers;
//   - the main loop: A and B tiles staged in shared memory, double-buffered, with the next tile's global
//     loads in flight (in registers) while the current tile is multiplied;
//   - a mixed-radix counter that walks Kd indices such as (c, r, s) without integer division;
//   - the NCHW epilogue that forward and backward-data share;
//   - the host-side choice of the tile size.
// float32 throughout, plain FMA (no TF32), so integer-valued inputs give exact results.
#pragma once

#include <cuda_runtime.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <type_traits>

#include "kernels/cuda/launch.h"

namespace thaw::cuda::conv {

constexpr int kThreads = 256;  // threads per block, a 16 x 16 grid of micro-tiles
constexpr int kTileK = 8;      // Kd step of one shared-memory stage

// Shapes derived from the block tile BM x BN.
template <int BM, int BN>
struct Tile {
  static constexpr int kTM = BM / 16, kTN = BN / 16;      // micro-tile of one thread
  static constexpr int kALoads = BM * kTileK / kThreads;  // A elements one thread stages per k-tile
  static constexpr int kBLoads = BN * kTileK / kThreads;  // B elements one thread stages per k-tile
  static_assert(BM % 64 == 0 && BN % 64 == 0, "tile sides are 64 or 128");
};

// Two stages of the A tile (kTileK x BM) and B tile (kTileK x BN), both k-major so that a thread reads its
// micro-tile's column of A and row of B as float4s. The +4 padding keeps the transposing stores
// (kk-fast staging below) free of bank conflicts while keeping rows 16-byte aligned.
template <int BM, int BN>
struct Smem {
  float a[2][kTileK][BM + 4];
  float b[2][kTileK][BN + 4];
};

// Row (of A / C) of micro-tile element i for thread row ty, and likewise the column of element j for
// thread column tx: the micro-tile is split into groups of 4 spaced 64 apart, so a warp's float4 reads of
// shared memory are contiguous (conflict-free).
__device__ __forceinline__ int micro_offset(int i, int t16) {
  return (i / 4) * 64 + t16 * 4 + i % 4;
}

// How a thread's staged elements map onto a (kTileK x ROWS) stage, ROWS = BM for A or BN for B.
//   kKFast:   element i is (kk = t % 8,           row = t / 8 + 32 i)             reads along Kd coalesce
//   kRowFast: element i is (kk = t / ROWS + (256 / ROWS) i, row = t % ROWS)       reads along rows coalesce
enum class Staging { kKFast, kRowFast };

template <Staging kStaging, int ROWS, int LOADS>
__device__ __forceinline__ void stage(float (*dst)[ROWS + 4], const float (&v)[LOADS]) {
  const int t = threadIdx.x;
#pragma unroll
  for (int i = 0; i < LOADS; ++i) {
    if (kStaging == Staging::kKFast)
      dst[t % kTileK][t / kTileK + 32 * i] = v[i];
    else
      dst[t / ROWS + (kThreads / ROWS) * i][t % ROWS] = v[i];
  }
}

// A Kd index kk = (hi * R + mid) * S + lo, e.g. (c, r, s) for R x S filters or (n, p, q) for P x Q
// outputs. Stepping it by a fixed amount needs no division: a precomputed RadixStep holds the step's own
// digits, and each digit carries at most once because both summands are below the radix.
struct RadixStep {
  int hi, mid, lo;
};

inline RadixStep radix_step(int step, int R, int S) {
  return {step / (R * S), (step / S) % R, step % S};
}

struct RadixCounter {
  int hi, mid, lo;

  __device__ __forceinline__ void set(int kk, int R, int S) {
    hi = kk / (R * S);
    const int rest = kk - hi * (R * S);
    mid = rest / S;
    lo = rest - mid * S;
  }
  __device__ __forceinline__ void advance(const RadixStep& step, int R, int S) {
    lo += step.lo;
    if (lo >= S) {
      lo -= S;
      ++mid;
    }
    mid += step.mid;  // mid <= R here, so mid < 2R
    if (mid >= R) {
      mid -= R;
      ++hi;
    }
    hi += step.hi;
  }
};

// A that is a dense row-major matrix (M x Kd) in global memory, staged kk-fast: forward reads the filters
// w (K x CRS) this way, backward-data the transposed filters (C x KRS).
template <int BM>
struct DenseA {
  static constexpr int kLoads = BM * kTileK / kThreads;
  const float* a;
  int kd;         // row length
  int kk;         // this thread's Kd index in the current k-tile
  int offset;     // a[offset] is (row m0 + t/8, column kk); 0 when that row is past the end
  int rows_left;  // M - (m0 + t/8): element i is inside the matrix when 32 i < rows_left

  __device__ __forceinline__ DenseA(const float* a_, int m, int kd_, int m0, int k_begin) : a(a_), kd(kd_) {
    const int t = threadIdx.x;
    kk = k_begin + t % kTileK;
    rows_left = m - (m0 + t / kTileK);
    offset = rows_left > 0 ? (m0 + t / kTileK) * kd + kk : 0;
  }
  // Loads this thread's elements of the current k-tile and moves on to the next.
  __device__ __forceinline__ void load(float (&v)[kLoads]) {
#pragma unroll
    for (int i = 0; i < kLoads; ++i)
      v[i] = (kk < kd && 32 * i < rows_left) ? __ldg(a + offset + 32 * i * kd) : 0.0f;
    kk += kTileK;
    offset += kTileK;
  }
};

// acc = A (rows m0.., BM) @ B (columns n0.., BN) over k_tiles tiles of Kd, read through ops (which knows
// where the tiles start). Every thread of the block must call it (it synchronises). Operands provides
//   kAStaging, kBStaging, load(a, b): the thread's elements of the current k-tile, then advance.
template <int BM, int BN, class Operands>
__device__ __forceinline__ void gemm_mainloop(Operands& ops, int k_tiles, Smem<BM, BN>& sm,
                                              float (&acc)[Tile<BM, BN>::kTM][Tile<BM, BN>::kTN]) {
  constexpr int TM = Tile<BM, BN>::kTM, TN = Tile<BM, BN>::kTN;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j)
      acc[i][j] = 0.0f;
  if (k_tiles <= 0) return;  // uniform across the block

  float a[Tile<BM, BN>::kALoads], b[Tile<BM, BN>::kBLoads];
  ops.load(a, b);
  stage<Operands::kAStaging, BM>(sm.a[0], a);
  stage<Operands::kBStaging, BN>(sm.b[0], b);
  __syncthreads();

  for (int kt = 0; kt < k_tiles; ++kt) {
    const int cur = kt & 1;
    const bool more = kt + 1 < k_tiles;
    if (more) ops.load(a, b);  // next tile's global loads overlap this tile's FMAs
#pragma unroll
    for (int kk = 0; kk < kTileK; ++kk) {
      float fa[TM], fb[TN];
#pragma unroll
      for (int g = 0; g < TM / 4; ++g) {
        const float4 v = *reinterpret_cast<const float4*>(&sm.a[cur][kk][g * 64 + ty * 4]);
        fa[4 * g] = v.x, fa[4 * g + 1] = v.y, fa[4 * g + 2] = v.z, fa[4 * g + 3] = v.w;
      }
#pragma unroll
      for (int g = 0; g < TN / 4; ++g) {
        const float4 v = *reinterpret_cast<const float4*>(&sm.b[cur][kk][g * 64 + tx * 4]);
        fb[4 * g] = v.x, fb[4 * g + 1] = v.y, fb[4 * g + 2] = v.z, fb[4 * g + 3] = v.w;
      }
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j)
          acc[i][j] = fmaf(fa[i], fb[j], acc[i][j]);
    }
    // Stage cur ^ 1 was last read in iteration kt - 1, which every thread has finished (the barrier
    // below it); the barrier below this store publishes it for iteration kt + 1.
    if (more) {
      stage<Operands::kAStaging, BM>(sm.a[cur ^ 1], a);
      stage<Operands::kBStaging, BN>(sm.b[cur ^ 1], b);
    }
    __syncthreads();
  }
}

// Epilogue of forward and backward-data: C (M x Ncols) with column col = n * plane + pixel goes to the
// NCHW tensor y[n, m, pixel] (plane = pixels per image), plus bias[m] when bias is not null. Writes
// float4s where four columns are consecutive pixels of one image (plane % 4 == 0, y 16-byte aligned).
template <int BM, int BN>
__device__ __forceinline__ void store_nchw(const float (&acc)[Tile<BM, BN>::kTM][Tile<BM, BN>::kTN], float* y,
                                           const float* bias, int m_total, int cols, int plane, int m0,
                                           int n0) {
  constexpr int TM = Tile<BM, BN>::kTM, TN = Tile<BM, BN>::kTN;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const bool vector = plane % 4 == 0 && reinterpret_cast<uintptr_t>(y) % 16 == 0;
#pragma unroll
  for (int g = 0; g < TN / 4; ++g) {
    const int col0 = n0 + g * 64 + tx * 4;
    if (col0 >= cols) continue;
    if (vector && col0 + 3 < cols) {
      // col0 % 4 == 0 and plane % 4 == 0: the four columns are pixels of one image, 16-byte aligned.
      const int img = col0 / plane, pixel = col0 - img * plane;
      float* base = y + (int64_t(img) * m_total) * plane + pixel;
#pragma unroll
      for (int i = 0; i < TM; ++i) {
        const int m = m0 + micro_offset(i, ty);
        if (m >= m_total) continue;
        const float add = bias ? __ldg(bias + m) : 0.0f;
        const float4 v = {acc[i][4 * g] + add, acc[i][4 * g + 1] + add, acc[i][4 * g + 2] + add,
                          acc[i][4 * g + 3] + add};
        *reinterpret_cast<float4*>(base + int64_t(m) * plane) = v;
      }
    } else {
#pragma unroll
      for (int jj = 0; jj < 4; ++jj) {
        const int col = col0 + jj;
        if (col >= cols) continue;
        const int img = col / plane, pixel = col - img * plane;
        float* base = y + (int64_t(img) * m_total) * plane + pixel;
#pragma unroll
        for (int i = 0; i < TM; ++i) {
          const int m = m0 + micro_offset(i, ty);
          if (m >= m_total) continue;
          base[int64_t(m) * plane] = acc[i][4 * g + jj] + (bias ? __ldg(bias + m) : 0.0f);
        }
      }
    }
  }
}

// ---- host side ----------------------------------------------------------------------------------------

// The block tiles the launchers choose from.
enum class TileShape { k128x128, k64x128, k64x64 };

// Calls f(std::integral_constant<int, BM>{}, std::integral_constant<int, BN>{}) with the block tile of
// shape, so that one generic lambda instantiates a pass for every tile (the launchers read the tile back as
// decltype(bm)::value).
template <class F>
void with_tile(TileShape shape, F&& f) {
  using std::integral_constant;
  switch (shape) {
    case TileShape::k128x128:
      f(integral_constant<int, 128>{}, integral_constant<int, 128>{});
      break;
    case TileShape::k64x128:
      f(integral_constant<int, 64>{}, integral_constant<int, 128>{});
      break;
    case TileShape::k64x64:
      f(integral_constant<int, 64>{}, integral_constant<int, 64>{});
      break;
  }
}

struct TileChoice {
  TileShape shape;
  int bm, bn;
};

// Streaming multiprocessors of the current device.
inline int sm_count() {
  int device = 0, sms = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice (conv2d)");
  check_cuda(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device),
             "cudaDeviceGetAttribute (conv2d)");
  return sms > 0 ? sms : 1;
}

// The tile forced by the environment variable THAW_CONV_TILE (128x128, 64x128 or 64x64), for measuring the
// choice below (e.g. THAW_CONV_TILE=64x64 thaw bench kernels --filter conv2d); -1 when unset. Anything else
// is an error naming the variable.
inline int forced_tile_index() {
  static const int index = [] {
    const char* value = std::getenv("THAW_CONV_TILE");
    if (value == nullptr || *value == 0) return -1;
    const std::string v(value);
    if (v == "128x128") return 0;
    if (v == "64x128") return 1;
    if (v == "64x64") return 2;
    fail("THAW_CONV_TILE='{}': expected 128x128, 64x128 or 64x64 (or unset)", v);
  }();
  return index;
}

// Picks the tile for an (M x Ncols) output by a rough cost model: the busiest SM's share of blocks,
// ceil(tiles / SMs), times each block's work, divided by the tile's relative efficiency (bigger tiles reuse
// each loaded element more: 8x8 micro-tiles do 16 FMAs per shared-memory float read, 4x4 ones 8). Small
// tiles win only where big ones would leave SMs idle or pad M (e.g. K = 64 filters). With whole_blocks
// false (split-K fills the machine anyway) the block count is not rounded up to whole SMs.
inline TileChoice choose_tile(int64_t m, int64_t cols, bool whole_blocks) {
  constexpr TileChoice kChoices[3] = {
      {TileShape::k128x128, 128, 128}, {TileShape::k64x128, 64, 128}, {TileShape::k64x64, 64, 64}};
  if (forced_tile_index() >= 0) return kChoices[forced_tile_index()];
  constexpr double kEfficiency[3] = {1.0, 0.8, 0.6};
  const int sms = sm_count();
  int best = 0;
  double best_cost = 0;
  for (int i = 0; i < 3; ++i) {
    const int64_t tiles =
        ((m + kChoices[i].bm - 1) / kChoices[i].bm) * ((cols + kChoices[i].bn - 1) / kChoices[i].bn);
    const double per_sm = whole_blocks ? double((tiles + sms - 1) / sms) : double(tiles) / sms;
    const double cost = per_sm * kChoices[i].bm * kChoices[i].bn / kEfficiency[i];
    if (i == 0 || cost < best_cost) best = i, best_cost = cost;
  }
  return kChoices[best];
}

// Problem identity for the tile cache: op (0 forward, 1 backward-data), N, C, H, W, K, R, S, strides, pads.
using ProblemKey = std::array<int, 12>;

// Launches a convolution pass with the fastest tile for its problem, measured on first use (as PyTorch's
// cudnn.benchmark does): the first call for a key runs every tile shape twice (a warm-up, then timed with
// events) and remembers the fastest; later calls launch it directly. THAW_CONV_TILE skips the search.
// Only for passes where the tile cannot change the result: forward and backward-data sum each output's Kd
// terms in index order whatever the tile, so every tile gives the same bits and the choice stays
// invisible (backward-weight's split-K depends on the tile, so it keeps choose_tile's model).
// launch(TileShape) must launch the pass and check the launch.
template <class Launch>
void launch_fastest_tile(const ProblemKey& key, int64_t m, int64_t cols, Launch&& launch) {
  constexpr TileShape kShapes[3] = {TileShape::k128x128, TileShape::k64x128, TileShape::k64x64};
  if (forced_tile_index() >= 0) {
    launch(kShapes[forced_tile_index()]);
    return;
  }
  static std::mutex mutex;
  static std::map<ProblemKey, TileShape> fastest;
  {
    std::lock_guard<std::mutex> lock(mutex);
    const auto it = fastest.find(key);
    if (it != fastest.end()) {
      launch(it->second);
      return;
    }
  }
  cudaEvent_t start = nullptr, stop = nullptr;
  check_cuda(cudaEventCreate(&start), "cudaEventCreate (conv2d tile search)");
  check_cuda(cudaEventCreate(&stop), "cudaEventCreate (conv2d tile search)");
  TileShape best = choose_tile(m, cols, /*whole_blocks=*/true).shape;
  float best_ms = 0;
  bool first = true;
  for (const TileShape shape : kShapes) {
    launch(shape);  // warm-up: loads the kernel's module on first use
    check_cuda(cudaEventRecord(start, stream()), "cudaEventRecord (conv2d tile search)");
    launch(shape);
    check_cuda(cudaEventRecord(stop, stream()), "cudaEventRecord (conv2d tile search)");
    check_cuda(cudaEventSynchronize(stop), "cudaEventSynchronize (conv2d tile search)");
    float ms = 0;
    check_cuda(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime (conv2d tile search)");
    if (first || ms < best_ms) best = shape, best_ms = ms, first = false;
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  launch(best);  // the output is the same whichever tile wrote it last; this keeps the code obvious
  std::lock_guard<std::mutex> lock(mutex);
  fastest.emplace(key, best);
}

// Blocks of kernel resident per SM (256 threads, static shared memory only); cached by the caller.
template <class Kernel>
int blocks_per_sm(Kernel kernel) {
  int blocks = 0;
  check_cuda(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kernel, kThreads, 0),
             "cudaOccupancyMaxActiveBlocksPerMultiprocessor (conv2d)");
  return blocks;
}

// Fails unless every index into t fits in int32 (the kernels index with int).
inline void check_int32_indexable(int64_t numel, const char* op, const char* what) {
  if (numel > INT32_MAX)
    fail("{}: {} has {} elements, more than the int32 indexing of the CUDA kernels allows", op, what, numel);
}

}  // namespace thaw::cuda::conv
