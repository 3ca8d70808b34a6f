// Tile machinery shared by the three implicit-GEMM convolution kernels (conv2d_forward.cu,
// conv2d_backward_data.cu, conv2d_backward_weight.cu).
//
// Each kernel computes one GEMM  C (M x Ncols) = A (M x Kd) @ B (Kd x Ncols)  whose operands are never
// materialised: an "operands" struct (one per kernel) gathers each (BM x 8) tile of A and (8 x BN) tile of B
// straight from the tensors (implicit im2col, zero where the convolution reads padding). This file holds
// what is the same for all three:
//   - the block tiling: 256 threads, a BM x BN tile of C per block (128x128, 64x128 or 64x64), Kd walked in
//     steps of kTileK = 8;
//   - the main loop: A and B tiles staged in shared memory, double-buffered, with the next tile's global
//     loads in flight (in registers) while the current tile is multiplied. The multiplication and the
//     accumulators' layout are the precision's (conv2d_math.cuh: FMA micro-tiles for fp32, tensor-core
//     fragments for tf32 and bf16);
//   - a mixed-radix counter that walks Kd indices such as (c, r, s) without integer division;
//   - the NCHW epilogue that forward and backward-data share;
//   - the host-side choice of the tile size and of the arithmetic the card can run.
// In fp32, integer-valued inputs give exact results; in tf32 and bf16 too when they are exact in those
// formats (integers up to 2^11 and 2^8 in magnitude) and the sums stay below 2^24.
#pragma once

#include <cuda_runtime.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <type_traits>

#include "kernels/cuda/conv2d_math.cuh"
#include "kernels/cuda/launch.h"

