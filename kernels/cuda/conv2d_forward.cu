// conv2d forward on CUDA as a tiled implicit GEMM, in the precision of the params (fp32 FMAs, or tf32 / bf16
// tensor cores with float32 accumulation); the tile machinery is in conv2d_tiles.cuh.
//
//   y (K, N*P*Q) = W (K, CRS) @ col (CRS, N*P*Q)      then + b[k]
//   A = W viewed as a row-major (K x CRS) matrix: A[k][(c*R + r)*S + s] = w[k, c, r, s]
//   B = col, the im2col matrix of x, never stored: column (n*P + p)*Q + q, row (c*R + r)*S + s holds
//       x[n, c, p*stride_h - pad_h + r, q*stride_w - pad_w + s]   (0 where that reads padding)
//   C[k][(n*P + p)*Q + q] goes to y[n, k, p, q].
// GEMM sizes M = K, Ncols = N*P*Q, Kd = C*R*S. Each block computes a BM x BN tile of C; the thread that
// gathers B column col decomposes it into (n, p, q) once, and walks the rows (c, r, s) with a division-free
// counter. B loads are coalesced along the output pixels (consecutive threads, consecutive q).
#include <map>
#include <mutex>

#include "kernels/cuda/conv2d_tiles.cuh"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/launch.h"

namespace thaw::cuda {

namespace {

using namespace conv;

struct ForwardArgs {
  const float* x;  // (N, C, H, W)
  const float* w;  // (K, C, R, S)
  const float* b;  // (K,) or null
  float* y;        // (N, K, P, Q)
  int n, c, h, w_, k, r, s, p, q;
  int stride_h, stride_w, pad_h, pad_w;
  int kd, cols;                   // C*R*S, N*P*Q
  int tiles_m;                    // blocks along M; block b computes tile (b % tiles_m, b / tiles_m)
  RadixStep row_step, tile_step;  // (c, r, s) digits of 256/BN (B rows between a thread's loads) and of 8
};

// The A and B tiles of one block: A = w (dense rows), B = implicit im2col of x, staged row-fast (each
// thread owns one column of B: col = n0 + t % BN; its rows are t / BN + (256 / BN) j of each k-tile).
template <int BM, int BN>
struct ForwardOperands {
  static constexpr Staging kAStaging = Staging::kKFast, kBStaging = Staging::kRowFast;
  static constexpr int kBLoads = Tile<BM, BN>::kBLoads;

  DenseA<BM> a;
  const ForwardArgs& args;
  int x_base;        // n * C*H*W of this thread's column
  int ih0, iw0;      // p*stride_h - pad_h, q*stride_w - pad_w; far negative for a column past the end
  RadixCounter crs;  // (c, r, s) of this thread's first B row in the current k-tile

  __device__ __forceinline__ ForwardOperands(const ForwardArgs& args_, int m0, int n0)
      : a(args_.w, args_.k, args_.kd, m0, 0), args(args_) {
    const int t = threadIdx.x, col = n0 + t % BN;
    if (col < args.cols) {
      const int pq = args.p * args.q;
      const int img = col / pq, pixel = col - img * pq;
      const int op = pixel / args.q, oq = pixel - op * args.q;
      x_base = img * (args.c * args.h * args.w_);
      ih0 = op * args.stride_h - args.pad_h;
      iw0 = oq * args.stride_w - args.pad_w;
    } else {
      x_base = 0;
      ih0 = iw0 = -(1 << 30);  // every ih0 + r is negative: reads nothing
    }
    crs.set(t / BN, args.r, args.s);
  }

