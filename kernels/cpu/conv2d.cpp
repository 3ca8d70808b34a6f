// conv2d on the CPU: im2col / col2im + GEMM (OpenBLAS), on the pool of kernels/cpu/parallel.h.
//
// For a group of G images, im2col lays the input patches out as a matrix
//   col[(c*R + r)*S + s][g*P*Q + p*Q + q] = x[n0+g, c, p*stride_h - pad_h + r, q*stride_w - pad_w + s]  (0
//   outside)
// so that the convolution is one GEMM over the group:
//   forward:          Y_g (K, G*PQ)    = W (K, CRS) @ col (CRS, G*PQ)
//   backward-data:    col (CRS, G*PQ)  = W^T @ dY_g,   then col2im adds each entry back into dx
//   backward-weight:  dW (K, CRS)     += dY_g @ col^T
// Grouping images keeps the GEMM wide when P*Q is small (7x7 in layer4). A 1x1 stride-1 unpadded conv
// over one image at a time needs no im2col at all: the input plane already is the matrix.
//
// Threads (kernels/cpu/parallel.h): a pass runs as one parallel loop over blocks of whole images, or, for
// few small images, group by group with each step in parallel (see "the passes" below). Every sum (dW over
// the images) is cut by the shape only and added in a fixed order: the result never depends on the thread
// count. is_flat_shift() convolutions (stride 1, as wide as the input) copy and add whole shifted planes
// instead of row by row.
// reference_conv2d_* at the end are the direct seven-loop definitions, accumulated in double: the tests'
// oracle for the paths above (tests/test_cpu_fast_paths.cpp).
#include <algorithm>
#include <cstring>
#include <memory>

#include "kernels/cpu/blas.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/scratch.h"

namespace thaw::cpu {

namespace {

struct ConvGeometry {
  int64_t n, c, h, w;  // input
  int64_t k, r, s;     // filters
  int64_t p, q;        // output
  ops::Conv2dParams params;

