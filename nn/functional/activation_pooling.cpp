// relu, max_pool2d and adaptive_avg_pool2d_1 with autograd.
#include "nn/autograd_nodes.h"
#include "nn/functional.h"

namespace thaw::nn::functional {

namespace {

class ReluBackward : public FunctionNode {
 public:
  explicit ReluBackward(Tensor y) : FunctionNode("ReluBackward"), y_(std::move(y)) {}

 protected:
  std::vector<Tensor> backward(const Tensor& dy) override { return {ops::relu_backward(dy, y_)}; }
  void release() override { y_ = Tensor(); }

 private:
  Tensor y_;  // the output: its sign is the mask
};

class MaxPool2dBackward : public FunctionNode {
 public:
  MaxPool2dBackward(Tensor argmax, Shape x_shape)
      : FunctionNode("MaxPool2dBackward"), argmax_(std::move(argmax)), x_shape_(std::move(x_shape)) {}

 protected:
  std::vector<Tensor> backward(const Tensor& dy) override {
    return {ops::maxpool2d_backward(dy, argmax_, x_shape_)};
  }
  void release() override { argmax_ = Tensor(); }

 private:
  Tensor argmax_;
  Shape x_shape_;
};

class GlobalAvgPoolBackward : public FunctionNode {
 public:
  explicit GlobalAvgPoolBackward(Shape x_shape)
      : FunctionNode("GlobalAvgPoolBackward"), x_shape_(std::move(x_shape)) {}

 protected:
  std::vector<Tensor> backward(const Tensor& dy) override {
    return {ops::global_avgpool_backward(dy, x_shape_)};
  }
  void release() override {}

 private:
  Shape x_shape_;
};

}  // namespace

Tensor relu(const Tensor& x) {
  Tensor y = ops::relu_forward(x);
  if (should_record({&x})) record(y, std::make_shared<ReluBackward>(y.detach()), {&x});
  return y;
}

Tensor max_pool2d(const Tensor& x, const ops::Pool2dParams& params) {
  ops::MaxPoolForward f = ops::maxpool2d_forward(x, params);
  if (should_record({&x})) record(f.y, std::make_shared<MaxPool2dBackward>(f.argmax, x.shape()), {&x});
  return f.y;
}

Tensor adaptive_avg_pool2d_1(const Tensor& x) {
  Tensor y = ops::global_avgpool_forward(x);
  if (should_record({&x})) record(y, std::make_shared<GlobalAvgPoolBackward>(x.shape()), {&x});
  return y;
}

}  // namespace thaw::nn::functional
