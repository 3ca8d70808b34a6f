// sum with autograd: a 0-d total of every element (kernels/reduce.cpp).
#include "nn/autograd_nodes.h"
#include "nn/functional.h"

namespace thaw::nn::functional {

namespace {

class SumBackward : public FunctionNode {
 public:
  explicit SumBackward(Tensor x_like)
      : FunctionNode("SumBackward"), shape_(x_like.shape()), device_(x_like.device()) {}

 protected:
  std::vector<Tensor> backward(const Tensor& dy) override {
    Tensor dx = Tensor::empty(shape_, dy.dtype(), device_);
    ops::fill_(dx, dy.item());  // one scalar read back: sum() is a test and debugging op
    return {dx};
  }
  void release() override {}

 private:
  Shape shape_;
  Device device_;
};

}  // namespace

Tensor sum(const Tensor& x) {
  Tensor y = ops::sum(x);
  if (should_record({&x})) record(y, std::make_shared<SumBackward>(x), {&x});
  return y;
}

}  // namespace thaw::nn::functional
