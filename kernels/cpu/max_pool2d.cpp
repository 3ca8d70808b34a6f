// max-pool 2-D on the CPU, (n, c) planes in parallel. The forward records the argmax (index
// h*W + w in the input plane) so that the backward routes each gradient to the element that won.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/parallel.h"

namespace thaw::cpu {

void max_pool2d_forward(const Tensor& x, const ops::Pool2dParams& p, const Tensor& y, const Tensor& argmax) {
  visit_floating(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const int64_t planes = x.size(0) * x.size(1), h = x.size(2), w = x.size(3);
    const int64_t ph = y.size(2), pw = y.size(3);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    int32_t* pidx = argmax.data<int32_t>();
    // One output row at a time, its windows scanned together: for each window position (i, j) in row-major
    // order, every output column whose window has that position inside the input takes its candidate v if
    // it is the window's first (index still -1), or larger than the best so far, or the first NaN (a NaN
    // is never replaced: v > NaN is false, and best == best is false). So ties go to the first in row-major
    // order and NaN propagates, as the contract says; the loop over output columns has no branch.
    parallel_ranges(planes, std::max<int64_t>(1, 32768 / (h * w)), [&](int64_t plane0, int64_t plane1) {
      for (int64_t plane = plane0; plane < plane1; ++plane) {
        const T* in = px + plane * h * w;
        for (int64_t oh = 0; oh < ph; ++oh) {
          T* __restrict best = py + (plane * ph + oh) * pw;
          int32_t* __restrict index = pidx + (plane * ph + oh) * pw;
          for (int64_t ow = 0; ow < pw; ++ow)
            best[ow] = T(-INFINITY), index[ow] = -1;
          const int64_t h0 = oh * p.stride_h - p.pad_h;
          for (int64_t i = std::max<int64_t>(h0, 0); i < std::min(h0 + p.kernel_h, h); ++i) {
            for (int64_t j = 0; j < p.kernel_w; ++j) {
              // Output columns whose window column j lies inside the row: ow * stride_w - pad_w + j in [0,
              // w).
              const int64_t lo = std::clamp<int64_t>((p.pad_w - j + p.stride_w - 1) / p.stride_w, 0, pw);
              const int64_t hi = std::clamp<int64_t>(
                  w - 1 + p.pad_w - j >= 0 ? (w - 1 + p.pad_w - j) / p.stride_w + 1 : 0, lo, pw);
              const T* row = in + i * w - p.pad_w + j;  // row[ow * stride_w] is the candidate of column ow
              const int32_t base = int32_t(i * w - p.pad_w + j);
              for (int64_t ow = lo; ow < hi; ++ow) {
                const T v = row[ow * p.stride_w];
                const bool take = (index[ow] < 0) | (v > best[ow]) | ((v != v) & (best[ow] == best[ow]));
                best[ow] = take ? v : best[ow];
                index[ow] = take ? base + int32_t(ow * p.stride_w) : index[ow];
              }
            }
          }
        }
      }
    });
  });
}

// The definition, window by window: the oracle of the forward above (tests/test_cpu_fast_paths.cpp).
void reference_max_pool2d_forward(const Tensor& x, const ops::Pool2dParams& p, const Tensor& y,
                                  const Tensor& argmax) {
  visit_floating(x.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const int64_t planes = x.size(0) * x.size(1), h = x.size(2), w = x.size(3);
    const int64_t ph = y.size(2), pw = y.size(3);
    for (int64_t plane = 0; plane < planes; ++plane) {
      const T* in = x.data<T>() + plane * h * w;
      for (int64_t oh = 0; oh < ph; ++oh) {
        for (int64_t ow = 0; ow < pw; ++ow) {
          const int64_t h0 = oh * p.stride_h - p.pad_h, w0 = ow * p.stride_w - p.pad_w;
          T best = -INFINITY;
          int64_t best_index = -1;
          for (int64_t i = std::max<int64_t>(h0, 0); i < std::min(h0 + p.kernel_h, h); ++i) {
            for (int64_t j = std::max<int64_t>(w0, 0); j < std::min(w0 + p.kernel_w, w); ++j) {
              const T v = in[i * w + j];
              if (best_index < 0 || v > best || std::isnan(v)) {
                best = v;
                best_index = i * w + j;
              }
              if (std::isnan(v)) {  // NaN wins and stays: stop scanning this window
                i = h;
                break;
              }
            }
          }
          y.data<T>()[(plane * ph + oh) * pw + ow] = best;
          argmax.data<int32_t>()[(plane * ph + oh) * pw + ow] = int32_t(best_index);
        }
      }
    }
  });
}

void max_pool2d_backward(const Tensor& dy, const Tensor& argmax, const Tensor& dx) {
  visit_floating(dy.dtype(), [&](auto zero) {
    using T = decltype(zero);
    const int64_t planes = dx.size(0) * dx.size(1), hw = dx.size(2) * dx.size(3);
    const int64_t out_hw = dy.size(2) * dy.size(3);
    const T* pdy = dy.data<T>();
    const int32_t* pidx = argmax.data<int32_t>();
    T* pdx = dx.data<T>();
    parallel_ranges(planes, std::max<int64_t>(1, 32768 / hw), [&](int64_t plane0, int64_t plane1) {
      std::memset(pdx + plane0 * hw, 0, size_t((plane1 - plane0) * hw) * sizeof(T));
      for (int64_t plane = plane0; plane < plane1; ++plane) {
        for (int64_t o = 0; o < out_hw; ++o) {
          const int32_t i = pidx[plane * out_hw + o];
          if (i >= 0) pdx[plane * hw + i] += pdy[plane * out_hw + o];
        }
      }
    });
  });
}

}  // namespace thaw::cpu
