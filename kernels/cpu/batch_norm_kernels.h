// The loops of batch_norm2d on the CPU, shared by cpu/batch_norm.cpp (batch_norm_forward / _backward) and
// cpu/batch_norm_relu.cpp (the same with a relu fused on the output: batch_norm_relu_forward / _backward).
//
// One channel at a time, channels in parallel (kernels/cpu/parallel.h): a channel's statistics are summed by
// one task, so they do not depend on the thread count. Sums are in double, two passes for the variance (the
// mean, then the squared deviations) so that a large mean does not cancel it, each in kLanes partial sums
// (LaneSum below).
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "core/tensor.h"
#include "kernels/cpu/parallel.h"

namespace thaw::cpu::bn {

struct Layout {
  int64_t n, c, inner;  // x viewed as (N, C, inner)
  explicit Layout(const Tensor& x) : n(x.size(0)), c(x.size(1)), inner(x.numel() / (x.size(0) * x.size(1))) {}
  int64_t count() const { return n * inner; }  // M: values per channel
};

inline constexpr int kLanes = 8;

// d where y > 0, else +0: relu_backward's value, bit for bit, as a select on the bits (no branch, so the
// loops that use it vectorise).
template <typename T>
inline T relu_masked(T d, T y) {
  using Bits = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  const Bits keep = Bits(0) - Bits(y > T(0));
  return std::bit_cast<T>(Bits(std::bit_cast<Bits>(d) & keep));
}

// Lane sums: value i of a plane goes to lane i % kLanes; the lanes are added pairwise at the end. The same
// order on every machine, and kLanes independent additions per step instead of one long dependency chain.
struct LaneSum {
  double lane[kLanes] = {};
  double total() const {
    return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
  }
};

// Adds term(i) for i in [0, count) to the lanes.
template <typename Term>
inline void add_lanes(LaneSum& s, int64_t count, Term term) {
  int64_t i = 0;
  for (; i + kLanes <= count; i += kLanes)
    for (int j = 0; j < kLanes; ++j)
      s.lane[j] += term(i + j);
  for (; i < count; ++i)
    s.lane[i % kLanes] += term(i);
}

// Channels per task: about 32K values.
inline int64_t channel_grain(const Layout& L) {
  return std::max<int64_t>(1, 32768 / std::max<int64_t>(1, L.count()));
}

// y = (x - mean) invstd gamma + beta, then max(y, 0) if Relu. Statistics and running updates: kernels/ops.h.
template <typename T, bool Relu>
void forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
             const Tensor& running_var, bool use_batch_stats, double momentum, double eps, const Tensor& y,
             const Tensor& mean_out, const Tensor& invstd_out) {
  const Layout L(x);
  const T* px = x.data<T>();
  T* py = y.data<T>();
  const T *pg = gamma.data<T>(), *pb = beta.data<T>();
  T *pmean = mean_out.data<T>(), *pinvstd = invstd_out.data<T>();
  T* prm = running_mean.defined() ? running_mean.data<T>() : nullptr;
  T* prv = running_var.defined() ? running_var.data<T>() : nullptr;
  const double m = double(L.count());
  parallel_ranges(L.c, channel_grain(L), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      auto plane = [&](int64_t n) { return px + (n * L.c + c) * L.inner; };
      double mean, var;
      if (use_batch_stats) {
        LaneSum sum, sum_squares;
        for (int64_t n = 0; n < L.n; ++n) {
          const T* in = plane(n);
          add_lanes(sum, L.inner, [&](int64_t i) { return double(in[i]); });
        }
        mean = sum.total() / m;
        for (int64_t n = 0; n < L.n; ++n) {
          const T* in = plane(n);
          add_lanes(sum_squares, L.inner, [&](int64_t i) {
            const double d = double(in[i]) - mean;
            return d * d;
          });
        }
        const double squares = sum_squares.total();
        var = squares / m;  // biased: used to normalise
        if (prm) prm[c] = T((1 - momentum) * double(prm[c]) + momentum * mean);
        if (prv) prv[c] = T((1 - momentum) * double(prv[c]) + momentum * squares / (m - 1));  // unbiased
      } else {
        mean = double(prm[c]);
        var = double(prv[c]);
      }
      const double invstd = 1.0 / std::sqrt(var + eps);
      pmean[c] = T(mean);
      pinvstd[c] = T(invstd);
      // y = x * a + b with a = gamma invstd, b = beta - mean a
      const double a = double(pg[c]) * invstd, b = double(pb[c]) - mean * a;
      for (int64_t n = 0; n < L.n; ++n) {
        const T* in = plane(n);
        T* out = py + (n * L.c + c) * L.inner;
        for (int64_t i = 0; i < L.inner; ++i) {
          const T v = T(double(in[i]) * a + b);
          out[i] = Relu ? (v < T(0) ? T(0) : v) : v;  // relu as relu_forward: NaN stays NaN
        }
      }
    }
  });
}

