// conv2d backward-data on CUDA (float32) as a tiled implicit GEMM; the tile machinery is in
// conv2d_tiles.cuh. dx is written (=), not accumulated into.
//
//   dx[n, c, h, w] = sum_{k, r, s} dy[n, k, (h + pad_h - r) / stride_h, (w + pad_w - s) / stride_w]
//                                   * w[k, c, r, s]
// over the terms where both divisions are exact and land inside the P x Q output (the adjoint of forward).
// As a GEMM:
//   dx (C, N*H*W) = Wt (C, KRS) @ B (KRS, N*H*W)
//   A = Wt, the filters transposed to (C, K, R, S) by a small kernel first, so A's rows are contiguous:
//       A[c][(k*R + r)*S + s] = w[k, c, r, s]
//   B is never stored: column (n*H + h)*W + w, row (k*R + r)*S + s holds the dy term above (or 0)
//   C[c][(n*H + h)*W + w] goes to dx[n, c, h, w].
// GEMM sizes M = C, Ncols = N*H*W, Kd = K*R*S. With stride 1 the B gather needs no division; with a larger
// stride most terms are zero and the exactness test divides (fine for ResNet's few stride-2 layers).
#include "kernels/cuda/conv2d_tiles.cuh"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/launch.h"

namespace thaw::cuda {

namespace {

using namespace conv;

struct BackwardDataArgs {
  const float* dy;  // (N, K, P, Q)
  const float* wt;  // (C, K, R, S): w transposed
  float* dx;        // (N, C, H, W)
  int n, c, h, w_, k, r, s, p, q;
  int stride_h, stride_w, pad_h, pad_w;
  int kd, cols;                   // K*R*S, N*H*W
  int tiles_m;                    // blocks along M; block b computes tile (b % tiles_m, b / tiles_m)
  RadixStep row_step, tile_step;  // (k, r, s) digits of 256/BN (B rows between a thread's loads) and of 8
};

// wt[c, k, r, s] = w[k, c, r, s]; rs = R*S.
__global__ void transpose_filters_kernel(const float* w, float* wt, int k_total, int c_total, int rs,
                                         int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int idx = int(i);  // n < 2^31, checked by the caller
    const int c = idx / (k_total * rs), rest = idx - c * (k_total * rs);
    const int k = rest / rs, j = rest - k * rs;
    wt[idx] = w[(k * c_total + c) * rs + j];
  }
}

// The A and B tiles of one block: A = wt (dense rows), B = the dy terms, staged row-fast (each thread owns
// one column of B: col = n0 + t % BN; its rows are t / BN + (256 / BN) j of each k-tile).
template <int BM, int BN, bool kUnitStride>
struct BackwardDataOperands {
  static constexpr Staging kAStaging = Staging::kKFast, kBStaging = Staging::kRowFast;
  static constexpr int kBLoads = Tile<BM, BN>::kBLoads;

  DenseA<BM> a;
  const BackwardDataArgs& args;
  int dy_base;       // n * K*P*Q of this thread's column
  int hp, wp;        // h + pad_h, w + pad_w; far negative for a column past the end
  RadixCounter krs;  // (k, r, s) of this thread's first B row in the current k-tile

  __device__ __forceinline__ BackwardDataOperands(const BackwardDataArgs& args_, int m0, int n0)
      : a(args_.wt, args_.c, args_.kd, m0, 0), args(args_) {
    const int t = threadIdx.x, col = n0 + t % BN;
    if (col < args.cols) {
      const int hw = args.h * args.w_;
      const int img = col / hw, pixel = col - img * hw;
      const int ih = pixel / args.w_, iw = pixel - ih * args.w_;
      dy_base = img * (args.k * args.p * args.q);
      hp = ih + args.pad_h;
      wp = iw + args.pad_w;
    } else {
      dy_base = 0;
      hp = wp = -(1 << 30);  // every hp - r is negative: reads nothing
    }
    krs.set(t / BN, args.r, args.s);
  }

