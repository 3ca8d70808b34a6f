// linear with autograd.
#include "nn/autograd_nodes.h"
#include "nn/functional.h"

namespace thaw::nn::functional {

namespace {

class LinearBackward : public FunctionNode {
 public:
  LinearBackward(Tensor x, Tensor w) : FunctionNode("LinearBackward"), x_(std::move(x)), w_(std::move(w)) {}

 protected:
  // inputs: x, w, b
  std::vector<Tensor> backward(const Tensor& dy) override {
    return {needs_grad(0) ? ops::linear_backward_data(dy, w_) : Tensor(),
            needs_grad(1) ? ops::linear_backward_weight(dy, x_) : Tensor(),
            needs_grad(2) ? ops::sum_to_channels(dy) : Tensor()};
  }
  void release() override { x_ = w_ = Tensor(); }

 private:
  Tensor x_, w_;  // x kept only when w needs a gradient, w only when x does
};

}  // namespace

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  Tensor y = ops::linear_forward(x, w, b);
  if (should_record({&x, &w, &b})) {
    record(y,
           std::make_shared<LinearBackward>(w.requires_grad() ? x.detach() : Tensor(),
                                            x.requires_grad() ? w.detach() : Tensor()),
           {&x, &w, &b});
  }
  return y;
}

}  // namespace thaw::nn::functional
