// conv2d backward-data on CUDA as tiled implicit GEMMs, one per stride phase, in the precision of the params
// (fp32 FMAs, or tf32 / bf16 tensor cores with float32 accumulation); the tile machinery is in
// conv2d_tiles.cuh. dx is written (=), not accumulated into.
//
//   dx[n, c, h, w] = sum_{k, r, s} dy[n, k, (h + pad_h - r) / stride_h, (w + pad_w - s) / stride_w]
//                                   * w[k, c, r, s]
// over the terms where both divisions are exact and land inside the P x Q output (the adjoint of forward).
//
// Stride phases. A term exists only when r = (h + pad_h) mod stride_h (mod stride_h), and likewise for s:
// with stride 2, three quarters of the (r, s) taps miss any given pixel. So the pixels are split by their
// phase (ph, pw) = ((h + pad_h) mod stride_h, (w + pad_w) mod stride_w); a phase's pixels all meet the same
// taps, r = ph + stride_h i and s = pw + stride_w j, and there
//   dx[n, c, h, w] = sum_{k, i, j} dy[n, k, hq - i, wq - j] * w[k, c, ph + stride_h i, pw + stride_w j]
// with hq = (h + pad_h) / stride_h and wq = (w + pad_w) / stride_w exact: no tap is wasted, no division is
// left in the gather. Each phase is one GEMM:
//   dx_phase (C, N*Hph*Wph) = Wt_phase (C, K*Ri*Sj) @ B (K*Ri*Sj, N*Hph*Wph)
//   A = Wt_phase, the phase's taps of the filters transposed to (C, K, Ri, Sj) by a small kernel first:
//       A[c][(k*Ri + i)*Sj + j] = w[k, c, ph + stride_h i, pw + stride_w j]
//   B is never stored: column (n*Hph + a)*Wph + b is the pixel h = h0 + stride_h a, w = w0 + stride_w b of
//       the phase, row (k*Ri + i)*Sj + j holds dy[n, k, hq - i, wq - j] (0 outside P x Q)
//   C[c][column] goes to dx[n, c, h, w].
// Stride 1 is one phase, the whole image. A phase that no tap reaches (1x1 filters, stride 2: the odd
// pixels) has Kd = 0 and writes zeros. A phase sums its pixel's terms in (k, r, s) order, as the unsplit
// GEMM did, minus only its zero terms: the split changes no bit of the result, and neither does the tile.
#include <algorithm>
#include <vector>

#include "kernels/cuda/conv2d_tiles.cuh"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/launch.h"

namespace thaw::cuda {

namespace {

using namespace conv;

// One stride phase: which pixels, which taps.
struct Phase {
  int h0, w0;    // first pixel of the phase (0 <= h0 < stride_h)
  int hph, wph;  // its pixels per image: h = h0 + stride_h a for a < hph, likewise w
  int ri, sj;    // its taps: r = ph + stride_h i for i < ri, s = pw + stride_w j for j < sj
  int qh, qw;    // hq - a = (h0 + pad_h) / stride_h, likewise for w
};

struct BackwardDataArgs {
  const float* dy;  // (N, K, P, Q)
  const float* wt;  // (C, K, Ri, Sj): the phase's filter taps, transposed
  float* dx;        // (N, C, H, W)
  int n, c, h, w_, k, p, q;
  int stride_h, stride_w;
  Phase phase;
  int kd, cols;                   // K*Ri*Sj, N*Hph*Wph
  int tiles_m;                    // blocks along M; block b computes tile (b % tiles_m, b / tiles_m)
  RadixStep row_step, tile_step;  // (k, i, j) digits of 256/BN (B rows between a thread's loads) and of 8
};

// wt[c, k, i, j] = w[k, c, ph + stride_h i, pw + stride_w j] for one phase; n = C*K*Ri*Sj.
__global__ void transpose_phase_filters_kernel(const float* w, float* wt, int k_total, int c_total, int r,
                                               int s, int ph, int pw, int stride_h, int stride_w, int ri,
                                               int sj, int64_t n) {
  for (const int64_t e : grid_stride(n)) {
    int idx = int(e);  // n < 2^31, checked by the caller
    const int j = idx % sj;
    idx /= sj;
    const int i = idx % ri;
    idx /= ri;
    const int k = idx % k_total, c = idx / k_total;
    wt[e] = w[((k * c_total + c) * r + ph + stride_h * i) * s + pw + stride_w * j];
  }
}

// The A and B tiles of one block: A = the phase's transposed taps (dense rows), B = the dy terms, staged
// row-fast (each thread owns one column of B: col = n0 + t % BN; its rows are t / BN + (256 / BN) j of
// each k-tile).
template <int BM, int BN>
struct BackwardDataOperands {
  static constexpr Staging kAStaging = Staging::kKFast, kBStaging = Staging::kRowFast;
  static constexpr int kBLoads = Tile<BM, BN>::kBLoads;

