// Checked entry points of relu (kernels/ops.h); the twins are cpu/relu.cpp and cuda/relu.cu.
#include "kernels/check.h"

namespace thaw::ops {

Tensor relu_forward(const Tensor& x) {
  detail::check_float(x, "relu_forward", "x");
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  THAW_RUN(x.device(), relu_forward, x, y);
  return y;
}

Tensor relu_backward(const Tensor& dy, const Tensor& y) {
  detail::check_float(dy, "relu_backward", "dy");
  detail::check_shape(y, dy.shape(), "relu_backward", "y");
  detail::check_same(dy, "dy", {{&y, "y"}}, "relu_backward");
  Tensor dx = Tensor::empty(dy.shape(), dy.dtype(), dy.device());
  THAW_RUN(dy.device(), relu_backward, dy, y, dx);
  return dx;
}

}  // namespace thaw::ops