// g = dy (Relu: dy where y > 0, else 0, with y the forward's output);  xhat = (x - mean) invstd;
// dbeta = sum g;  dgamma = sum g xhat;
// batch statistics:   dx = gamma invstd / M * (M g - dbeta - xhat dgamma)
// running statistics: dx = gamma invstd g
// dgamma and dbeta undefined (running statistics only): the sums are skipped.
template <typename T, bool Relu>
void backward(const Tensor& dy, const Tensor& y, const Tensor& x, const Tensor& gamma, const Tensor& mean,
              const Tensor& invstd, bool used_batch_stats, const Tensor& dx, const Tensor& dgamma,
              const Tensor& dbeta) {
  const Layout L(x);
  const T *pdy = dy.data<T>(), *px = x.data<T>(), *pg = gamma.data<T>();
  const T* py = Relu ? y.data<T>() : nullptr;
  const T *pmean = mean.data<T>(), *pinvstd = invstd.data<T>();
  T* pdx = dx.defined() ? dx.data<T>() : nullptr;
  T* pdg = dgamma.defined() ? dgamma.data<T>() : nullptr;
  T* pdb = dbeta.defined() ? dbeta.data<T>() : nullptr;
  const double m = double(L.count());
  parallel_ranges(L.c, channel_grain(L), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const double mu = double(pmean[c]), is = double(pinvstd[c]);
      // (n, c, i) is at offset(n) + i
      auto offset = [&](int64_t n) { return (n * L.c + c) * L.inner; };
      // g at value i of a plane: dy, masked by y > 0 when Relu.
      auto grad = [](const T* dyp, const T* yp, int64_t i) {
        if constexpr (Relu) {
          return relu_masked(dyp[i], yp[i]);
        } else {
          return dyp[i];
        }
      };
      LaneSum sum_g, sum_g_xhat;
      if (pdg) {
        for (int64_t n = 0; n < L.n; ++n) {
          const T *dyp = pdy + offset(n), *yp = Relu ? py + offset(n) : nullptr, *in = px + offset(n);
          add_lanes(sum_g, L.inner, [&](int64_t i) { return double(grad(dyp, yp, i)); });
          add_lanes(sum_g_xhat, L.inner,
                    [&](int64_t i) { return double(grad(dyp, yp, i)) * (double(in[i]) - mu) * is; });
        }
      }
      const double sum_dy = sum_g.total(), sum_dy_xhat = sum_g_xhat.total();
      if (pdg) pdb[c] = T(sum_dy), pdg[c] = T(sum_dy_xhat);
      if (!pdx) continue;
      const double scale = double(pg[c]) * is, mean_g = sum_dy / m, mean_g_xhat = sum_dy_xhat / m;
      for (int64_t n = 0; n < L.n; ++n) {
        const T *dyp = pdy + offset(n), *yp = Relu ? py + offset(n) : nullptr, *in = px + offset(n);
        T* out = pdx + offset(n);
        if (used_batch_stats) {
          for (int64_t i = 0; i < L.inner; ++i) {
            const double xhat = (double(in[i]) - mu) * is;
            out[i] = T(scale * (double(grad(dyp, yp, i)) - mean_g - xhat * mean_g_xhat));
          }
        } else {
          for (int64_t i = 0; i < L.inner; ++i)
            out[i] = T(scale * double(grad(dyp, yp, i)));
        }
      }
    }
  });
}

}  // namespace thaw::cpu::bn
