// Checked entry points of linear (kernels/ops.h); the twins are cpu/linear.cpp and cuda/linear.cu (cuBLAS).
#include "kernels/check.h"

namespace thaw::ops {

Tensor linear_forward(const Tensor& x, const Tensor& w, const Tensor& b) {
  const char* op = "linear_forward";
  detail::check_float(x, op, "x", 2);
  detail::check_float(w, op, "w", 2);
  detail::check_same(x, "x", {{&w, "w"}, {&b, "b"}}, op);
  THAW_CHECK(x.size(1) == w.size(1), "{}: x {} has {} features but w {} expects {}", op, x.desc(), x.size(1),
             w.desc(), w.size(1));
  if (b.defined()) detail::check_shape(b, {w.size(0)}, op, "b");
  detail::check_nonempty(x, op, "x");
  Tensor y = Tensor::empty({x.size(0), w.size(0)}, x.dtype(), x.device());
  THAW_RUN(x.device(), linear_forward, x, w, b, y);
  return y;
}

Tensor linear_backward_data(const Tensor& dy, const Tensor& w) {
  const char* op = "linear_backward_data";
  detail::check_float(dy, op, "dy", 2);
  detail::check_float(w, op, "w", 2);
  detail::check_same(dy, "dy", {{&w, "w"}}, op);
  THAW_CHECK(dy.size(1) == w.size(0), "{}: dy {} does not match w {}", op, dy.desc(), w.desc());
  Tensor dx = Tensor::empty({dy.size(0), w.size(1)}, dy.dtype(), dy.device());
  THAW_RUN(dy.device(), linear_backward_data, dy, w, dx);
  return dx;
}

Tensor linear_backward_weight(const Tensor& dy, const Tensor& x) {
  const char* op = "linear_backward_weight";
  detail::check_float(dy, op, "dy", 2);
  detail::check_float(x, op, "x", 2);
  detail::check_same(dy, "dy", {{&x, "x"}}, op);
  THAW_CHECK(dy.size(0) == x.size(0), "{}: dy {} and x {} have different batch sizes", op, dy.desc(),
             x.desc());
  Tensor dw = Tensor::empty({dy.size(1), x.size(1)}, dy.dtype(), dy.device());
  THAW_RUN(dy.device(), linear_backward_weight, dy, x, dw);
  return dw;
}

}  // namespace thaw::ops
