// Checked entry points of the elementwise ops and reductions (kernels/ops.h).
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

Tensor sum(const Tensor& x) {
  check_float(x, "sum", "x");
  Tensor y = Tensor::empty({}, x.dtype(), x.device());
  THAW_RUN(x.device(), sum, x, y);
  return y;
}

Tensor sum_to_channels(const Tensor& dy) {
  check_float(dy, "sum_to_channels", "dy");
  THAW_CHECK(dy.dim() >= 2, "sum_to_channels: dy must be (N, C, ...), got {}", dy.desc());
  detail::check_nonempty(dy, "sum_to_channels", "dy");
  Tensor db = Tensor::empty({dy.size(1)}, dy.dtype(), dy.device());
  THAW_RUN(dy.device(), sum_to_channels, dy, db);
  return db;
}

}  // namespace thaw::ops
