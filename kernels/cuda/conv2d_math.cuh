// The arithmetic of the convolution kernels' main loop (conv2d_tiles.cuh), one class per precision
// (core/precision.h): how a block's 256 threads multiply one staged k-tile (A: kTileK x BM, B: kTileK x BN,
// both k-major in shared memory) into their share of the BM x BN accumulator tile, and which element of
// the tile each accumulator register holds (row(i), col(j)), which is all the epilogues need.
//
//   FmaTile   fp32: a 16 x 16 grid of threads, each owning a (BM/16) x (BN/16) micro-tile, plain FMAs.
//   MmaTile   tf32 / bf16: the 8 warps as a 2 x 4 grid, each owning a (BM/2) x (BN/4) warp tile made of
//             16 x 8 tensor-core fragments (PTX mma.sync m16n8k8, float32 accumulation). Per PTX's fragment
//             layout, lane l = 4 g + t (g = l / 4, t = l % 4) holds, of each 16 x 8 output fragment,
//             rows g and g + 8, columns 2t and 2t + 1; of the A fragment (16 x 8)
//               tf32: A[g][t], A[g + 8][t], A[g][t + 4], A[g + 8][t + 4]
//               bf16: A[g][2t, 2t + 1] and A[g + 8][2t, 2t + 1], two bf16 per register
//             and of the B fragment (8 x 8)
//               tf32: B[t][g], B[t + 4][g];   bf16: B[2t, 2t + 1][g].
//             The operands are rounded as they leave shared memory (cvt.rna.tf32.f32, cvt.rn.bf16x2.f32),
//             so the loaders and shared memory stay float32 and exactly as in fp32.
//
// Each output's terms are summed k-tile by k-tile in Kd order in every class, and one accumulator's chain of
// FMAs or mma instructions does not depend on where in the block tile the output sits: the block tile
// (128x128, 64x128, 64x64) never changes a result, which launch_fastest_tile relies on.
// mma.sync with these types needs compute capability 8.0; the host (effective_precision in
// conv2d_tiles.cuh) launches MmaTile kernels only there, and the sm_75 build compiles them as a trap. The
// CPU emulation of CUDA (THAW_CUDA=EMULATE, tests/cuda_emulation/) runs them through its own mma.sync.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/precision.h"

namespace thaw::cuda::conv {

constexpr int kThreads = 256;  // threads per block
constexpr int kTileK = 8;      // Kd step of one shared-memory stage

// Row (of A / C) of micro-tile element i for thread row ty, and likewise the column of element j for
// thread column tx: the micro-tile is split into groups of 4 spaced 64 apart, so a warp's float4 reads of
// shared memory are contiguous (conflict-free).
__device__ __forceinline__ int micro_offset(int i, int t16) {
  return (i / 4) * 64 + t16 * 4 + i % 4;
}

// fp32: thread (tx, ty) = (t % 16, t / 16) owns rows micro_offset(i, ty) and columns micro_offset(j, tx).
template <int BM, int BN>
struct FmaTile {
  static constexpr int kRows = BM / 16, kCols = BN / 16;
  static constexpr int kColRun = 4;  // columns j .. j+3 (j % 4 == 0) are consecutive
  // Row padding of the shared-memory stages: +4 keeps the kk-fast staging stores conflict-free and rows
  // 16-byte aligned for the float4 reads below.
  static constexpr int kPad = 4;
  float v[kRows][kCols];

  __device__ __forceinline__ int row(int i) const { return micro_offset(i, threadIdx.x / 16); }
  __device__ __forceinline__ int col(int j) const { return micro_offset(j, threadIdx.x % 16); }

  __device__ __forceinline__ void multiply(const float (*a)[BM + kPad], const float (*b)[BN + kPad]) {
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
#pragma unroll
    for (int kk = 0; kk < kTileK; ++kk) {
      float fa[kRows], fb[kCols];
#pragma unroll
      for (int g = 0; g < kRows / 4; ++g) {
        const float4 x = *reinterpret_cast<const float4*>(&a[kk][g * 64 + ty * 4]);
        fa[4 * g] = x.x, fa[4 * g + 1] = x.y, fa[4 * g + 2] = x.z, fa[4 * g + 3] = x.w;
      }
#pragma unroll
      for (int g = 0; g < kCols / 4; ++g) {
        const float4 x = *reinterpret_cast<const float4*>(&b[kk][g * 64 + tx * 4]);
        fb[4 * g] = x.x, fb[4 * g + 1] = x.y, fb[4 * g + 2] = x.z, fb[4 * g + 3] = x.w;
      }
#pragma unroll
      for (int i = 0; i < kRows; ++i)
#pragma unroll
        for (int j = 0; j < kCols; ++j)
          v[i][j] = fmaf(fa[i], fb[j], v[i][j]);
    }
  }
};

// ---- tensor cores ---------------------------------------------------------------------------------------

__device__ __forceinline__ uint32_t to_tf32(float x) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
  return r;
#elif THAW_CUDA_EMULATION
  return emu::cvt_rna_tf32(x);
#else
  return __float_as_uint(x);
#endif
}

// Two floats as a bf16x2 register, lo in the low half (the lower k index), each rounded to nearest even.
__device__ __forceinline__ uint32_t to_bf16x2(float lo, float hi) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  uint32_t r;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
#elif THAW_CUDA_EMULATION
  return uint32_t(emu::cvt_rn_bf16(lo)) | uint32_t(emu::cvt_rn_bf16(hi)) << 16;
#else
  return 0;
#endif
}