  int64_t crs() const { return c * r * s; }
  int64_t pq() const { return p * q; }
  bool is_pointwise() const {
    return r == 1 && s == 1 && params.stride_h == 1 && params.stride_w == 1 && params.pad_h == 0 &&
           params.pad_w == 0;
  }
  // Stride 1 and an output as wide as the input (2 pad_w = S - 1: every 3x3 pad-1 conv of a ResNet): then
  // tap (r, s)'s patch, read row after row, is the input plane read from a fixed offset (see FlatShift).
  bool is_flat_shift() const { return params.stride_h == 1 && params.stride_w == 1 && q == w; }
  // Images per GEMM: enough columns for an efficient GEMM (and tiles for every thread), within bounded
  // buffers (col: CRS x G*PQ, the gathered output: K x G*PQ).
  int64_t group() const {
    constexpr int64_t kTargetColumns = 4096, kMaxBufferElements = int64_t(1) << 23;
    int64_t g = std::max<int64_t>(1, (kTargetColumns + pq() - 1) / pq());
    g = std::min(g,
                 std::max<int64_t>(1, kMaxBufferElements / std::max<int64_t>(1, std::max(crs(), k) * pq())));
    return std::min(g, n);
  }
};

ConvGeometry geometry(const Tensor& x_like, const Shape& w_shape, const Shape& y_shape,
                      const ops::Conv2dParams& p) {
  const Shape& xs = x_like.shape();
  return {xs[0], xs[1], xs[2], xs[3], w_shape[0], w_shape[2], w_shape[3], y_shape[2], y_shape[3], p};
}

// Output columns [lo, hi) whose input column q*stride - pad + s lies inside [0, W); the rest read padding.
inline void valid_range(int64_t out, int64_t in, int64_t stride, int64_t pad, int64_t offset, int64_t& lo,
                        int64_t& hi) {
  // q*stride - pad + offset >= 0  and  < in
  lo = std::clamp<int64_t>((pad - offset + stride - 1) / stride, 0, out);
  hi = std::clamp<int64_t>(in - 1 + pad - offset >= 0 ? (in - 1 + pad - offset) / stride + 1 : 0, lo, out);
}

// Output rows [op0, op1) of patch (c, r, s) of one image: out ((op1 - op0)*Q) from plane (H*W). Runs of
// valid columns are copied (a plain loop: the runs are short in the deep layers, where a memcpy call would
// cost more than the copy), the padding is zero-filled.
template <typename T>
void patch_rows(const T* plane, const ConvGeometry& geo, int64_t r, int64_t s, int64_t op0, int64_t op1,
                T* out) {
  const int64_t sh = geo.params.stride_h, sw = geo.params.stride_w;
  int64_t lo, hi;
  valid_range(geo.q, geo.w, sw, geo.params.pad_w, s, lo, hi);
  for (int64_t op = op0; op < op1; ++op) {
    const int64_t ih = op * sh - geo.params.pad_h + r;
    T* __restrict out_row = out + (op - op0) * geo.q;
    if (ih < 0 || ih >= geo.h) {
      for (int64_t oq = 0; oq < geo.q; ++oq)
        out_row[oq] = T(0);
      continue;
    }
    // plane[base + oq * sw] is column oq's input
    const T* __restrict in = plane + ih * geo.w - geo.params.pad_w + s;
    for (int64_t oq = 0; oq < lo; ++oq)
      out_row[oq] = T(0);
    if (sw == 1) {
#pragma omp simd
      for (int64_t oq = lo; oq < hi; ++oq)
        out_row[oq] = in[oq];
    } else {
      for (int64_t oq = lo; oq < hi; ++oq)
        out_row[oq] = in[oq * sw];
    }
    for (int64_t oq = hi; oq < geo.q; ++oq)
      out_row[oq] = T(0);
  }
}

// The fast path of im2col / col2im for is_flat_shift() convolutions. With stride 1 and Q == W, output pixel
// j = op*W + oq of tap (r, s) reads input pixel j + off, off = (r - pad_h) W + (s - pad_w), of the flattened
// plane, except where that read leaves the plane or wraps into the row above or below: the rows before
// op_lo and from op_hi on (above or below the image), and the |s - pad_w| columns at the left (s < pad_w) or
// right (s > pad_w) edge. So a patch is one contiguous copy (one contiguous add for col2im) of the source
// range [begin, end) plus zeros in those rows and columns.
struct FlatShift {
  int64_t off, op_lo, op_hi;  // valid output rows [op_lo, op_hi)
  int64_t begin, end;         // output pixels whose source lies inside the plane
  int64_t col_lo, col_hi;     // output columns that read inside the row: [col_lo, col_hi)
  FlatShift(const ConvGeometry& geo, int64_t r, int64_t s) {
    const int64_t ph = geo.params.pad_h, pw = geo.params.pad_w, hw = geo.h * geo.w;
    off = (r - ph) * geo.w + (s - pw);
    op_lo = std::clamp<int64_t>(ph - r, 0, geo.p);
    op_hi = std::clamp<int64_t>(geo.h + ph - r, op_lo, geo.p);
    begin = std::min(std::max(op_lo * geo.w, -off), op_hi * geo.w);
    end = std::max(begin, std::min(op_hi * geo.w, hw - off));
    col_lo = std::clamp<int64_t>(pw - s, 0, geo.w);
    col_hi = std::clamp<int64_t>(geo.w + pw - s, col_lo, geo.w);
  }
};

// Output rows [op0, op1) of a patch (Q == W) whose row 0 is output row op0: the columns that wrapped into the
// next or previous row set to 0, column by column (at most pad_w of them; a loop per row would be P calls of
// memset for one value each).
template <typename T>
void zero_wrapped_columns(const FlatShift& f, int64_t w, int64_t op0, int64_t op1, T* patch) {
  const int64_t lo = std::max(f.op_lo, op0), hi = std::min(f.op_hi, op1);
  for (int64_t j = 0; j < f.col_lo; ++j)
    for (int64_t op = lo; op < hi; ++op)
      patch[(op - op0) * w + j] = T(0);
  for (int64_t j = f.col_hi; j < w; ++j)
    for (int64_t op = lo; op < hi; ++op)
      patch[(op - op0) * w + j] = T(0);
}

// Output rows [op0, op1) of patch (c, r, s) of one image, flat shift: out ((op1 - op0)*W), pixels
// [op0*W, op1*W) of the whole patch, from plane (H*W).
template <typename T>
void im2col_flat(const T* plane, const ConvGeometry& geo, int64_t r, int64_t s, int64_t op0, int64_t op1,
                 T* out) {
  const FlatShift f(geo, r, s);
  const int64_t j0 = op0 * geo.w, j1 = op1 * geo.w;
  const int64_t b = std::clamp(f.begin, j0, j1), e = std::clamp(f.end, b, j1);
  std::fill(out, out + (b - j0), T(0));
  std::memcpy(out + (b - j0), plane + b + f.off, size_t(e - b) * sizeof(T));
  std::fill(out + (e - j0), out + (j1 - j0), T(0));
  zero_wrapped_columns(f, geo.w, op0, op1, out);
}

// Output rows [op0, op1) of patch (c, r, s) of one image, by the fast path when the shape has one.
template <typename T>
void patch_of(const T* plane, const ConvGeometry& geo, int64_t r, int64_t s, int64_t op0, int64_t op1,
              T* out) {
  if (geo.is_flat_shift())
    im2col_flat(plane, geo, r, s, op0, op1, out);
  else
    patch_rows(plane, geo, r, s, op0, op1, out);
}

// Output rows [op0, op1) of one image's patches: col (CRS, (op1 - op0)*Q), on the calling thread.
template <typename T>
void im2col_row_tile(const T* image, const ConvGeometry& geo, int64_t op0, int64_t op1, T* col) {
  const int64_t width = (op1 - op0) * geo.q, hw = geo.h * geo.w;
  for (int64_t row = 0; row < geo.crs(); ++row) {
    const int64_t c = row / (geo.r * geo.s), r = (row / geo.s) % geo.r, s = row % geo.s;
    patch_of(image + c * hw, geo, r, s, op0, op1, col + row * width);
  }
}

// Patches of images [n0, n0 + g) into col (CRS, g*PQ), in parallel over rows.
template <typename T>
void im2col(const T* x, const ConvGeometry& geo, int64_t n0, int64_t g, T* col) {
  const int64_t pq = geo.pq(), width = g * pq;
  parallel_ranges(geo.crs(), std::max<int64_t>(1, 16384 / width), [&](int64_t row0, int64_t row1) {
    for (int64_t row = row0; row < row1; ++row) {
      const int64_t c = row / (geo.r * geo.s), r = (row / geo.s) % geo.r, s = row % geo.s;
      for (int64_t img = 0; img < g; ++img)
        patch_of(x + ((n0 + img) * geo.c + c) * geo.h * geo.w, geo, r, s, 0, geo.p,
                 col + row * width + img * pq);
    }
  });
}

// dx for images [n0, n0 + g) from col (CRS, g*PQ), the transpose of im2col: each (image, channel) plane is
// zeroed, then gets every col entry that came from it. One task per plane range: no two tasks share a plane.
// For is_flat_shift() convolutions each patch is added with one contiguous loop (FlatShift), after its
// wrapped columns are set to 0 in col (col is the caller's scratch: it may be changed).
template <typename T>
void col2im(T* col, const ConvGeometry& geo, int64_t n0, int64_t g, T* dx) {
  const int64_t pq = geo.pq(), width = g * pq, hw = geo.h * geo.w;
  const int64_t sw = geo.params.stride_w;
  const int64_t grain = std::max<int64_t>(1, 16384 / (geo.r * geo.s * pq));
  parallel_ranges(g * geo.c, grain, [&](int64_t plane0, int64_t plane1) {
    for (int64_t pl = plane0; pl < plane1; ++pl) {
      const int64_t img = pl / geo.c, c = pl % geo.c;
      T* plane = dx + ((n0 + img) * geo.c + c) * hw;
      std::fill(plane, plane + hw, T(0));
      if (geo.is_flat_shift()) {
        for (int64_t r = 0; r < geo.r; ++r) {
          for (int64_t s = 0; s < geo.s; ++s) {
            const FlatShift f(geo, r, s);
            T* __restrict in = col + ((c * geo.r + r) * geo.s + s) * width + img * pq;
            zero_wrapped_columns(f, geo.w, 0, geo.p, in);
            T* __restrict out = plane + (f.begin + f.off);  // gets in[f.begin ..]
            const T* __restrict src = in + f.begin;
#pragma omp simd
            for (int64_t j = 0; j < f.end - f.begin; ++j)
              out[j] += src[j];
          }
        }
        continue;
      }
      for (int64_t r = 0; r < geo.r; ++r) {
        for (int64_t s = 0; s < geo.s; ++s) {
          const T* in = col + ((c * geo.r + r) * geo.s + s) * width + img * pq;
          int64_t lo, hi;
          valid_range(geo.q, geo.w, sw, geo.params.pad_w, s, lo, hi);
          for (int64_t op = 0; op < geo.p; ++op) {
            const int64_t ih = op * geo.params.stride_h - geo.params.pad_h + r;
            if (ih < 0 || ih >= geo.h) continue;
            T* __restrict out = plane + ih * geo.w - geo.params.pad_w + s;  // out[oq * sw] gets column oq
            const T* __restrict in_row = in + op * geo.q;
            if (sw == 1) {
#pragma omp simd
              for (int64_t oq = lo; oq < hi; ++oq)
                out[oq] += in_row[oq];
            } else {
              for (int64_t oq = lo; oq < hi; ++oq)
                out[oq * sw] += in_row[oq];
            }
          }
        }
      }
    }
  });
}

// (g, K, PQ) slice of a (N, K, PQ) tensor starting at image n0  <->  a (K, g*PQ) matrix, in parallel over K.
template <typename T>
void gather_images(const T* src, int64_t n0, int64_t g, int64_t k, int64_t pq, T* dst) {
  parallel_ranges(k, std::max<int64_t>(1, 16384 / (g * pq)), [&](int64_t k0, int64_t k1) {
    for (int64_t kk = k0; kk < k1; ++kk)
      for (int64_t img = 0; img < g; ++img)
        std::memcpy(dst + kk * g * pq + img * pq, src + ((n0 + img) * k + kk) * pq, size_t(pq) * sizeof(T));
  });
}
template <typename T>
void scatter_images(const T* src, int64_t n0, int64_t g, int64_t k, int64_t pq, T* dst) {
  parallel_ranges(k, std::max<int64_t>(1, 16384 / (g * pq)), [&](int64_t k0, int64_t k1) {
    for (int64_t kk = k0; kk < k1; ++kk)
      for (int64_t img = 0; img < g; ++img)
        std::memcpy(dst + ((n0 + img) * k + kk) * pq, src + kk * g * pq + img * pq, size_t(pq) * sizeof(T));
  });
}

// ---- the passes ----
//
// Two ways to run a pass, chosen by the shape:
//   - image blocks (when there are at least kMinBlocks of them): a block is enough whole images for about
//     kBlockColumns GEMM columns, and one task does everything for its block: im2col into its own thread's
//     scratch, a single-threaded GEMM, and the scatter or col2im of its own images. One parallel loop per
//     pass, and each block's col matrix is used while it is still in the core's cache. The weight gradient
//     sums blocks: each task adds its blocks into its own partial dW, and the partials are added in order.
//   - groups (few, small images: the deep layers of a small input): a group of up to ConvGeometry::group()
//     images at a time, im2col in parallel over rows, then parallel_gemm's tiles, then the scatter or col2im.

struct ImageBlocks {
  static constexpr int64_t kBlockColumns = 256, kMinBlocks = 4;
  int64_t per_block, count;
  explicit ImageBlocks(const ConvGeometry& geo)
      : per_block(std::max<int64_t>(1, (kBlockColumns + geo.pq() - 1) / geo.pq())),
        count((geo.n + per_block - 1) / per_block) {}
  bool used() const { return count >= kMinBlocks; }
  int64_t first(int64_t b) const { return b * per_block; }
  int64_t size(int64_t b, int64_t n) const { return std::min(per_block, n - b * per_block); }
};

// The forward pass of a large image (P*Q >= 2 kTileColumns, not pointwise) runs as tiles of output rows
// instead: a tile is about kTileColumns output pixels of one image, one task does its im2col into the
// thread's scratch (CRS x tile: in the core's L2 cache when the GEMM reads it back) and its GEMM, which
// writes the tile's columns of y in place (ldc = P*Q). A whole image's col matrix (7 MiB in a ResNet's
// first layers at 224x224) went out to memory between the two.
struct RowTiles {
  static constexpr int64_t kTileColumns = 256;
  int64_t rows, per_image, count;
  explicit RowTiles(const ConvGeometry& geo)
      : rows(std::max<int64_t>(1, kTileColumns / geo.q)),
        per_image((geo.p + rows - 1) / rows),
        count(geo.n * per_image) {}
  static bool used(const ConvGeometry& geo) { return geo.pq() >= 2 * kTileColumns && !geo.is_pointwise(); }
};

// y's output rows [op0, op1) of image i, on the calling thread (inside a task).
template <typename T>
void forward_row_tile(const T* px, const T* pw, const ConvGeometry& geo, int64_t i, int64_t op0, int64_t op1,
                      T* py) {
  const int64_t crs = geo.crs(), width = (op1 - op0) * geo.q;
  T* col = scratch<T>(0, crs * width);
  im2col_row_tile(px + i * geo.c * geo.h * geo.w, geo, op0, op1, col);
  gemm(false, false, geo.k, width, crs, T(1), pw, crs, col, width, T(0),
       py + (i * geo.k * geo.p + op0) * geo.q, geo.pq());
}

// y for images [i0, i0 + nb), on the calling thread (inside a task).
template <typename T>
void forward_images(const T* px, const T* pw, const ConvGeometry& geo, int64_t i0, int64_t nb, T* py) {
  const int64_t crs = geo.crs(), pq = geo.pq();
  const T* patches = px + i0 * geo.c * geo.h * geo.w;  // a 1x1 stride-1 conv of one image: the plane itself
  if (!(geo.is_pointwise() && nb == 1)) {
    T* col = scratch<T>(0, crs * nb * pq);
    im2col(px, geo, i0, nb, col);
    patches = col;
  }
  if (nb == 1) {
    gemm(false, false, geo.k, pq, crs, T(1), pw, crs, patches, pq, T(0), py + i0 * geo.k * pq, pq);
    return;
  }
  T* out = scratch<T>(1, geo.k * nb * pq);
  gemm(false, false, geo.k, nb * pq, crs, T(1), pw, crs, patches, nb * pq, T(0), out, nb * pq);
  scatter_images(out, i0, nb, geo.k, pq, py);
}

// dx for images [i0, i0 + nb), on the calling thread.
template <typename T>
void backward_data_images(const T* pdy, const T* pw, const ConvGeometry& geo, int64_t i0, int64_t nb,
                          T* pdx) {
  const int64_t crs = geo.crs(), pq = geo.pq();
  const T* dy_b = pdy + i0 * geo.k * pq;
  if (nb > 1) {
    T* grad = scratch<T>(1, geo.k * nb * pq);
    gather_images(pdy, i0, nb, geo.k, pq, grad);
    dy_b = grad;
  }
  if (geo.is_pointwise() && nb == 1) {  // dx_n (C, HW) = W^T (C, K) @ dy_n (K, HW)
    gemm(true, false, geo.c, pq, geo.k, T(1), pw, crs, dy_b, pq, T(0), pdx + i0 * geo.c * pq, pq);
    return;
  }
  T* col = scratch<T>(0, crs * nb * pq);
  gemm(true, false, crs, nb * pq, geo.k, T(1), pw, crs, dy_b, nb * pq, T(0), col, nb * pq);
  col2im(col, geo, i0, nb, pdx);
}

// acc (K, CRS) (+)= dY_b @ col_b^T for images [i0, i0 + nb), on the calling thread; beta 0 or 1.
template <typename T>
void backward_weight_images(const T* pdy, const T* px, const ConvGeometry& geo, int64_t i0, int64_t nb,
                            T beta, T* acc) {
  const int64_t crs = geo.crs(), pq = geo.pq();
  const T* patches = px + i0 * geo.c * geo.h * geo.w;
  if (!(geo.is_pointwise() && nb == 1)) {
    T* col = scratch<T>(0, crs * nb * pq);
    im2col(px, geo, i0, nb, col);
    patches = col;
  }
  const T* dy_b = pdy + i0 * geo.k * pq;
  if (nb > 1) {
    T* grad = scratch<T>(1, geo.k * nb * pq);
    gather_images(pdy, i0, nb, geo.k, pq, grad);
    dy_b = grad;
  }
  gemm(false, true, geo.k, crs, nb * pq, T(1), dy_b, nb * pq, patches, nb * pq, beta, acc, crs);
}

template <typename T>
void forward(const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeometry& geo, const Tensor& y) {
  const T* px = x.data<T>();
  const T* pw = w.data<T>();
  T* py = y.data<T>();
  const int64_t crs = geo.crs(), pq = geo.pq(), group = geo.group();
  const ImageBlocks blocks(geo);
  if (RowTiles::used(geo)) {
    const RowTiles tiles(geo);
    parallel_for(tiles.count, [&](int64_t t) {
      const int64_t i = t / tiles.per_image, op0 = (t % tiles.per_image) * tiles.rows;
      forward_row_tile(px, pw, geo, i, op0, std::min(geo.p, op0 + tiles.rows), py);
    });
  } else if (blocks.used()) {
    parallel_for(blocks.count, [&](int64_t bi) {
      forward_images(px, pw, geo, blocks.first(bi), blocks.size(bi, geo.n), py);
    });
  } else {
    const bool direct = geo.is_pointwise() && group == 1;  // the input plane is the patch matrix
    T* col = direct ? nullptr : scratch<T>(0, crs * group * pq);
    T* out = group > 1 ? scratch<T>(1, geo.k * group * pq) : nullptr;
    for (int64_t n0 = 0; n0 < geo.n; n0 += group) {
      const int64_t g = std::min(group, geo.n - n0);
      const T* patches = px + n0 * geo.c * geo.h * geo.w;
      if (!direct) {
        im2col(px, geo, n0, g, col);
        patches = col;
      }
      T* dst = g > 1 ? out : py + n0 * geo.k * pq;
      parallel_gemm(false, false, geo.k, g * pq, crs, T(1), pw, crs, patches, g * pq, T(0), dst, g * pq);
      if (g > 1) scatter_images(out, n0, g, geo.k, pq, py);
    }
  }
  if (b.defined()) {
    const T* pb = b.data<T>();
    parallel_ranges(geo.n * geo.k, std::max<int64_t>(1, 16384 / pq), [&](int64_t p0, int64_t p1) {
      for (int64_t plane = p0; plane < p1; ++plane) {
        T* yp = py + plane * pq;
        const T bias = pb[plane % geo.k];
        for (int64_t i = 0; i < pq; ++i)
          yp[i] += bias;
      }
    });
  }
}

template <typename T>
void backward_data(const Tensor& dy, const Tensor& w, const ConvGeometry& geo, const Tensor& dx) {
  const T* pdy = dy.data<T>();
  const T* pw = w.data<T>();
  T* pdx = dx.data<T>();
  const int64_t crs = geo.crs(), pq = geo.pq(), group = geo.group();
  const ImageBlocks blocks(geo);
  if (blocks.used()) {
    parallel_for(blocks.count, [&](int64_t bi) {
      backward_data_images(pdy, pw, geo, blocks.first(bi), blocks.size(bi, geo.n), pdx);
    });
    return;
  }
  if (geo.is_pointwise() && group == 1) {
    for (int64_t n = 0; n < geo.n; ++n)  // dx_n (C, HW) = W^T (C, K) @ dy_n (K, HW)
      parallel_gemm(true, false, geo.c, pq, geo.k, T(1), pw, crs, pdy + n * geo.k * pq, pq, T(0),
                    pdx + n * geo.c * pq, pq);
    return;
  }
  T* col = scratch<T>(0, crs * group * pq);
  T* grad = group > 1 ? scratch<T>(1, geo.k * group * pq) : nullptr;
  for (int64_t n0 = 0; n0 < geo.n; n0 += group) {
    const int64_t g = std::min(group, geo.n - n0);
    const T* dy_g = pdy + n0 * geo.k * pq;
    if (g > 1) {
      gather_images(pdy, n0, g, geo.k, pq, grad);
      dy_g = grad;
    }
    parallel_gemm(true, false, crs, g * pq, geo.k, T(1), pw, crs, dy_g, g * pq, T(0), col, g * pq);
    col2im(col, geo, n0, g, pdx);  // (may zero some entries of col)
  }
}

template <typename T>
void backward_weight(const Tensor& dy, const Tensor& x, const ConvGeometry& geo, const Tensor& dw) {
  const T* pdy = dy.data<T>();
  const T* px = x.data<T>();
  T* pdw = dw.data<T>();
  const int64_t crs = geo.crs(), pq = geo.pq(), group = geo.group();
  const ImageBlocks blocks(geo);
  if (blocks.used()) {
    // Partial sums: piece p adds up the blocks of its range, in order; the pieces are added in order. How
    // many is a function of the shape only (at most kMaxPartialElements values of partial results).
    constexpr int64_t kMaxPieces = 16, kMaxPartialElements = int64_t(1) << 22;
    const int64_t size = geo.k * crs;
    const int64_t pieces =
        std::clamp<int64_t>(kMaxPartialElements / size, 1, std::min(blocks.count, kMaxPieces));
    std::unique_ptr<T[]> partial(pieces > 1 ? new T[size_t(pieces * size)] : nullptr);
    parallel_for(pieces, [&](int64_t p) {
      const auto [b0, b1] = piece_range(blocks.count, pieces, p);
      T* acc = pieces > 1 ? partial.get() + p * size : pdw;
      for (int64_t bi = b0; bi < b1; ++bi)
        backward_weight_images(pdy, px, geo, blocks.first(bi), blocks.size(bi, geo.n), bi == b0 ? T(0) : T(1),
                               acc);
    });
    if (pieces > 1) {
      parallel_ranges(size, 16384, [&](int64_t i0, int64_t i1) {
        T* __restrict out = pdw + i0;
        std::copy(partial.get() + i0, partial.get() + i1, out);
        for (int64_t p = 1; p < pieces; ++p) {
          const T* __restrict in = partial.get() + p * size + i0;
#pragma omp simd
          for (int64_t i = 0; i < i1 - i0; ++i)
            out[i] += in[i];
        }
      });
    }
    return;
  }
  const bool direct = geo.is_pointwise() && group == 1;
  T* col = direct ? nullptr : scratch<T>(0, crs * group * pq);
  T* grad = group > 1 ? scratch<T>(1, geo.k * group * pq) : nullptr;
  for (int64_t n0 = 0; n0 < geo.n; n0 += group) {
    const int64_t g = std::min(group, geo.n - n0);
    const T* patches = px + n0 * geo.c * geo.h * geo.w;
    if (!direct) {
      im2col(px, geo, n0, g, col);
      patches = col;
    }
    const T* dy_g = pdy + n0 * geo.k * pq;
    if (g > 1) {
      gather_images(pdy, n0, g, geo.k, pq, grad);
      dy_g = grad;
    }
    parallel_gemm(false, true, geo.k, crs, g * pq, T(1), dy_g, g * pq, patches, g * pq, n0 == 0 ? T(0) : T(1),
                  pdw, crs);
  }
}

// ---- the direct definitions (the tests' oracle) ----

template <typename T>
T x_at(const T* x, const ConvGeometry& geo, int64_t n, int64_t c, int64_t ih, int64_t iw) {
  return ih < 0 || ih >= geo.h || iw < 0 || iw >= geo.w ? T(0)
                                                        : x[((n * geo.c + c) * geo.h + ih) * geo.w + iw];
}

template <typename T>
void reference_forward(const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeometry& geo,
                       const Tensor& y) {
  const T *px = x.data<T>(), *pw = w.data<T>();
  const ops::Conv2dParams& p = geo.params;
  parallel_for(geo.n * geo.k, [&](int64_t nk) {
    const int64_t n = nk / geo.k, k = nk % geo.k;
    for (int64_t op = 0; op < geo.p; ++op)
      for (int64_t oq = 0; oq < geo.q; ++oq) {
        double total = b.defined() ? double(b.data<T>()[k]) : 0.0;
        for (int64_t c = 0; c < geo.c; ++c)
          for (int64_t r = 0; r < geo.r; ++r)
            for (int64_t s = 0; s < geo.s; ++s)
              total +=
                  double(x_at(px, geo, n, c, op * p.stride_h - p.pad_h + r, oq * p.stride_w - p.pad_w + s)) *
                  double(pw[((k * geo.c + c) * geo.r + r) * geo.s + s]);
        y.data<T>()[(nk * geo.p + op) * geo.q + oq] = T(total);
      }
  });
}

template <typename T>
void reference_backward_data(const Tensor& dy, const Tensor& w, const ConvGeometry& geo, const Tensor& dx) {
  const T *pdy = dy.data<T>(), *pw = w.data<T>();
  const ops::Conv2dParams& p = geo.params;
  // dx[n, c, ih, iw] = sum over (k, r, s) with ih = op*stride_h - pad_h + r, iw likewise, of dy * w
  parallel_for(geo.n * geo.c, [&](int64_t nc) {
    const int64_t n = nc / geo.c, c = nc % geo.c;
    for (int64_t ih = 0; ih < geo.h; ++ih)
      for (int64_t iw = 0; iw < geo.w; ++iw) {
        double total = 0;
        for (int64_t k = 0; k < geo.k; ++k)
          for (int64_t r = 0; r < geo.r; ++r)
            for (int64_t s = 0; s < geo.s; ++s) {
              const int64_t th = ih + p.pad_h - r, tw = iw + p.pad_w - s;
              if (th < 0 || tw < 0 || th % p.stride_h != 0 || tw % p.stride_w != 0) continue;
              const int64_t op = th / p.stride_h, oq = tw / p.stride_w;
              if (op >= geo.p || oq >= geo.q) continue;
              total += double(pdy[((n * geo.k + k) * geo.p + op) * geo.q + oq]) *
                       double(pw[((k * geo.c + c) * geo.r + r) * geo.s + s]);
            }
        dx.data<T>()[(nc * geo.h + ih) * geo.w + iw] = T(total);
      }
  });
}

template <typename T>
void reference_backward_weight(const Tensor& dy, const Tensor& x, const ConvGeometry& geo, const Tensor& dw) {
  const T *pdy = dy.data<T>(), *px = x.data<T>();
  const ops::Conv2dParams& p = geo.params;
  parallel_for(geo.k * geo.c, [&](int64_t kc) {
    const int64_t k = kc / geo.c, c = kc % geo.c;
    for (int64_t r = 0; r < geo.r; ++r)
      for (int64_t s = 0; s < geo.s; ++s) {
        double total = 0;
        for (int64_t n = 0; n < geo.n; ++n)
          for (int64_t op = 0; op < geo.p; ++op)
            for (int64_t oq = 0; oq < geo.q; ++oq)
              total +=
                  double(pdy[((n * geo.k + k) * geo.p + op) * geo.q + oq]) *
                  double(x_at(px, geo, n, c, op * p.stride_h - p.pad_h + r, oq * p.stride_w - p.pad_w + s));
        dw.data<T>()[(kc * geo.r + r) * geo.s + s] = T(total);
      }
  });
}

}  // namespace

void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, const ops::Conv2dParams& p,
                    const Tensor& y) {
  const ConvGeometry geo = geometry(x, w.shape(), y.shape(), p);
  visit_floating(x.dtype(), [&](auto zero) { forward<decltype(zero)>(x, w, b, geo, y); });
}

