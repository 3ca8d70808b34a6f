// add, mul, scale, reshape and flatten with autograd (kernels/elementwise.cpp; reshape is a view).
#include "core/error.h"
#include "nn/autograd_nodes.h"
#include "nn/functional.h"

namespace thaw::nn::functional {

namespace {

class AddBackward : public FunctionNode {
 public:
  AddBackward() : FunctionNode("AddBackward") {}

 protected:
  std::vector<Tensor> backward(const Tensor& dy) override { return {dy, dy}; }
  void release() override {}
};

class MulBackward : public FunctionNode {
 public:
  MulBackward(Tensor a, Tensor b) : FunctionNode("MulBackward"), a_(std::move(a)), b_(std::move(b)) {}

 protected:
  std::vector<Tensor> backward(const Tensor& dy) override {
    return {needs_grad(0) ? ops::mul(dy, b_) : Tensor(), needs_grad(1) ? ops::mul(dy, a_) : Tensor()};
  }
  void release() override { a_ = b_ = Tensor(); }

 private:
  Tensor a_, b_;
};

class ScaleBackward : public FunctionNode {
 public:
  explicit ScaleBackward(double alpha) : FunctionNode("ScaleBackward"), alpha_(alpha) {}

 protected:
  std::vector<Tensor> backward(const Tensor& dy) override { return {ops::scale(dy, alpha_)}; }
  void release() override {}

 private:
  double alpha_;
};

class ReshapeBackward : public FunctionNode {
 public:
  explicit ReshapeBackward(Shape x_shape) : FunctionNode("ReshapeBackward"), x_shape_(std::move(x_shape)) {}

 protected:
  std::vector<Tensor> backward(const Tensor& dy) override { return {dy.reshape(x_shape_)}; }
  void release() override {}

 private:
  Shape x_shape_;
};

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor y = ops::add(a, b);
  if (should_record({&a, &b})) record(y, std::make_shared<AddBackward>(), {&a, &b});
  return y;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor y = ops::mul(a, b);
  if (should_record({&a, &b})) {
    record(y,
           std::make_shared<MulBackward>(b.requires_grad() ? a.detach() : Tensor(),
                                         a.requires_grad() ? b.detach() : Tensor()),
           {&a, &b});
  }
  return y;
}

Tensor scale(const Tensor& x, double alpha) {
  Tensor y = ops::scale(x, alpha);
  if (should_record({&x})) record(y, std::make_shared<ScaleBackward>(alpha), {&x});
  return y;
}

Tensor reshape(const Tensor& x, const Shape& shape) {
  Tensor y = x.reshape(shape);
  if (should_record({&x})) record(y, std::make_shared<ReshapeBackward>(x.shape()), {&x});
  return y;
}

Tensor flatten(const Tensor& x) {
  THAW_CHECK(x.dim() >= 1, "flatten: needs at least one dimension, got {}", x.desc());
  return reshape(x, {x.size(0), -1});
}

}  // namespace thaw::nn::functional
