// conv2d backward-weight on CUDA as a tiled implicit GEMM with split-K, in the precision of the params (fp32
// FMAs, or tf32 / bf16 tensor cores with float32 accumulation); the tile machinery is in conv2d_tiles.cuh.
// dw is written (=), not accumulated into.
//
// dw[k, c, r, s] = sum_{n, p, q} dy[n, k, p, q] * x[n, c, p*stride_h - pad_h + r, q*stride_w - pad_w + s]
// As a GEMM:
//   dW (K, CRS) = dY (K, N*P*Q) @ col^T (N*P*Q, CRS)
//   A = dy viewed as (K x NPQ):  A[k][(n*P + p)*Q + q] = dy[n, k, p, q]   (row k is N contiguous pieces)
//   B = col^T, never stored: row (n*P + p)*Q + q, column (c*R + r)*S + s holds
//       x[n, c, p*stride_h - pad_h + r, q*stride_w - pad_w + s]   (0 where that reads padding)
//   C[k][(c*R + r)*S + s] is dw[k, c, r, s]: dw is C itself, row-major.
// GEMM sizes M = K, Ncols = C*R*S, Kd = N*P*Q. Kd is long (64*56*56 = 200704 in ResNet's layer1) and the
// output small (64 x 576), so Kd is split into `splits` chunks of whole k-tiles (grid.y); each chunk's
// partial C goes to its own slice of a workspace (splits, K, CRS), and a second kernel sums the slices in
// a fixed order (deterministic). Both A and B are gathered kk-fast: a thread's Kd index (n, p, q) is the
// same for its A and B elements, so one division-free counter serves both, and consecutive threads read
// consecutive q.
#include <algorithm>

#include "kernels/cuda/conv2d_tiles.cuh"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/launch.h"

namespace thaw::cuda {

namespace {

using namespace conv;

struct BackwardWeightArgs {
  const float* dy;  // (N, K, P, Q)
  const float* x;   // (N, C, H, W)
  float* out;       // (splits, K, C*R*S): dw itself when splits == 1
  int n, c, h, w_, k, r, s, p, q;
  int stride_h, stride_w, pad_h, pad_w;
  int kd, cols;         // N*P*Q, C*R*S
  int tiles_m;          // blocks along M; block b of grid.x computes tile (b % tiles_m, b / tiles_m)
  int k_chunk;          // Kd per split (a multiple of kTileK); split z covers [z k_chunk, (z+1) k_chunk)
  RadixStep tile_step;  // (n, p, q) digits of 8
};

// Per-block tables of where this block's A rows and B columns start, in shared memory (registers are
// scarce in the 128x128 tile):
//   a_row[i]     = m * P*Q for A row m = m0 + i: its offset within one image of dy
//   b_col[j].x   = c*H*W + r*W + s for B column n0 + j = (c, r, s);  b_col[j].y = r * 2^16 + s
//                  (R, S < 2^15, checked by the host)
// A row or column past the end repeats the last one: its C row / column is computed but never stored.
template <int BM, int BN>
struct WeightTables {
  int a_row[BM];
  int2 b_col[BN];
};

template <int BM, int BN>
__device__ __forceinline__ void fill_tables(WeightTables<BM, BN>& tab, const BackwardWeightArgs& args, int m0,
                                            int n0) {
  const int pq = args.p * args.q, rs = args.r * args.s;
  for (int i = threadIdx.x; i < BM; i += kThreads)
    tab.a_row[i] = min(m0 + i, args.k - 1) * pq;
  for (int j = threadIdx.x; j < BN; j += kThreads) {
    const int col = min(n0 + j, args.cols - 1);
    const int c = col / rs, rest = col - c * rs;
    const int r = rest / args.s, s = rest - r * args.s;
    tab.b_col[j] = make_int2((c * args.h + r) * args.w_ + s, (r << 16) | s);
  }
}

// The A and B tiles of one block, both staged kk-fast: this thread's Kd index is kk = k_begin + t % 8 (+ 8
// per k-tile), its A rows m0 + t/8 + 32 i, its B columns n0 + t/8 + 32 j.
template <int BM, int BN>
struct BackwardWeightOperands {
  static constexpr Staging kAStaging = Staging::kKFast, kBStaging = Staging::kKFast;
  static constexpr int kALoads = Tile<BM, BN>::kALoads, kBLoads = Tile<BM, BN>::kBLoads;

  const BackwardWeightArgs& args;
  const WeightTables<BM, BN>& tab;  // filled, and synchronised, before the main loop
  RadixCounter npq;                 // (n, p, q) of kk

  __device__ __forceinline__ BackwardWeightOperands(const BackwardWeightArgs& args_,
                                                    const WeightTables<BM, BN>& tab_, int k_begin)
      : args(args_), tab(tab_) {
    npq.set(k_begin + threadIdx.x % kTileK, args.p, args.q);
  }

