// Checked entry points of batch_norm_relu (kernels/ops.h): batch_norm2d then relu, fused. The twins are
// cpu/batch_norm_relu.cpp and cuda/batch_norm.cu (which shares its kernels with batch_norm).
#include "kernels/check.h"

namespace thaw::ops {

BatchNormForward batch_norm_relu_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                         const Tensor& running_mean, const Tensor& running_var,
                                         bool use_batch_stats, double momentum, double eps) {
  detail::check_batch_norm_forward("batch_norm_relu_forward", x, gamma, beta, running_mean, running_var,
                                   use_batch_stats, momentum, eps);
  const Shape channels{x.size(1)};
  BatchNormForward out{Tensor::empty(x.shape(), x.dtype(), x.device()),
                       Tensor::empty(channels, x.dtype(), x.device()),
                       Tensor::empty(channels, x.dtype(), x.device())};
  THAW_RUN(x.device(), batch_norm_relu_forward, x, gamma, beta, running_mean, running_var, use_batch_stats,
           momentum, eps, out.y, out.mean, out.invstd);
  return out;
}

BatchNormBackward batch_norm_relu_backward(const Tensor& dy, const Tensor& y, const Tensor& x,
                                           const Tensor& gamma, const Tensor& mean, const Tensor& invstd,
                                           bool used_batch_stats, bool need_dx, bool need_affine) {
  const char* op = "batch_norm_relu_backward";
  detail::check_batch_norm_backward(op, dy, x, gamma, mean, invstd);
  detail::check_shape(y, x.shape(), op, "y");
  detail::check_same(x, "x", {{&y, "y"}}, op);
  const Shape channels{x.size(1)};
  const bool sums = need_affine || used_batch_stats;  // as in batch_norm_backward
  BatchNormBackward out{need_dx ? Tensor::empty(x.shape(), x.dtype(), x.device()) : Tensor(),
                        sums ? Tensor::empty(channels, x.dtype(), x.device()) : Tensor(),
                        sums ? Tensor::empty(channels, x.dtype(), x.device()) : Tensor()};
  THAW_RUN(x.device(), batch_norm_relu_backward, dy, y, x, gamma, mean, invstd, used_batch_stats, out.dx,
           out.dgamma, out.dbeta);
  return out;
}

}  // namespace thaw::ops
