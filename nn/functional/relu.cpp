// relu with autograd: y = max(x, 0); the backward masks dy by y > 0 (kernels/relu.cpp).
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

}  // namespace

Tensor relu(const Tensor& x) {
  Tensor y = ops::relu_forward(x);
  if (should_record({&x})) record(y, std::make_shared<ReluBackward>(y.detach()), {&x});
  return y;
}

}  // namespace thaw::nn::functional
