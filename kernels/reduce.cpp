// Checked entry points of the reductions sum and sum_to_channels (kernels/ops.h); the twins are
// cpu/reduce.cpp and cuda/reduce.cu.
#include "kernels/check.h"

namespace thaw::ops {

using detail::check_float;

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