  DenseA<BM> a;
  const BackwardDataArgs& args;
  int dy_base;       // n * K*P*Q of this thread's column
  int hq, wq;        // (h + pad_h) / stride_h, (w + pad_w) / stride_w; far negative past the end
  RadixCounter kij;  // (k, i, j) of this thread's first B row in the current k-tile

  __device__ __forceinline__ BackwardDataOperands(const BackwardDataArgs& args_, int m0, int n0)
      : a(args_.wt, args_.c, args_.kd, m0, 0), args(args_) {
    const Phase& ph = args.phase;
    const int t = threadIdx.x, col = n0 + t % BN;
    if (col < args.cols) {
      const int plane = ph.hph * ph.wph;
      const int img = col / plane, pixel = col - img * plane;
      const int ah = pixel / ph.wph, aw = pixel - ah * ph.wph;
      dy_base = img * (args.k * args.p * args.q);
      hq = ph.qh + ah;
      wq = ph.qw + aw;
    } else {
      dy_base = 0;
      hq = wq = -(1 << 30);  // every hq - i is negative: reads nothing
    }
    if (args.kd > 0) kij.set(t / BN, ph.ri, ph.sj);  // a phase without taps never loads
  }

  __device__ __forceinline__ void load(float (&va)[DenseA<BM>::kLoads], float (&vb)[kBLoads]) {
    a.load(va);
    RadixCounter e = kij;
#pragma unroll
    for (int j = 0; j < kBLoads; ++j) {
      if (j > 0) e.advance(args.row_step, args.phase.ri, args.phase.sj);
      const int op = hq - e.mid, oq = wq - e.lo;  // e.hi < K <=> the row is inside Kd
      vb[j] = (e.hi < args.k && unsigned(op) < unsigned(args.p) && unsigned(oq) < unsigned(args.q))
                  ? __ldg(args.dy + dy_base + (e.hi * args.p + op) * args.q + oq)
                  : 0.0f;
    }
    kij.advance(args.tile_step, args.phase.ri, args.phase.sj);
  }
};

// C (C x N*Hph*Wph) of a phase with stride > 1 into dx: column (n, a, b) is pixel (h0 + stride_h a,
// w0 + stride_w b). Scalar stores (the phase's pixels are not adjacent); stride 1 uses store_nchw.
template <class Acc>
__device__ __forceinline__ void store_phase(const Acc& acc, const BackwardDataArgs& args, int m0, int n0) {
  const Phase& ph = args.phase;
  const int plane = ph.hph * ph.wph, hw = args.h * args.w_;
#pragma unroll
  for (int j = 0; j < Acc::kCols; ++j) {
    const int col = n0 + acc.col(j);
    if (col >= args.cols) continue;
    const int img = col / plane, pixel = col - img * plane;
    const int ah = pixel / ph.wph, aw = pixel - ah * ph.wph;
    float* base = args.dx + int64_t(img) * args.c * hw + (ph.h0 + args.stride_h * ah) * args.w_ + ph.w0 +
                  args.stride_w * aw;
#pragma unroll
    for (int i = 0; i < Acc::kRows; ++i) {
      const int m = m0 + acc.row(i);
      if (m < args.c) base[int64_t(m) * hw] = acc.v[i][j];
    }
  }
}

template <int BM, int BN, Precision P, bool kUnitStride>
__global__ void __launch_bounds__(kThreads, 2) conv2d_backward_data_kernel(const BackwardDataArgs args) {
  using Acc = typename Accumulator<BM, BN, P>::type;
  __shared__ __align__(16) Smem<BM, BN, Acc::kPad> sm;
  const int m0 = int(blockIdx.x % unsigned(args.tiles_m)) * BM;
  const int n0 = int(blockIdx.x / unsigned(args.tiles_m)) * BN;
  BackwardDataOperands<BM, BN> ops(args, m0, n0);
  Acc acc;
  gemm_mainloop<BM, BN>(ops, (args.kd + kTileK - 1) / kTileK, sm, acc);
  if (kUnitStride)
    store_nchw(acc, args.dx, nullptr, args.c, args.cols, args.h * args.w_, m0, n0);
  else
    store_phase(acc, args, m0, n0);
}

template <int BM, int BN, Precision P>
void launch_phase(BackwardDataArgs args) {
  const int64_t tiles_m = (args.c + BM - 1) / BM, tiles_n = (int64_t(args.cols) + BN - 1) / BN;
  if (tiles_m * tiles_n > INT32_MAX)
    fail("conv2d_backward_data: {} x {} tiles are too many blocks", tiles_m, tiles_n);
  args.tiles_m = int(tiles_m);
  if (args.kd > 0) {
    args.row_step = radix_step(kThreads / BN, args.phase.ri, args.phase.sj);
    args.tile_step = radix_step(kTileK, args.phase.ri, args.phase.sj);
  }
  const unsigned blocks = unsigned(tiles_m * tiles_n);
  if (args.stride_h == 1 && args.stride_w == 1)
    conv2d_backward_data_kernel<BM, BN, P, true><<<blocks, kThreads, 0, stream()>>>(args);
  else
    conv2d_backward_data_kernel<BM, BN, P, false><<<blocks, kThreads, 0, stream()>>>(args);
  check_launch("conv2d_backward_data");
}

// The phases of one axis: for each phase index p < stride, the first pixel, the pixel count, the taps and
// the first quotient. Pixels h with (h + pad) mod stride == p: h0 = (p - pad) mod stride.
struct AxisPhase {
  int first, pixels, taps, quotient;
};
AxisPhase axis_phase(int p, int stride, int pad, int size, int filter) {
  const int first = ((p - pad) % stride + stride) % stride;
  return {first, first < size ? (size - first + stride - 1) / stride : 0,
          p < filter ? (filter - 1 - p) / stride + 1 : 0, (first + pad) / stride};
}

}  // namespace

// dy: (N, K, P, Q), w: (K, C, R, S)  ->  dx: (N, C, H, W), overwritten; in p.precision where the card has
// tensor cores, else fp32 (effective_precision).
void conv2d_backward_data(const Tensor& dy, const Tensor& w, const ops::Conv2dParams& p, const Tensor& dx) {
  if (dx.numel() == 0) return;
  if (w.numel() == 0) {  // R*S == 0: no term reaches dx
    check_cuda(cudaMemsetAsync(dx.data<float>(), 0, dx.nbytes(), stream()),
               "cudaMemsetAsync (conv2d_backward_data)");
    return;
  }
  check_int32_indexable(dy.numel(), "conv2d_backward_data", "dy");
  check_int32_indexable(w.numel(), "conv2d_backward_data", "w");
  check_int32_indexable(dx.numel(), "conv2d_backward_data", "dx");
  BackwardDataArgs args{};
  args.n = int(dx.size(0)), args.c = int(dx.size(1)), args.h = int(dx.size(2)), args.w_ = int(dx.size(3));
  args.k = int(w.size(0));
  args.p = int(dy.size(2)), args.q = int(dy.size(3));
  args.stride_h = int(p.stride_h), args.stride_w = int(p.stride_w);
  args.dy = dy.data<float>();
  args.dx = dx.data<float>();
  const int r = int(w.size(2)), s = int(w.size(3));

  // Every phase's transposed taps, one after the other (the phases' taps partition the R x S filter).
  struct PhaseWork {
    Phase phase;
    int ph, pw;
    int64_t offset;  // of its taps in wt
  };
  std::vector<PhaseWork> phases;
  int64_t offset = 0, widest = 0;
  for (int ph = 0; ph < args.stride_h; ++ph) {
    for (int pw = 0; pw < args.stride_w; ++pw) {
      const AxisPhase y = axis_phase(ph, args.stride_h, int(p.pad_h), args.h, r);
      const AxisPhase x = axis_phase(pw, args.stride_w, int(p.pad_w), args.w_, s);
      if (y.pixels == 0 || x.pixels == 0) continue;  // e.g. a 1-pixel image with stride 2
      phases.push_back(
          {{y.first, x.first, y.pixels, x.pixels, y.taps, x.taps, y.quotient, x.quotient}, ph, pw, offset});
      offset += int64_t(args.c) * args.k * y.taps * x.taps;
      widest = std::max(widest, int64_t(args.n) * y.pixels * x.pixels);
    }
  }
  const Tensor wt = Tensor::empty({std::max<int64_t>(offset, 1)}, DType::Float32, w.device());
  for (const PhaseWork& work : phases) {
    const int64_t n = int64_t(args.c) * args.k * work.phase.ri * work.phase.sj;
    if (n == 0) continue;
    transpose_phase_filters_kernel<<<blocks_for(n), kThreadsPerBlock, 0, stream()>>>(
        w.data<float>(), wt.data<float>() + work.offset, args.k, args.c, r, s, work.ph, work.pw,
        args.stride_h, args.stride_w, work.phase.ri, work.phase.sj, n);
    check_launch("conv2d_backward_data (transpose filters)");
  }

  const Precision precision = effective_precision(p.precision);
  const ProblemKey key{1, args.n,        args.c,        args.h,       args.w_,      args.k,        r,
                       s, args.stride_h, args.stride_w, int(p.pad_h), int(p.pad_w), int(precision)};
  launch_fastest_tile(key, args.c, widest, [&](TileShape shape) {
    with_tile(shape, [&](auto bm, auto bn) {
      with_precision(precision, [&](auto pr) {
        for (const PhaseWork& work : phases) {
          BackwardDataArgs phase_args = args;
          phase_args.phase = work.phase;
          phase_args.wt = wt.data<float>() + work.offset;
          phase_args.kd = args.k * work.phase.ri * work.phase.sj;
          phase_args.cols = args.n * work.phase.hph * work.phase.wph;
          launch_phase<decltype(bm)::value, decltype(bn)::value, decltype(pr)::value>(phase_args);
        }
      });
    });
  });
}

}  // namespace thaw::cuda
