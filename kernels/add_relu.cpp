// Checked entry point of add_relu (kernels/ops.h): the residual join of a ResNet block, relu(a + b), in one
// pass. The twins are cpu/add_relu.cpp and cuda/add_relu.cu. Its backward is relu_backward (the sum's
// gradient goes to both inputs unchanged).
#include "kernels/check.h"

namespace thaw::ops {

Tensor add_relu_forward(const Tensor& a, const Tensor& b) {
  detail::check_float(a, "add_relu_forward", "a");
  detail::check_shape(b, a.shape(), "add_relu_forward", "b");
  detail::check_same(a, "a", {{&b, "b"}}, "add_relu_forward");
  Tensor y = Tensor::empty(a.shape(), a.dtype(), a.device());
  THAW_RUN(a.device(), add_relu_forward, a, b, y);
  return y;
}

}  // namespace thaw::ops