  __device__ __forceinline__ void load(float (&va)[DenseA<BM>::kLoads], float (&vb)[kBLoads]) {
    a.load(va);
    RadixCounter e = crs;
#pragma unroll
    for (int j = 0; j < kBLoads; ++j) {
      if (j > 0) e.advance(args.row_step, args.r, args.s);
      const int ih = ih0 + e.mid, iw = iw0 + e.lo;  // e.hi < C <=> the row is inside Kd
      vb[j] = (e.hi < args.c && unsigned(ih) < unsigned(args.h) && unsigned(iw) < unsigned(args.w_))
                  ? __ldg(args.x + x_base + (e.hi * args.h + ih) * args.w_ + iw)
                  : 0.0f;
    }
    crs.advance(args.tile_step, args.r, args.s);
  }
};

template <int BM, int BN, Precision P>
__global__ void __launch_bounds__(kThreads, 2) conv2d_forward_kernel(const ForwardArgs args) {
  using Acc = typename Accumulator<BM, BN, P>::type;
  __shared__ __align__(16) Smem<BM, BN, Acc::kPad> sm;
  const int m0 = int(blockIdx.x % unsigned(args.tiles_m)) * BM;
  const int n0 = int(blockIdx.x / unsigned(args.tiles_m)) * BN;
  ForwardOperands<BM, BN> ops(args, m0, n0);
  Acc acc;
  gemm_mainloop<BM, BN>(ops, (args.kd + kTileK - 1) / kTileK, sm, acc);
  store_nchw(acc, args.y, args.b, args.k, args.cols, args.p * args.q, m0, n0);
}

template <int BM, int BN, Precision P>
void launch_forward(ForwardArgs args) {
  const int64_t tiles_m = (args.k + BM - 1) / BM, tiles_n = (int64_t(args.cols) + BN - 1) / BN;
  if (tiles_m * tiles_n > INT32_MAX)
    fail("conv2d_forward: {} x {} tiles are too many blocks", tiles_m, tiles_n);
  args.tiles_m = int(tiles_m);
  args.row_step = radix_step(kThreads / BN, args.r, args.s);
  args.tile_step = radix_step(kTileK, args.r, args.s);
  conv2d_forward_kernel<BM, BN, P><<<unsigned(tiles_m * tiles_n), kThreads, 0, stream()>>>(args);
  check_launch("conv2d_forward");
}

}  // namespace

namespace conv {

namespace {

// An empty kernel whose attributes say which code of this build the driver loads on the current card.
__global__ void arch_probe_kernel() {}

// Whether the device runs this build's tensor-core kernels: compute capability 8.0 or newer, and code
// compiled for 8.0 or newer loaded for it. Asked of the driver once per device (the answer cannot change
// while the process runs), not at every convolution.
bool runs_tensor_cores(int device) {
  static std::mutex mutex;
  static std::map<int, bool> known;
  std::lock_guard<std::mutex> lock(mutex);
  const auto it = known.find(device);
  if (it != known.end()) return it->second;
  int major = 0;
  check_cuda(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device),
             "cudaDeviceGetAttribute (conv2d)");
  cudaFuncAttributes probe{};
  check_cuda(cudaFuncGetAttributes(&probe, arch_probe_kernel), "cudaFuncGetAttributes (conv2d)");
  const bool yes = major >= 8 && probe.ptxVersion >= 80 && probe.binaryVersion >= 80;
  known.emplace(device, yes);
  return yes;
}

}  // namespace

Precision effective_precision(Precision requested) {
  if (requested == Precision::FP32) return requested;
  int device = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice (conv2d)");
  return runs_tensor_cores(device) ? requested : Precision::FP32;
}

}  // namespace conv

Precision conv2d_precision(Precision requested) {
  return conv::effective_precision(requested);
}

void force_conv2d_tile(const std::string& tile) {
  forced_tile().store(tile_index(tile, "force_conv2d_tile"));
}

// x: (N, C, H, W), w: (K, C, R, S), b: (K,) or undefined  ->  y: (N, K, P, Q), overwritten; in p.precision
// where the card has tensor cores, else fp32 (effective_precision).
void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, const ops::Conv2dParams& p,
                    const Tensor& y) {
  if (y.numel() == 0) return;
  check_int32_indexable(x.numel(), "conv2d_forward", "x");
  check_int32_indexable(w.numel(), "conv2d_forward", "w");
  check_int32_indexable(y.numel(), "conv2d_forward", "y");
  ForwardArgs args{};
  args.x = x.data<float>();
  args.w = w.data<float>();
  args.b = b.defined() ? b.data<float>() : nullptr;
  args.y = y.data<float>();
  args.n = int(x.size(0)), args.c = int(x.size(1)), args.h = int(x.size(2)), args.w_ = int(x.size(3));
  args.k = int(w.size(0)), args.r = int(w.size(2)), args.s = int(w.size(3));
  args.p = int(y.size(2)), args.q = int(y.size(3));
  args.stride_h = int(p.stride_h), args.stride_w = int(p.stride_w);
  args.pad_h = int(p.pad_h), args.pad_w = int(p.pad_w);
  args.kd = args.c * args.r * args.s;
  args.cols = args.n * args.p * args.q;

  const Precision precision = effective_precision(p.precision);
  const ProblemKey key{0,      args.n,        args.c,        args.h,     args.w_,    args.k,        args.r,
                       args.s, args.stride_h, args.stride_w, args.pad_h, args.pad_w, int(precision)};
  launch_fastest_tile(key, args.k, args.cols, [&](TileShape shape) {
    with_tile(shape, [&](auto bm, auto bn) {
      with_precision(precision, [&](auto pr) {
        launch_forward<decltype(bm)::value, decltype(bn)::value, decltype(pr)::value>(args);
      });
    });
  });
}

}  // namespace thaw::cuda
