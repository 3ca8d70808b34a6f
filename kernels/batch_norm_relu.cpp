// Checked entry points of batch_norm_relu (kernels/ops.h): batch_norm2d then relu, fused. The CPU twin is
// cpu/batch_norm_relu.cpp; on CUDA, until it has a twin, the two separate ops run (same results).
#include "kernels/check.h"

namespace thaw::ops {

BatchNormForward batch_norm_relu_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                         const Tensor& running_mean, const Tensor& running_var,
                                         bool use_batch_stats, double momentum, double eps) {
  if (!x.device().is_cpu()) {
    BatchNormForward f =
        batch_norm_forward(x, gamma, beta, running_mean, running_var, use_batch_stats, momentum, eps);
    f.y = relu_forward(f.y);
    return f;
  }
  // The checks of batch_norm_forward (kernels/batch_norm.cpp), under this op's name.
  const char* op = "batch_norm_relu_forward";
  detail::check_float(x, op, "x");
  THAW_CHECK(x.dim() == 2 || x.dim() == 4, "{}: x must be (N, C, H, W) or (N, C), got {}", op, x.desc());
  detail::check_nonempty(x, op, "x");
  const Shape channels{x.size(1)};
  detail::check_shape(gamma, channels, op, "gamma");
  detail::check_shape(beta, channels, op, "beta");
  THAW_CHECK(running_mean.defined() == running_var.defined(),
             "{}: give both running_mean and running_var, or neither", op);
  if (running_mean.defined()) {
    detail::check_shape(running_mean, channels, op, "running_mean");
    detail::check_shape(running_var, channels, op, "running_var");
  }
  detail::check_same(
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
  BatchNormForward out{Tensor::empty(x.shape(), x.dtype(), x.device()),
                       Tensor::empty(channels, x.dtype(), x.device()),
                       Tensor::empty(channels, x.dtype(), x.device())};
  cpu::batch_norm_relu_forward(x, gamma, beta, running_mean, running_var, use_batch_stats, momentum, eps,
                               out.y, out.mean, out.invstd);
  return out;
}

BatchNormBackward batch_norm_relu_backward(const Tensor& dy, const Tensor& y, const Tensor& x,
                                           const Tensor& gamma, const Tensor& mean, const Tensor& invstd,
                                           bool used_batch_stats, bool need_dx) {
  if (!x.device().is_cpu())
    return batch_norm_backward(relu_backward(dy, y), x, gamma, mean, invstd, used_batch_stats, need_dx);
  const char* op = "batch_norm_relu_backward";
  detail::check_float(x, op, "x");
  THAW_CHECK(x.dim() == 2 || x.dim() == 4, "{}: x must be (N, C, H, W) or (N, C), got {}", op, x.desc());
  detail::check_nonempty(x, op, "x");
  detail::check_float(dy, op, "dy");
  detail::check_shape(dy, x.shape(), op, "dy");
  detail::check_shape(y, x.shape(), op, "y");
  const Shape channels{x.size(1)};
  detail::check_shape(gamma, channels, op, "gamma");
  detail::check_shape(mean, channels, op, "mean");
  detail::check_shape(invstd, channels, op, "invstd");
  detail::check_same(x, "x",
                     {{&dy, "dy"}, {&y, "y"}, {&gamma, "gamma"}, {&mean, "mean"}, {&invstd, "invstd"}}, op);
  BatchNormBackward out{need_dx ? Tensor::empty(x.shape(), x.dtype(), x.device()) : Tensor(),
                        Tensor::empty(channels, x.dtype(), x.device()),
                        Tensor::empty(channels, x.dtype(), x.device())};
  cpu::batch_norm_relu_backward(dy, y, x, gamma, mean, invstd, used_batch_stats, out.dx, out.dgamma,
                                out.dbeta);
  return out;
}

}  // namespace thaw::ops
