// Row-major GEMM for the CPU kernels: C = alpha op(A) op(B) + beta C through OpenBLAS (sgemm / dgemm).
// A: op(A) is (M, K); B: op(B) is (K, N); C: (M, N); lda/ldb/ldc are row strides.
//
// gemm() is one single-threaded OpenBLAS call (every thread that calls it first sets OpenMP's thread count
// for itself to 1, which is what the OpenMP build of OpenBLAS reads). parallel_gemm() cuts the product into
// pieces and runs them as tasks of the pool (kernels/cpu/parallel.h), as plan_gemm decides:
//   - when K is long and C small (a weight gradient summed over many pixels), pieces of K, each into a
//     partial C, then C = beta C + (partial_0 + partial_1 + ...) in that order; cut by the shape only;
//   - otherwise tiles of C (blocks of rows and columns), each a gemm() of its own, as many as the threads can
//     use: each element of a tile is the same dot product as in one big call (OpenBLAS cuts K by K alone),
//     so the tiles change no result, and the result never depends on the number of threads
//     (tests/test_cpu_fast_paths.cpp checks both).
#pragma once

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <memory>

#include "kernels/cpu/parallel.h"

namespace thaw::cpu {

namespace detail {
// OpenMP's thread count for the calling thread is set to 1 once, before its first GEMM.
inline void serial_blas_on_this_thread() {
  thread_local const bool once = [] {
    omp_set_num_threads(1);
    return true;
  }();
  (void)once;
}
}  // namespace detail

inline void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                 int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  detail::serial_blas_on_this_thread();
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, int(m),
              int(n), int(k), alpha, a, int(lda), b, int(ldb), beta, c, int(ldc));
}

inline void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
                 int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  detail::serial_blas_on_this_thread();
  cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, int(m),
              int(n), int(k), alpha, a, int(lda), b, int(ldb), beta, c, int(ldc));
}

// How parallel_gemm cuts an (M, N, K) product for `threads` threads. Pieces of K change the order of the
// sum, so whether and how K is cut depends on the shape only; tiles do not (each element is the same dot
// product), so their number follows the threads: up to 4 per thread, for balance when a thread is slowed
// down, each worth at least kTaskFlops, and shaped to re-pack as little as possible (a tile re-packs the
// slice of A for its rows and the slice of B for its columns).
struct GemmPlan {
  int64_t row_blocks = 1, col_blocks = 1;  // tiles of C
  int64_t k_pieces = 1;                    // > 1: pieces of K summed into partial results
};

inline GemmPlan plan_gemm(int64_t m, int64_t n, int64_t k, int threads) {
  constexpr double kTaskFlops = 1 << 24;  // about 150 us of one core
  constexpr int64_t kMinCols = 256, kMinRows = 64, kMinK = 512;
  constexpr int64_t kMaxPartial = int64_t(1) << 22;  // elements in all partial results together
  GemmPlan plan;
  const double flops = 2.0 * double(m) * double(n) * double(k);
  const int64_t worth = std::clamp<int64_t>(int64_t(flops / kTaskFlops), 1, kMaxPieces);
  if (worth == 1) return plan;
  if (k >= 2 * std::max(m, n) && k >= 2 * kMinK) {
    plan.k_pieces =
        std::clamp<int64_t>(std::min(worth, k / kMinK), 1, std::max<int64_t>(1, kMaxPartial / (m * n)));
    if (plan.k_pieces > 1) return plan;
  }
  const int64_t want = std::min<int64_t>(worth, 4 * int64_t(threads));
  if (want == 1) return plan;
  // Fewest re-packed elements, m * col_blocks + n * row_blocks (times k), for at least `want` tiles.
  double best = -1;
  for (int64_t rb = 1; rb <= want; ++rb) {
    const int64_t cb = (want + rb - 1) / rb;
    if (rb > 1 && m / rb < kMinRows) break;
    if (cb > 1 && n / cb < kMinCols) continue;
    const double cost = double(m) * double(cb) + double(n) * double(rb);
    if (best < 0 || cost < best) best = cost, plan.row_blocks = rb, plan.col_blocks = cb;
  }
  if (best < 0) {  // neither side is long enough for `want` tiles: as many as fit
    plan.row_blocks = std::clamp<int64_t>(m / kMinRows, 1, want);
    plan.col_blocks = std::clamp<int64_t>(n / kMinCols, 1, std::max<int64_t>(1, want / plan.row_blocks));
  }
  return plan;
}

// Block boundary `i` of `blocks` over [0, n), rounded down to a multiple of `align` (the last one is n).
inline int64_t block_edge(int64_t n, int64_t blocks, int64_t i, int64_t align) {
  return i >= blocks ? n : n * i / blocks / align * align;
}

template <typename T>
void parallel_gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
                   int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  const GemmPlan plan = plan_gemm(m, n, k, parallel_threads());
  // Element (i, j) of op(A) and op(B).
  auto a_at = [&](int64_t i, int64_t j) { return trans_a ? a + j * lda + i : a + i * lda + j; };
  auto b_at = [&](int64_t i, int64_t j) { return trans_b ? b + j * ldb + i : b + i * ldb + j; };
  if (plan.k_pieces > 1) {
    const int64_t pieces = plan.k_pieces;
    std::unique_ptr<T[]> partial(new T[size_t(pieces * m * n)]);
    parallel_for(pieces, [&](int64_t p) {
      const int64_t k0 = block_edge(k, pieces, p, 16), k1 = block_edge(k, pieces, p + 1, 16);
      gemm(trans_a, trans_b, m, n, k1 - k0, alpha, a_at(0, k0), lda, b_at(k0, 0), ldb, T(0),
           partial.get() + p * m * n, n);
    });
    // Row i of C: the pieces' rows summed in order into piece 0's row, then into C.
    parallel_ranges(m, std::max<int64_t>(1, 16384 / (n * pieces)), [&](int64_t r0, int64_t r1) {
      for (int64_t i = r0; i < r1; ++i) {
        T* __restrict total = partial.get() + i * n;
        for (int64_t p = 1; p < pieces; ++p) {
          const T* __restrict row = partial.get() + (p * m + i) * n;
          for (int64_t j = 0; j < n; ++j)
            total[j] += row[j];
        }
        T* __restrict out = c + i * ldc;
        if (beta == T(0)) {
          for (int64_t j = 0; j < n; ++j)
            out[j] = total[j];
        } else {
          for (int64_t j = 0; j < n; ++j)
            out[j] = beta * out[j] + total[j];
        }
      }
    });
    return;
  }
  const int64_t tiles = plan.row_blocks * plan.col_blocks;
  if (tiles == 1) {
    gemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  parallel_for(tiles, [&](int64_t t) {
    const int64_t rb = t / plan.col_blocks, cb = t % plan.col_blocks;
    const int64_t i0 = block_edge(m, plan.row_blocks, rb, 8), i1 = block_edge(m, plan.row_blocks, rb + 1, 8);
    const int64_t j0 = block_edge(n, plan.col_blocks, cb, 16),
                  j1 = block_edge(n, plan.col_blocks, cb + 1, 16);
    if (i1 > i0 && j1 > j0)
      gemm(trans_a, trans_b, i1 - i0, j1 - j0, k, alpha, a_at(i0, 0), lda, b_at(0, j0), ldb, beta,
           c + i0 * ldc + j0, ldc);
  });
}

}  // namespace thaw::cpu
