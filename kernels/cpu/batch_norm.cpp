// batch_norm2d on the CPU. One channel per loop iteration; statistics in double, two passes (mean, then the
// sum of squared deviations) so that large means do not cancel the variance.
#include <cmath>

#include "kernels/cpu/cpu_ops.h"

namespace thaw::cpu {

namespace {

struct Layout {
  int64_t n, c, inner;  // x viewed as (N, C, inner)
  explicit Layout(const Tensor& x) : n(x.size(0)), c(x.size(1)), inner(x.numel() / (x.size(0) * x.size(1))) {}
  int64_t count() const { return n * inner; }  // M: values per channel
};

template <typename T>
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
#pragma omp parallel for if (x.numel() > 32768)
  for (int64_t c = 0; c < L.c; ++c) {
    double mean, var;
    if (use_batch_stats) {
      double total = 0;
      for (int64_t n = 0; n < L.n; ++n) {
        const T* plane = px + (n * L.c + c) * L.inner;
        for (int64_t i = 0; i < L.inner; ++i)
          total += double(plane[i]);
      }
      mean = total / m;
      double squares = 0;
      for (int64_t n = 0; n < L.n; ++n) {
        const T* plane = px + (n * L.c + c) * L.inner;
        for (int64_t i = 0; i < L.inner; ++i) {
          const double d = double(plane[i]) - mean;
          squares += d * d;
        }
      }
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
      const T* in = px + (n * L.c + c) * L.inner;
      T* out = py + (n * L.c + c) * L.inner;
      for (int64_t i = 0; i < L.inner; ++i)
        out[i] = T(double(in[i]) * a + b);
    }
  }
}

// xhat = (x - mean) invstd;  dbeta = sum dy;  dgamma = sum dy xhat;
// batch statistics:   dx = gamma invstd / M * (M dy - dbeta - xhat dgamma)
// running statistics: dx = gamma invstd dy
template <typename T>
void backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const Tensor& mean,
              const Tensor& invstd, bool used_batch_stats, const Tensor& dx, const Tensor& dgamma,
              const Tensor& dbeta) {
  const Layout L(x);
  const T *pdy = dy.data<T>(), *px = x.data<T>(), *pg = gamma.data<T>();
  const T *pmean = mean.data<T>(), *pinvstd = invstd.data<T>();
  T* pdx = dx.defined() ? dx.data<T>() : nullptr;
  T *pdg = dgamma.data<T>(), *pdb = dbeta.data<T>();
  const double m = double(L.count());
#pragma omp parallel for if (x.numel() > 32768)
  for (int64_t c = 0; c < L.c; ++c) {
    const double mu = double(pmean[c]), is = double(pinvstd[c]);
    double sum_dy = 0, sum_dy_xhat = 0;
    for (int64_t n = 0; n < L.n; ++n) {
      const T* g = pdy + (n * L.c + c) * L.inner;
      const T* in = px + (n * L.c + c) * L.inner;
      for (int64_t i = 0; i < L.inner; ++i) {
        sum_dy += double(g[i]);
        sum_dy_xhat += double(g[i]) * (double(in[i]) - mu) * is;
      }
    }
    pdb[c] = T(sum_dy);
    pdg[c] = T(sum_dy_xhat);
    if (!pdx) continue;
    const double scale = double(pg[c]) * is;
    for (int64_t n = 0; n < L.n; ++n) {
      const T* g = pdy + (n * L.c + c) * L.inner;
      const T* in = px + (n * L.c + c) * L.inner;
      T* out = pdx + (n * L.c + c) * L.inner;
      if (used_batch_stats) {
        for (int64_t i = 0; i < L.inner; ++i) {
          const double xhat = (double(in[i]) - mu) * is;
          out[i] = T(scale * (double(g[i]) - sum_dy / m - xhat * sum_dy_xhat / m));
        }
      } else {
        for (int64_t i = 0; i < L.inner; ++i)
          out[i] = T(scale * double(g[i]));
      }
    }
  }
}

}  // namespace

void batch_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                        const Tensor& running_var, bool use_batch_stats, double momentum, double eps,
                        const Tensor& y, const Tensor& mean, const Tensor& invstd) {
  visit_floating(x.dtype(), [&](auto zero) {
    forward<decltype(zero)>(x, gamma, beta, running_mean, running_var, use_batch_stats, momentum, eps, y,
                            mean, invstd);
  });
}

void batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const Tensor& mean,
                         const Tensor& invstd, bool used_batch_stats, const Tensor& dx, const Tensor& dgamma,
                         const Tensor& dbeta) {
  visit_floating(x.dtype(), [&](auto zero) {
    backward<decltype(zero)>(dy, x, gamma, mean, invstd, used_batch_stats, dx, dgamma, dbeta);
  });
}

}  // namespace thaw::cpu
