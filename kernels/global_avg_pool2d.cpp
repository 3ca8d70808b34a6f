// Checked entry points of global_avg_pool2d (kernels/ops.h); the twins are cpu/global_avg_pool2d.cpp and
// cuda/global_avg_pool2d.cu.
#include "kernels/check.h"

namespace thaw::ops {

Tensor global_avg_pool2d_forward(const Tensor& x) {
  detail::check_float(x, "global_avg_pool2d_forward", "x", 4);
  detail::check_nonempty(x, "global_avg_pool2d_forward", "x");
  Tensor y = Tensor::empty({x.size(0), x.size(1), 1, 1}, x.dtype(), x.device());
  THAW_RUN(x.device(), global_avg_pool2d_forward, x, y);
  return y;
}

Tensor global_avg_pool2d_backward(const Tensor& dy, const Shape& x_shape) {
  const char* op = "global_avg_pool2d_backward";
  detail::check_float(dy, op, "dy", 4);
  THAW_CHECK(x_shape.size() == 4 && shape_numel(x_shape) > 0, "{}: x shape {} must be 4-D and non-empty", op,
             shape_str(x_shape));
  detail::check_shape(dy, {x_shape[0], x_shape[1], 1, 1}, op, "dy");
  Tensor dx = Tensor::empty(x_shape, dy.dtype(), dy.device());
  THAW_RUN(dy.device(), global_avg_pool2d_backward, dy, dx);
  return dx;
}

}  // namespace thaw::ops