void conv2d_backward_data(const Tensor& dy, const Tensor& w, const ops::Conv2dParams& p, const Tensor& dx) {
  const ConvGeometry geo = geometry(dx, w.shape(), dy.shape(), p);
  visit_floating(dy.dtype(), [&](auto zero) { backward_data<decltype(zero)>(dy, w, geo, dx); });
}

void conv2d_backward_weight(const Tensor& dy, const Tensor& x, const ops::Conv2dParams& p, const Tensor& dw) {
  const ConvGeometry geo = geometry(x, dw.shape(), dy.shape(), p);
  visit_floating(dy.dtype(), [&](auto zero) { backward_weight<decltype(zero)>(dy, x, geo, dw); });
}

void reference_conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, const ops::Conv2dParams& p,
                              const Tensor& y) {
  const ConvGeometry geo = geometry(x, w.shape(), y.shape(), p);
  visit_floating(x.dtype(), [&](auto zero) { reference_forward<decltype(zero)>(x, w, b, geo, y); });
}

void reference_conv2d_backward_data(const Tensor& dy, const Tensor& w, const ops::Conv2dParams& p,
                                    const Tensor& dx) {
  const ConvGeometry geo = geometry(dx, w.shape(), dy.shape(), p);
  visit_floating(dy.dtype(), [&](auto zero) { reference_backward_data<decltype(zero)>(dy, w, geo, dx); });
}

void reference_conv2d_backward_weight(const Tensor& dy, const Tensor& x, const ops::Conv2dParams& p,
                                      const Tensor& dw) {
  const ConvGeometry geo = geometry(x, dw.shape(), dy.shape(), p);
  visit_floating(dy.dtype(), [&](auto zero) { reference_backward_weight<decltype(zero)>(dy, x, geo, dw); });
}

}  // namespace thaw::cpu