  __device__ __forceinline__ void load(float (&va)[kALoads], float (&vb)[kBLoads]) {
    const int t = threadIdx.x;
    if (npq.hi < args.n) {  // kk inside Kd (the last split's last tile may run past it)
      const int a_base = npq.hi * (args.k * args.p * args.q) + npq.mid * args.q + npq.lo;
#pragma unroll
      for (int i = 0; i < kALoads; ++i)
        va[i] = __ldg(args.dy + a_base + tab.a_row[t / kTileK + 32 * i]);
      const int ih0 = npq.mid * args.stride_h - args.pad_h, iw0 = npq.lo * args.stride_w - args.pad_w;
      const int x_base = npq.hi * (args.c * args.h * args.w_) + ih0 * args.w_ + iw0;  // + b_col[j].x
#pragma unroll
      for (int j = 0; j < kBLoads; ++j) {
        const int2 col = tab.b_col[t / kTileK + 32 * j];
        const int ih = ih0 + (col.y >> 16), iw = iw0 + (col.y & 0xffff);
        vb[j] = (unsigned(ih) < unsigned(args.h) && unsigned(iw) < unsigned(args.w_))
                    ? __ldg(args.x + x_base + col.x)
                    : 0.0f;
      }
    } else {
#pragma unroll
      for (int i = 0; i < kALoads; ++i)
        va[i] = 0.0f;
#pragma unroll
      for (int j = 0; j < kBLoads; ++j)
        vb[j] = 0.0f;
    }
    npq.advance(args.tile_step, args.p, args.q);
  }
};

// C tile to the row-major (M x cols) slice out; a run of Acc::kColRun columns at once where cols allows.
template <class Acc>
__device__ __forceinline__ void store_rowmajor(const Acc& acc, float* out, int m_total, int cols, int m0,
                                               int n0) {
  constexpr int RUN = Acc::kColRun;
  const bool vector = cols % RUN == 0 && reinterpret_cast<uintptr_t>(out) % (4 * RUN) == 0;
#pragma unroll
  for (int i = 0; i < Acc::kRows; ++i) {
    const int m = m0 + acc.row(i);
    if (m >= m_total) continue;
    float* row = out + int64_t(m) * cols;
#pragma unroll
    for (int j0 = 0; j0 < Acc::kCols; j0 += RUN) {
      const int col0 = n0 + acc.col(j0);
      if (vector && col0 + RUN - 1 < cols) {
        store_run<RUN>(row + col0, &acc.v[i][j0], 0.0f);
      } else {
#pragma unroll
        for (int jj = 0; jj < RUN; ++jj)
          if (col0 + jj < cols) row[col0 + jj] = acc.v[i][j0 + jj];
      }
    }
  }
}

template <int BM, int BN, Precision P>
__global__ void __launch_bounds__(kThreads, 2) conv2d_backward_weight_kernel(const BackwardWeightArgs args) {
  using Acc = typename Accumulator<BM, BN, P>::type;
  __shared__ __align__(16) Smem<BM, BN, Acc::kPad> sm;
  const int m0 = int(blockIdx.x % unsigned(args.tiles_m)) * BM;
  const int n0 = int(blockIdx.x / unsigned(args.tiles_m)) * BN;
  const int split = int(blockIdx.y);
  const int k_begin = split * args.k_chunk;
  const int k_len = min(args.k_chunk, args.kd - k_begin);  // > 0: the host makes no empty split
  __shared__ WeightTables<BM, BN> tab;
  fill_tables(tab, args, m0, n0);
  __syncthreads();
  BackwardWeightOperands<BM, BN> ops(args, tab, k_begin);
  Acc acc;
  gemm_mainloop<BM, BN>(ops, (k_len + kTileK - 1) / kTileK, sm, acc);
  store_rowmajor(acc, args.out + int64_t(split) * args.k * args.cols, args.k, args.cols, m0, n0);
}

// dw[i] = sum over z of partial[z, i], z in order (deterministic).
__global__ void sum_splits_kernel(const float* partial, float* dw, int splits, int64_t n) {
  for (const int64_t i : grid_stride(n)) {
    float sum = 0.0f;
    for (int z = 0; z < splits; ++z)
      sum += partial[z * n + i];
    dw[i] = sum;
  }
}

// Splits of Kd for tiles output tiles: enough blocks to fill the GPU (per_wave resident at once) in whole
// waves, each split at least kMinTilesPerSplit k-tiles long. Time ~ waves(splits) / splits; the smallest
// split count within 5% of the best wins (fewer partial sums to write and add).
int choose_splits(int64_t tiles, int64_t k_tiles, int64_t per_wave, int64_t partial_size) {
  constexpr int64_t kMinTilesPerSplit = 16;
  int64_t most = std::min<int64_t>({(4 * per_wave + tiles - 1) / tiles, k_tiles / kMinTilesPerSplit, 65535,
                                    INT32_MAX / std::max<int64_t>(1, partial_size)});
  most = std::max<int64_t>(most, 1);
  auto cost = [&](int64_t splits) {
    return double((splits * tiles + per_wave - 1) / per_wave) / double(splits);
  };
  double best = cost(1);
  for (int64_t s = 2; s <= most; ++s)
    best = std::min(best, cost(s));
  for (int64_t s = 1; s <= most; ++s)
    if (cost(s) <= 1.05 * best) return int(s);
  return 1;
}

template <int BM, int BN, Precision P>
void launch_backward_weight(BackwardWeightArgs args, const Tensor& dw) {
  static const int per_sm = blocks_per_sm(conv2d_backward_weight_kernel<BM, BN, P>);
  const int64_t tiles_m = (args.k + BM - 1) / BM, tiles_n = (int64_t(args.cols) + BN - 1) / BN;
  const int64_t tiles = tiles_m * tiles_n;
  if (tiles > INT32_MAX) fail("conv2d_backward_weight: {} x {} tiles are too many blocks", tiles_m, tiles_n);
  const int64_t k_tiles = (int64_t(args.kd) + kTileK - 1) / kTileK;
  const int64_t partial_size = int64_t(args.k) * args.cols;
  int splits = choose_splits(tiles, k_tiles, int64_t(sm_count()) * std::max(per_sm, 1), partial_size);
  const int64_t chunk_tiles = (k_tiles + splits - 1) / splits;
  splits = int((k_tiles + chunk_tiles - 1) / chunk_tiles);  // no empty split
  args.tiles_m = int(tiles_m);
  args.k_chunk = int(chunk_tiles * kTileK);
  args.tile_step = radix_step(kTileK, args.p, args.q);

  Tensor partial;  // (splits, K, CRS); freed after the sum is queued (one stream)
  if (splits > 1) {
    partial = Tensor::empty({splits, args.k, args.cols}, DType::Float32, dw.device());
    args.out = partial.data<float>();
  } else {
    args.out = dw.data<float>();
  }
  conv2d_backward_weight_kernel<BM, BN, P>
      <<<dim3(unsigned(tiles), unsigned(splits)), kThreads, 0, stream()>>>(args);
  check_launch("conv2d_backward_weight");
  if (splits > 1) {
    sum_splits_kernel<<<blocks_for(partial_size), kThreadsPerBlock, 0, stream()>>>(
        partial.data<float>(), dw.data<float>(), splits, partial_size);
    check_launch("conv2d_backward_weight (sum of splits)");
  }
}

}  // namespace

// dy: (N, K, P, Q), x: (N, C, H, W)  ->  dw: (K, C, R, S), overwritten; in p.precision where the card has
// tensor cores, else fp32 (effective_precision).
void conv2d_backward_weight(const Tensor& dy, const Tensor& x, const ops::Conv2dParams& p, const Tensor& dw) {
  if (dw.numel() == 0) return;
  if (dw.size(2) >= (1 << 15) || dw.size(3) >= (1 << 15))
    fail("conv2d_backward_weight: filters of {}x{} are too large for the CUDA kernel", dw.size(2),
         dw.size(3));
  check_int32_indexable(dy.numel(), "conv2d_backward_weight", "dy");
  check_int32_indexable(x.numel(), "conv2d_backward_weight", "x");
  check_int32_indexable(dw.numel(), "conv2d_backward_weight", "dw");
  BackwardWeightArgs args{};
  args.dy = dy.data<float>();
  args.x = x.data<float>();
  args.n = int(x.size(0)), args.c = int(x.size(1)), args.h = int(x.size(2)), args.w_ = int(x.size(3));
  args.k = int(dw.size(0)), args.r = int(dw.size(2)), args.s = int(dw.size(3));
  args.p = int(dy.size(2)), args.q = int(dy.size(3));
  args.stride_h = int(p.stride_h), args.stride_w = int(p.stride_w);
  args.pad_h = int(p.pad_h), args.pad_w = int(p.pad_w);
  args.kd = args.n * args.p * args.q;
  args.cols = args.c * args.r * args.s;

  const TileShape shape = choose_tile(args.k, args.cols, /*whole_blocks=*/false).shape;
  with_tile(shape, [&](auto bm, auto bn) {
    with_precision(effective_precision(p.precision), [&](auto pr) {
      launch_backward_weight<decltype(bm)::value, decltype(bn)::value, decltype(pr)::value>(args, dw);
    });
  });
}

}  // namespace thaw::cuda
