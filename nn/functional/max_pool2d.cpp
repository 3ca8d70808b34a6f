// max_pool2d with autograd; the backward routes each gradient to its window's argmax
// (kernels/max_pool2d.cpp).
#include "nn/autograd_nodes.h"
#include "nn/functional.h"

namespace thaw::nn::functional {

namespace {

class MaxPool2dBackward : public FunctionNode {
 public:
  MaxPool2dBackward(Tensor argmax, Shape x_shape)
      : FunctionNode("MaxPool2dBackward"), argmax_(std::move(argmax)), x_shape_(std::move(x_shape)) {}

 protected:
  std::vector<Tensor> backward(const Tensor& dy) override {
    return {ops::max_pool2d_backward(dy, argmax_, x_shape_)};
  }
  void release() override { argmax_ = Tensor(); }

 private:
  Tensor argmax_;
  Shape x_shape_;
};

}  // namespace

Tensor max_pool2d(const Tensor& x, const ops::Pool2dParams& params) {
  ops::MaxPoolForward f = ops::max_pool2d_forward(x, params);
  if (should_record({&x})) record(f.y, std::make_shared<MaxPool2dBackward>(f.argmax, x.shape()), {&x});
  return f.y;
}

}  // namespace thaw::nn::functional
