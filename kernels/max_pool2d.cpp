// Checked entry points of max_pool2d (kernels/ops.h); the twins are cpu/max_pool2d.cpp and
// cuda/max_pool2d.cu.
#include "kernels/check.h"

namespace thaw::ops {

MaxPoolForward max_pool2d_forward(const Tensor& x, const Pool2dParams& p) {
  const char* op = "max_pool2d_forward";
  detail::check_float(x, op, "x", 4);
  detail::check_nonempty(x, op, "x");
  THAW_CHECK(p.kernel_h >= 1 && p.kernel_w >= 1 && p.stride_h >= 1 && p.stride_w >= 1,
             "{}: kernel and stride must be >= 1 (kernel {}x{}, stride {}x{})", op, p.kernel_h, p.kernel_w,
             p.stride_h, p.stride_w);
  THAW_CHECK(p.pad_h >= 0 && p.pad_w >= 0 && 2 * p.pad_h <= p.kernel_h && 2 * p.pad_w <= p.kernel_w,
             "{}: padding {}x{} must be between 0 and half the kernel {}x{}", op, p.pad_h, p.pad_w,
             p.kernel_h, p.kernel_w);
  const int64_t hp = x.size(2) + 2 * p.pad_h - p.kernel_h, wp = x.size(3) + 2 * p.pad_w - p.kernel_w;
  THAW_CHECK(hp >= 0 && wp >= 0, "{}: kernel {}x{} is larger than the padded input of {}", op, p.kernel_h,
             p.kernel_w, x.desc());
  THAW_CHECK(x.size(2) * x.size(3) <= INT32_MAX, "{}: input planes larger than 2^31 elements", op);
  const Shape y_shape{x.size(0), x.size(1), hp / p.stride_h + 1, wp / p.stride_w + 1};
  MaxPoolForward out{Tensor::empty(y_shape, x.dtype(), x.device()),
                     Tensor::empty(y_shape, DType::Int32, x.device())};
  THAW_RUN(x.device(), max_pool2d_forward, x, p, out.y, out.argmax);
  return out;
}

Tensor max_pool2d_backward(const Tensor& dy, const Tensor& argmax, const Shape& x_shape) {
  const char* op = "max_pool2d_backward";
  detail::check_float(dy, op, "dy", 4);
  THAW_CHECK(argmax.defined() && argmax.dtype() == DType::Int32 && argmax.device() == dy.device(),
             "{}: argmax must be int32 on {}, got {}", op, dy.device().str(), argmax.desc());
  detail::check_shape(argmax, dy.shape(), op, "argmax");
  THAW_CHECK(x_shape.size() == 4 && x_shape[0] == dy.size(0) && x_shape[1] == dy.size(1),
             "{}: x shape {} does not match dy {}", op, shape_str(x_shape), dy.desc());
  Tensor dx = Tensor::empty(x_shape, dy.dtype(), dy.device());
  THAW_RUN(dy.device(), max_pool2d_backward, dy, argmax, dx);
  return dx;
}

}  // namespace thaw::ops
