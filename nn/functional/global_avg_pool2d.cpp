// global_avg_pool2d with autograd: (N, C, H, W) -> (N, C, 1, 1), AdaptiveAvgPool2d(1)
// (kernels/global_avg_pool2d.cpp).
#include "nn/autograd_nodes.h"
#include "nn/functional.h"

namespace thaw::nn::functional {

namespace {

class GlobalAvgPoolBackward : public FunctionNode {
 public:
  explicit GlobalAvgPoolBackward(Shape x_shape)
      : FunctionNode("GlobalAvgPoolBackward"), x_shape_(std::move(x_shape)) {}

 protected:
  std::vector<Tensor> backward(const Tensor& dy) override {
    return {ops::global_avg_pool2d_backward(dy, x_shape_)};
  }
  void release() override {}

 private:
  Shape x_shape_;
};

}  // namespace

Tensor global_avg_pool2d(const Tensor& x) {
  Tensor y = ops::global_avg_pool2d_forward(x);
  if (should_record({&x})) record(y, std::make_shared<GlobalAvgPoolBackward>(x.shape()), {&x});
  return y;
}

}  // namespace thaw::nn::functional
