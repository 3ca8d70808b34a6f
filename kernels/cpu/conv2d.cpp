// conv2d on the CPU: im2col / col2im + GEMM (OpenBLAS).
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
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/blas.h"
#include "kernels/cpu/cpu_ops.h"

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
  // Images per GEMM: enough columns for an efficient GEMM, within a bounded im2col buffer.
  int64_t group() const {
    constexpr int64_t kTargetColumns = 2048, kMaxBufferElements = int64_t(1) << 24;
    int64_t g = std::max<int64_t>(1, (kTargetColumns + pq() - 1) / pq());
    g = std::min(g, std::max<int64_t>(1, kMaxBufferElements / std::max<int64_t>(1, crs() * pq())));
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

// Patches of images [n0, n0 + g) into col (CRS, g*PQ).
template <typename T>
void im2col(const T* x, const ConvGeometry& geo, int64_t n0, int64_t g, T* col) {
  const int64_t pq = geo.pq(), width = g * pq;
  const int64_t sh = geo.params.stride_h, sw = geo.params.stride_w;
#pragma omp parallel for collapse(2) if (geo.crs() * width > 32768)
  for (int64_t img = 0; img < g; ++img) {
    for (int64_t row = 0; row < geo.crs(); ++row) {
      const int64_t c = row / (geo.r * geo.s), r = (row / geo.s) % geo.r, s = row % geo.s;
      const T* plane = x + ((n0 + img) * geo.c + c) * geo.h * geo.w;
      T* out = col + row * width + img * pq;
      int64_t lo, hi;
      valid_range(geo.q, geo.w, sw, geo.params.pad_w, s, lo, hi);
      for (int64_t op = 0; op < geo.p; ++op) {
        const int64_t ih = op * sh - geo.params.pad_h + r;
        T* out_row = out + op * geo.q;
        if (ih < 0 || ih >= geo.h) {
          std::fill(out_row, out_row + geo.q, T(0));
          continue;
        }
        const int64_t base = ih * geo.w - geo.params.pad_w + s;  // plane[base + oq * sw] is column oq's input
        std::fill(out_row, out_row + lo, T(0));
        if (sw == 1) {
          std::memcpy(out_row + lo, plane + (base + lo), size_t(hi - lo) * sizeof(T));
        } else {
          for (int64_t oq = lo; oq < hi; ++oq)
            out_row[oq] = plane[base + oq * sw];
        }
        std::fill(out_row + hi, out_row + geo.q, T(0));
      }
    }
  }
}

// Adds col (CRS, g*PQ) back into images [n0, n0 + g) of dx (the transpose of im2col).
template <typename T>
void col2im(const T* col, const ConvGeometry& geo, int64_t n0, int64_t g, T* dx) {
  const int64_t pq = geo.pq(), width = g * pq;
  // Each (image, channel) plane of dx is written by one thread only.
#pragma omp parallel for collapse(2) if (geo.crs() * width > 32768)
  for (int64_t img = 0; img < g; ++img) {
    for (int64_t c = 0; c < geo.c; ++c) {
      T* plane = dx + ((n0 + img) * geo.c + c) * geo.h * geo.w;
      for (int64_t r = 0; r < geo.r; ++r) {
        for (int64_t s = 0; s < geo.s; ++s) {
          const T* in = col + ((c * geo.r + r) * geo.s + s) * width + img * pq;
          int64_t lo, hi;
          valid_range(geo.q, geo.w, geo.params.stride_w, geo.params.pad_w, s, lo, hi);
          for (int64_t op = 0; op < geo.p; ++op) {
            const int64_t ih = op * geo.params.stride_h - geo.params.pad_h + r;
            if (ih < 0 || ih >= geo.h) continue;
            const int64_t base =
                ih * geo.w - geo.params.pad_w + s;  // plane[base + oq * stride_w] gets column oq
            const T* in_row = in + op * geo.q;
            for (int64_t oq = lo; oq < hi; ++oq)
              plane[base + oq * geo.params.stride_w] += in_row[oq];
          }
        }
      }
    }
  }
}

// (g, K, PQ) slice of a (N, K, PQ) tensor starting at image n0  <->  a (K, g*PQ) matrix.
template <typename T>
void gather_images(const T* src, int64_t n0, int64_t g, int64_t k, int64_t pq, T* dst) {
  for (int64_t img = 0; img < g; ++img)
    for (int64_t kk = 0; kk < k; ++kk)
      std::memcpy(dst + kk * g * pq + img * pq, src + ((n0 + img) * k + kk) * pq, size_t(pq) * sizeof(T));
}
template <typename T>
void scatter_images(const T* src, int64_t n0, int64_t g, int64_t k, int64_t pq, T* dst) {
  for (int64_t img = 0; img < g; ++img)
    for (int64_t kk = 0; kk < k; ++kk)
      std::memcpy(dst + ((n0 + img) * k + kk) * pq, src + kk * g * pq + img * pq, size_t(pq) * sizeof(T));
}

template <typename T>
void forward(const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeometry& geo, const Tensor& y) {
  const T* px = x.data<T>();
  const T* pw = w.data<T>();
  T* py = y.data<T>();
  const int64_t crs = geo.crs(), pq = geo.pq(), group = geo.group();
  const bool direct = geo.is_pointwise() && group == 1;  // the input plane is the patch matrix
  std::vector<T> col(direct ? 0 : size_t(crs * group * pq));
  std::vector<T> out(group > 1 ? size_t(geo.k * group * pq) : 0);
  for (int64_t n0 = 0; n0 < geo.n; n0 += group) {
    const int64_t g = std::min(group, geo.n - n0);
    const T* patches = px + n0 * geo.c * geo.h * geo.w;
    if (!direct) {
      im2col(px, geo, n0, g, col.data());
      patches = col.data();
    }
    T* dst = g > 1 ? out.data() : py + n0 * geo.k * pq;
    gemm(false, false, geo.k, g * pq, crs, T(1), pw, crs, patches, g * pq, T(0), dst, g * pq);
    if (g > 1) scatter_images(out.data(), n0, g, geo.k, pq, py);
  }
  if (b.defined()) {
    const T* pb = b.data<T>();
#pragma omp parallel for collapse(2) if (y.numel() > 65536)
    for (int64_t n = 0; n < geo.n; ++n)
      for (int64_t k = 0; k < geo.k; ++k) {
        T* plane = py + (n * geo.k + k) * pq;
        for (int64_t i = 0; i < pq; ++i)
          plane[i] += pb[k];
      }
  }
}

template <typename T>
void backward_data(const Tensor& dy, const Tensor& w, const ConvGeometry& geo, const Tensor& dx) {
  const T* pdy = dy.data<T>();
  const T* pw = w.data<T>();
  T* pdx = dx.data<T>();
  const int64_t crs = geo.crs(), pq = geo.pq(), group = geo.group();
  if (geo.is_pointwise() && group == 1) {
    for (int64_t n = 0; n < geo.n; ++n)  // dx_n (C, HW) = W^T (C, K) @ dy_n (K, HW)
      gemm(true, false, geo.c, pq, geo.k, T(1), pw, crs, pdy + n * geo.k * pq, pq, T(0), pdx + n * geo.c * pq,
           pq);
    return;
  }
  std::vector<T> col(size_t(crs * group * pq));
  std::vector<T> grad(group > 1 ? size_t(geo.k * group * pq) : 0);
  std::memset(pdx, 0, dx.nbytes());
  for (int64_t n0 = 0; n0 < geo.n; n0 += group) {
    const int64_t g = std::min(group, geo.n - n0);
    const T* dy_g = pdy + n0 * geo.k * pq;
    if (g > 1) {
      gather_images(pdy, n0, g, geo.k, pq, grad.data());
      dy_g = grad.data();
    }
    gemm(true, false, crs, g * pq, geo.k, T(1), pw, crs, dy_g, g * pq, T(0), col.data(), g * pq);
    col2im(col.data(), geo, n0, g, pdx);
  }
}

template <typename T>
void backward_weight(const Tensor& dy, const Tensor& x, const ConvGeometry& geo, const Tensor& dw) {
  const T* pdy = dy.data<T>();
  const T* px = x.data<T>();
  T* pdw = dw.data<T>();
  const int64_t crs = geo.crs(), pq = geo.pq(), group = geo.group();
  const bool direct = geo.is_pointwise() && group == 1;
  std::vector<T> col(direct ? 0 : size_t(crs * group * pq));
  std::vector<T> grad(group > 1 ? size_t(geo.k * group * pq) : 0);
  for (int64_t n0 = 0; n0 < geo.n; n0 += group) {
    const int64_t g = std::min(group, geo.n - n0);
    const T* patches = px + n0 * geo.c * geo.h * geo.w;
    if (!direct) {
      im2col(px, geo, n0, g, col.data());
      patches = col.data();
    }
    const T* dy_g = pdy + n0 * geo.k * pq;
    if (g > 1) {
      gather_images(pdy, n0, g, geo.k, pq, grad.data());
      dy_g = grad.data();
    }
    gemm(false, true, geo.k, crs, g * pq, T(1), dy_g, g * pq, patches, g * pq, n0 == 0 ? T(0) : T(1), pdw,
         crs);
  }
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

}  // namespace thaw::cpu
