// Checked entry points of batch_norm (kernels/ops.h); the twins are cpu/batch_norm.cpp and
// cuda/batch_norm.cu.
#include "kernels/check.h"

namespace thaw::ops {

namespace detail {

namespace {
void check_input(const Tensor& x, const char* op) {
  check_float(x, op, "x");
  THAW_CHECK(x.dim() == 2 || x.dim() == 4, "{}: x must be (N, C, H, W) or (N, C), got {}", op, x.desc());
  check_nonempty(x, op, "x");
}
}  // namespace

void check_batch_norm_forward(const char* op, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                              const Tensor& running_mean, const Tensor& running_var, bool use_batch_stats,
                              double momentum, double eps) {
  check_input(x, op);
  const Shape channels{x.size(1)};
  check_shape(gamma, channels, op, "gamma");
  check_shape(beta, channels, op, "beta");
  THAW_CHECK(running_mean.defined() == running_var.defined(),
             "{}: give both running_mean and running_var, or neither", op);
  if (running_mean.defined()) {
    check_shape(running_mean, channels, op, "running_mean");
    check_shape(running_var, channels, op, "running_var");
  }
  check_same(
      x, "x",
      {{&gamma, "gamma"}, {&beta, "beta"}, {&running_mean, "running_mean"}, {&running_var, "running_var"}},
      op);
  THAW_CHECK(use_batch_stats || running_mean.defined(), "{}: normalising with running statistics needs them",
             op);
  THAW_CHECK(eps > 0 && momentum >= 0 && momentum <= 1,
             "{}: need eps > 0 and momentum in [0, 1] (eps {}, momentum {})", op, eps, momentum);
  if (use_batch_stats) {
    THAW_CHECK(
        x.numel() / x.size(1) > 1,
        "{}: batch statistics need more than one value per channel, got x {} (batch of one 1x1 image?)", op,
        x.desc());
  }
}

void check_batch_norm_backward(const char* op, const Tensor& dy, const Tensor& x, const Tensor& gamma,
                               const Tensor& mean, const Tensor& invstd) {
  check_input(x, op);
  check_shape(dy, x.shape(), op, "dy");
  const Shape channels{x.size(1)};
  check_shape(gamma, channels, op, "gamma");
  check_shape(mean, channels, op, "mean");
  check_shape(invstd, channels, op, "invstd");
  check_same(x, "x", {{&dy, "dy"}, {&gamma, "gamma"}, {&mean, "mean"}, {&invstd, "invstd"}}, op);
}

}  // namespace detail

BatchNormForward batch_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                    const Tensor& running_mean, const Tensor& running_var,
                                    bool use_batch_stats, double momentum, double eps) {
  detail::check_batch_norm_forward("batch_norm_forward", x, gamma, beta, running_mean, running_var,
                                   use_batch_stats, momentum, eps);
  const Shape channels{x.size(1)};
  BatchNormForward out{Tensor::empty(x.shape(), x.dtype(), x.device()),
                       Tensor::empty(channels, x.dtype(), x.device()),
                       Tensor::empty(channels, x.dtype(), x.device())};
  THAW_RUN(x.device(), batch_norm_forward, x, gamma, beta, running_mean, running_var, use_batch_stats,
           momentum, eps, out.y, out.mean, out.invstd);
  return out;
}

BatchNormBackward batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma,
                                      const Tensor& mean, const Tensor& invstd, bool used_batch_stats,
                                      bool need_dx, bool need_affine) {
  detail::check_batch_norm_backward("batch_norm_backward", dy, x, gamma, mean, invstd);
  const Shape channels{x.size(1)};
  const bool sums = need_affine || used_batch_stats;  // with batch statistics dx needs them too
  BatchNormBackward out{need_dx ? Tensor::empty(x.shape(), x.dtype(), x.device()) : Tensor(),
                        sums ? Tensor::empty(channels, x.dtype(), x.device()) : Tensor(),
                        sums ? Tensor::empty(channels, x.dtype(), x.device()) : Tensor()};
  THAW_RUN(x.device(), batch_norm_backward, dy, x, gamma, mean, invstd, used_batch_stats, out.dx, out.dgamma,
           out.dbeta);
  return out;
}

}  // namespace thaw::ops