namespace thaw::cuda::conv {

// Shapes derived from the block tile BM x BN.
template <int BM, int BN>
struct Tile {
  static constexpr int kALoads = BM * kTileK / kThreads;  // A elements one thread stages per k-tile
  static constexpr int kBLoads = BN * kTileK / kThreads;  // B elements one thread stages per k-tile
  static_assert(BM % 64 == 0 && BN % 64 == 0, "tile sides are 64 or 128");
};

// Two stages of the A tile (kTileK x BM) and B tile (kTileK x BN), both k-major, each row padded by PAD
// floats (the accumulator's kPad, chosen so that its reads of shared memory are free of bank conflicts).
template <int BM, int BN, int PAD>
struct Smem {
  float a[2][kTileK][BM + PAD];
  float b[2][kTileK][BN + PAD];
};

// How a thread's staged elements map onto a (kTileK x ROWS) stage, ROWS = BM for A or BN for B.
//   kKFast:   element i is (kk = t % 8,           row = t / 8 + 32 i)             reads along Kd coalesce
//   kRowFast: element i is (kk = t / ROWS + (256 / ROWS) i, row = t % ROWS)       reads along rows coalesce
enum class Staging { kKFast, kRowFast };

template <Staging kStaging, int ROWS, int PAD, int LOADS>
__device__ __forceinline__ void stage(float (*dst)[ROWS + PAD], const float (&v)[LOADS]) {
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
// Acc is the precision's accumulator tile (conv2d_math.cuh).
template <int BM, int BN, class Acc, class Operands>
__device__ __forceinline__ void gemm_mainloop(Operands& ops, int k_tiles, Smem<BM, BN, Acc::kPad>& sm,
                                              Acc& acc) {
  constexpr int PAD = Acc::kPad;
#pragma unroll
  for (int i = 0; i < Acc::kRows; ++i)
#pragma unroll
    for (int j = 0; j < Acc::kCols; ++j)
      acc.v[i][j] = 0.0f;
  if (k_tiles <= 0) return;  // uniform across the block

  float a[Tile<BM, BN>::kALoads], b[Tile<BM, BN>::kBLoads];
  ops.load(a, b);
  stage<Operands::kAStaging, BM, PAD>(sm.a[0], a);
  stage<Operands::kBStaging, BN, PAD>(sm.b[0], b);
  __syncthreads();

  for (int kt = 0; kt < k_tiles; ++kt) {
    const int cur = kt & 1;
    const bool more = kt + 1 < k_tiles;
    if (more) ops.load(a, b);  // next tile's global loads overlap this tile's arithmetic
    acc.multiply(sm.a[cur], sm.b[cur]);
    // Stage cur ^ 1 was last read in iteration kt - 1, which every thread has finished (the barrier
    // below it); the barrier below this store publishes it for iteration kt + 1.
    if (more) {
      stage<Operands::kAStaging, BM, PAD>(sm.a[cur ^ 1], a);
      stage<Operands::kBStaging, BN, PAD>(sm.b[cur ^ 1], b);
    }
    __syncthreads();
  }
}

// Stores RUN consecutive accumulators v[0..RUN) (+ add) at dst, which is aligned for it: one float4, one
// float2 or one float.
template <int RUN>
__device__ __forceinline__ void store_run(float* dst, const float* v, float add) {
  if constexpr (RUN == 4) {
    *reinterpret_cast<float4*>(dst) = make_float4(v[0] + add, v[1] + add, v[2] + add, v[3] + add);
  } else if constexpr (RUN == 2) {
    *reinterpret_cast<float2*>(dst) = make_float2(v[0] + add, v[1] + add);
  } else {
    *dst = v[0] + add;
  }
}

// Epilogue of forward and backward-data: C (M x Ncols) with column col = n * plane + pixel goes to the
// NCHW tensor y[n, m, pixel] (plane = pixels per image), plus bias[m] when bias is not null. Writes a run of
// Acc::kColRun columns at once where they are consecutive pixels of one image (plane % run == 0, y aligned).
template <class Acc>
__device__ __forceinline__ void store_nchw(const Acc& acc, float* y, const float* bias, int m_total, int cols,
                                           int plane, int m0, int n0) {
  constexpr int RUN = Acc::kColRun;
  const bool vector = plane % RUN == 0 && reinterpret_cast<uintptr_t>(y) % (4 * RUN) == 0;
#pragma unroll
  for (int j0 = 0; j0 < Acc::kCols; j0 += RUN) {
    const int col0 = n0 + acc.col(j0);
    if (col0 >= cols) continue;
    if (vector && col0 + RUN - 1 < cols) {
      // col0 % RUN == 0 and plane % RUN == 0: the run's columns are pixels of one image, aligned.
      const int img = col0 / plane, pixel = col0 - img * plane;
      float* base = y + (int64_t(img) * m_total) * plane + pixel;
#pragma unroll
      for (int i = 0; i < Acc::kRows; ++i) {
        const int m = m0 + acc.row(i);
        if (m >= m_total) continue;
        store_run<RUN>(base + int64_t(m) * plane, &acc.v[i][j0], bias ? __ldg(bias + m) : 0.0f);
      }
    } else {
#pragma unroll
      for (int jj = 0; jj < RUN; ++jj) {
        const int col = col0 + jj;
        if (col >= cols) continue;
        const int img = col / plane, pixel = col - img * plane;
        float* base = y + (int64_t(img) * m_total) * plane + pixel;
#pragma unroll
        for (int i = 0; i < Acc::kRows; ++i) {
          const int m = m0 + acc.row(i);
          if (m >= m_total) continue;
          base[int64_t(m) * plane] = acc.v[i][j0 + jj] + (bias ? __ldg(bias + m) : 0.0f);
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
// The index of a tile name, -1 for "" (none forced); what names the value in a message.
inline int tile_index(const std::string& name, const char* what) {
  if (name.empty()) return -1;
  if (name == "128x128") return 0;
  if (name == "64x128") return 1;
  if (name == "64x64") return 2;
  fail("{}='{}': expected 128x128, 64x128 or 64x64 (or unset)", what, name);
}

// The forced tile, read from THAW_CONV_TILE on first use; force_conv2d_tile (cuda_ops.h) changes it, so
// that a test can compare the tiles in one process.
inline std::atomic<int>& forced_tile() {
  static std::atomic<int> index([] {
    const char* value = std::getenv("THAW_CONV_TILE");
    return tile_index(value ? value : "", "THAW_CONV_TILE");
  }());
  return index;
}
inline int forced_tile_index() {
  return forced_tile().load();
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

// Problem identity for the tile cache: op (0 forward, 1 backward-data), N, C, H, W, K, R, S, strides, pads,
// precision.
using ProblemKey = std::array<int, 13>;

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

// The precision the current card runs for a requested one: tf32 and bf16 need mma.sync with those types,
// so a card of compute capability 8.0 or newer running code compiled for 8.0 or newer. Older cards compute
// fp32, and so does a build whose code for this card is older PTX compiled at load time (e.g. a build for
// sm_75 only, on an H100: its tensor-core kernels are traps); the caller reports what ran. Defined in
// conv2d_forward.cu.
Precision effective_precision(Precision requested);

// Calls f(std::integral_constant<Precision, P>{}) for the precision p, so that one generic lambda
// instantiates a pass for every precision (read back as decltype(precision)::value).
template <class F>
void with_precision(Precision p, F&& f) {
  using std::integral_constant;
  switch (p) {
    case Precision::FP32:
      f(integral_constant<Precision, Precision::FP32>{});
      break;
    case Precision::TF32:
      f(integral_constant<Precision, Precision::TF32>{});
      break;
    case Precision::BF16:
      f(integral_constant<Precision, Precision::BF16>{});
      break;
  }
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