// d += A (16 x 8) B (8 x 8), float32 accumulation.
__device__ __forceinline__ void mma_tf32(float& d0, float& d1, float& d2, float& d3, const uint32_t (&a)[4],
                                         const uint32_t (&b)[2]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};"
      : "+f"(d0), "+f"(d1), "+f"(d2), "+f"(d3)
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#elif THAW_CUDA_EMULATION
  float d[4] = {d0, d1, d2, d3};
  emu::mma_m16n8k8_tf32(d, a, b);
  d0 = d[0], d1 = d[1], d2 = d[2], d3 = d[3];
#else
  __trap();  // never launched below compute capability 8.0
#endif
}

__device__ __forceinline__ void mma_bf16(float& d0, float& d1, float& d2, float& d3, const uint32_t (&a)[2],
                                         uint32_t b) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};"
      : "+f"(d0), "+f"(d1), "+f"(d2), "+f"(d3)
      : "r"(a[0]), "r"(a[1]), "r"(b));
#elif THAW_CUDA_EMULATION
  float d[4] = {d0, d1, d2, d3};
  emu::mma_m16n8k8_bf16(d, a, b);
  d0 = d[0], d1 = d[1], d2 = d[2], d3 = d[3];
#else
  __trap();
#endif
}

// tf32 / bf16: warp w owns the (BM/2) x (BN/4) warp tile at rows (w / 4) BM/2, columns (w % 4) BN/4.
// Accumulator v[2 fm + h][2 fn + e] is row 16 fm + 8 h + g, column 8 fn + 2 t + e of the warp tile.
template <int BM, int BN, Precision P>
struct MmaTile {
  static_assert(P == Precision::TF32 || P == Precision::BF16, "MmaTile is for tf32 and bf16");
  static constexpr int kWarpM = BM / 2, kWarpN = BN / 4;
  static constexpr int kFragM = kWarpM / 16, kFragN = kWarpN / 8;
  static constexpr int kRows = 2 * kFragM, kCols = 2 * kFragN;
  static constexpr int kColRun = 2;
  // Fragment loads read rows t (and t + 4) for tf32, rows 2t and 2t + 1 for bf16, at columns g: a row
  // stride of 8 (mod 32 banks) for tf32 and of 4 for bf16 puts the 32 lanes on 32 different banks. For tf32
  // this costs the kk-fast staging stores a 2-way conflict (lanes kk and kk + 4 share a bank): 8 stores per
  // k-tile against 24 conflict-free fragment loads in the 128x128 tile. An XOR swizzle would serve both.
  static constexpr int kPad = P == Precision::TF32 ? 8 : 4;
  float v[kRows][kCols];

  __device__ __forceinline__ int row(int i) const {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    return (warp / 4) * kWarpM + (i / 2) * 16 + (i % 2) * 8 + lane / 4;
  }
  __device__ __forceinline__ int col(int j) const {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    return (warp % 4) * kWarpN + (j / 2) * 8 + 2 * (lane % 4) + j % 2;
  }

  __device__ __forceinline__ void multiply(const float (*a)[BM + kPad], const float (*b)[BN + kPad]) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
    const int wm = (warp / 4) * kWarpM + g, wn = (warp % 4) * kWarpN + g;
    if constexpr (P == Precision::TF32) {
      uint32_t fb[kFragN][2];
#pragma unroll
      for (int fn = 0; fn < kFragN; ++fn) {
        fb[fn][0] = to_tf32(b[t][wn + 8 * fn]);
        fb[fn][1] = to_tf32(b[t + 4][wn + 8 * fn]);
      }
#pragma unroll
      for (int fm = 0; fm < kFragM; ++fm) {
        const int m = wm + 16 * fm;
        const uint32_t fa[4] = {to_tf32(a[t][m]), to_tf32(a[t][m + 8]), to_tf32(a[t + 4][m]),
                                to_tf32(a[t + 4][m + 8])};
#pragma unroll
        for (int fn = 0; fn < kFragN; ++fn)
          mma_tf32(v[2 * fm][2 * fn], v[2 * fm][2 * fn + 1], v[2 * fm + 1][2 * fn], v[2 * fm + 1][2 * fn + 1],
                   fa, fb[fn]);
      }
    } else {
      uint32_t fb[kFragN];
#pragma unroll
      for (int fn = 0; fn < kFragN; ++fn)
        fb[fn] = to_bf16x2(b[2 * t][wn + 8 * fn], b[2 * t + 1][wn + 8 * fn]);
#pragma unroll
      for (int fm = 0; fm < kFragM; ++fm) {
        const int m = wm + 16 * fm;
        const uint32_t fa[2] = {to_bf16x2(a[2 * t][m], a[2 * t + 1][m]),
                                to_bf16x2(a[2 * t][m + 8], a[2 * t + 1][m + 8])};
#pragma unroll
        for (int fn = 0; fn < kFragN; ++fn)
          mma_bf16(v[2 * fm][2 * fn], v[2 * fm][2 * fn + 1], v[2 * fm + 1][2 * fn], v[2 * fm + 1][2 * fn + 1],
                   fa, fb[fn]);
      }
    }
  }
};

// The accumulator tile of precision P: Accumulator<BM, BN, P>::type.
template <int BM, int BN, Precision P>
struct Accumulator {
  using type = MmaTile<BM, BN, P>;
};
template <int BM, int BN>
struct Accumulator<BM, BN, Precision::FP32> {
  using type = FmaTile<BM, BN>;
};

}  // namespace thaw::cuda::conv
