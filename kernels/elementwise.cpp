// Checked entry points of the elementwise ops add, add_, mul, scale, fill_ (kernels/ops.h); the twins are
// cpu/elementwise.cpp and cuda/elementwise.cu.
#include "kernels/check.h"

namespace thaw::ops {

using detail::check_float;
using detail::check_same;

namespace {
void check_pair(const Tensor& a, const Tensor& b, const char* op) {
  check_float(a, op, "a");
  check_float(b, op, "b");
  check_same(a, "a", {{&b, "b"}}, op);
  THAW_CHECK(a.shape() == b.shape(), "{}: shapes differ: a {} and b {}", op, a.desc(), b.desc());
}
}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  check_pair(a, b, "add");
  Tensor y = Tensor::empty(a.shape(), a.dtype(), a.device());
  THAW_RUN(a.device(), add, a, b, y);
  return y;
}

void add_(const Tensor& y, const Tensor& x, double alpha) {
  check_pair(y, x, "add_");
  THAW_RUN(y.device(), add_, y, x, alpha);
}

Tensor mul(const Tensor& a, const Tensor& b) {
  check_pair(a, b, "mul");
  Tensor y = Tensor::empty(a.shape(), a.dtype(), a.device());
  THAW_RUN(a.device(), mul, a, b, y);
  return y;
}

Tensor scale(const Tensor& x, double alpha) {
  check_float(x, "scale", "x");
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  THAW_RUN(x.device(), scale, x, alpha, y);
  return y;
}

void fill_(const Tensor& y, double value) {
  check_float(y, "fill_", "y");
  THAW_RUN(y.device(), fill_, y, value);
}

}  // namespace thaw::ops
