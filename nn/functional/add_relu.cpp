// add_relu with autograd: y = relu(a + b), the residual join of a ResNet block, in one pass
// (kernels/add_relu.cpp). The backward masks dy by y > 0 once (relu_backward) and hands the result to both
// inputs, as add's backward hands on relu's gradient: the same values as add then relu, with one pass over
// the activation fewer in the forward and one tensor (the sum) fewer alive.
#include "nn/autograd_nodes.h"
#include "nn/functional.h"

namespace thaw::nn::functional {

namespace {

class AddReluBackward : public FunctionNode {
 public:
  explicit AddReluBackward(Tensor y) : FunctionNode("AddReluBackward"), y_(std::move(y)) {}

 protected:
  std::vector<Tensor> backward(const Tensor& dy) override {
    const Tensor masked = ops::relu_backward(dy, y_);
    return {masked, masked};
  }
  void release() override { y_ = Tensor(); }

 private:
  Tensor y_;  // the output: its sign is the mask
};

}  // namespace

Tensor add_relu(const Tensor& a, const Tensor& b) {
  Tensor y = ops::add_relu_forward(a, b);
  if (should_record({&a, &b})) record(y, std::make_shared<AddReluBackward>(y.detach()), {&a, &b});
  return y;
}

}  // namespace thaw::nn::functional