  __device__ __forceinline__ void load(float (&va)[DenseA<BM>::kLoads], float (&vb)[kBLoads]) {
    a.load(va);
    RadixCounter e = krs;
#pragma unroll
    for (int j = 0; j < kBLoads; ++j) {
      if (j > 0) e.advance(args.row_step, args.r, args.s);
      const int th = hp - e.mid, tw = wp - e.lo;  // = op * stride_h, oq * stride_w if the term exists
      int op = th, oq = tw;
      bool ok = e.hi < args.k;  // the row is inside Kd
      if (kUnitStride) {
        ok = ok && unsigned(th) < unsigned(args.p) && unsigned(tw) < unsigned(args.q);
      } else {
        op = th / args.stride_h, oq = tw / args.stride_w;
        ok = ok && th >= 0 && tw >= 0 && op * args.stride_h == th && oq * args.stride_w == tw &&
             op < args.p && oq < args.q;
      }
      vb[j] = ok ? __ldg(args.dy + dy_base + (e.hi * args.p + op) * args.q + oq) : 0.0f;
    }
    krs.advance(args.tile_step, args.r, args.s);
  }
};

template <int BM, int BN, bool kUnitStride>
__global__ void __launch_bounds__(kThreads, 2) conv2d_backward_data_kernel(const BackwardDataArgs args) {
  __shared__ __align__(16) Smem<BM, BN> sm;
  const int m0 = int(blockIdx.x % unsigned(args.tiles_m)) * BM;
  const int n0 = int(blockIdx.x / unsigned(args.tiles_m)) * BN;
  BackwardDataOperands<BM, BN, kUnitStride> ops(args, m0, n0);
  float acc[Tile<BM, BN>::kTM][Tile<BM, BN>::kTN];
  gemm_mainloop<BM, BN>(ops, (args.kd + kTileK - 1) / kTileK, sm, acc);
  store_nchw<BM, BN>(acc, args.dx, nullptr, args.c, args.cols, args.h * args.w_, m0, n0);
}

template <int BM, int BN>
void launch_backward_data(BackwardDataArgs args) {
  const int64_t tiles_m = (args.c + BM - 1) / BM, tiles_n = (int64_t(args.cols) + BN - 1) / BN;
  if (tiles_m * tiles_n > INT32_MAX)
    fail("conv2d_backward_data: {} x {} tiles are too many blocks", tiles_m, tiles_n);
  args.tiles_m = int(tiles_m);
  args.row_step = radix_step(kThreads / BN, args.r, args.s);
  args.tile_step = radix_step(kTileK, args.r, args.s);
  const unsigned blocks = unsigned(tiles_m * tiles_n);
  if (args.stride_h == 1 && args.stride_w == 1)
    conv2d_backward_data_kernel<BM, BN, true><<<blocks, kThreads, 0, stream()>>>(args);
  else
    conv2d_backward_data_kernel<BM, BN, false><<<blocks, kThreads, 0, stream()>>>(args);
  check_launch("conv2d_backward_data");
}

}  // namespace

// dy: (N, K, P, Q), w: (K, C, R, S)  ->  dx: (N, C, H, W), overwritten.
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
  args.k = int(w.size(0)), args.r = int(w.size(2)), args.s = int(w.size(3));
  args.p = int(dy.size(2)), args.q = int(dy.size(3));
  args.stride_h = int(p.stride_h), args.stride_w = int(p.stride_w);
  args.pad_h = int(p.pad_h), args.pad_w = int(p.pad_w);
  args.kd = args.k * args.r * args.s;
  args.cols = args.n * args.h * args.w_;

  const Tensor wt = Tensor::empty(w.shape(), DType::Float32, w.device());  // (C, K, R, S) in fact
  transpose_filters_kernel<<<blocks_for(w.numel()), kThreadsPerBlock, 0, stream()>>>(
      w.data<float>(), wt.data<float>(), args.k, args.c, args.r * args.s, w.numel());
  check_launch("conv2d_backward_data (transpose filters)");
  args.dy = dy.data<float>();
  args.wt = wt.data<float>();
  args.dx = dx.data<float>();

  const ProblemKey key{1,      args.n, args.c,        args.h,        args.w_,    args.k,
                       args.r, args.s, args.stride_h, args.stride_w, args.pad_h, args.pad_w};
  launch_fastest_tile(key, args.c, args.cols, [&](TileShape shape) {
    with_tile(shape, [&](auto bm, auto bn) {
      launch_backward_data<decltype(bm)::value, decltype(bn)::value>(args);
    });
  });
}

}  // namespace thaw::cuda
