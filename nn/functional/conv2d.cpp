// conv2d with autograd.
#include "nn/autograd_nodes.h"
#include "nn/functional.h"

namespace thaw::nn::functional {

namespace {

class Conv2dBackward : public FunctionNode {
 public:
  Conv2dBackward(Tensor x, Tensor w, Shape x_shape, Shape w_shape, const ops::Conv2dParams& p)
      : FunctionNode("Conv2dBackward"),
        x_(std::move(x)),
        w_(std::move(w)),
        x_shape_(std::move(x_shape)),
        w_shape_(std::move(w_shape)),
        params_(p) {}

 protected:
  // inputs: x, w, b
  std::vector<Tensor> backward(const Tensor& dy) override {
    return {needs_grad(0) ? ops::conv2d_backward_data(dy, w_, x_shape_, params_) : Tensor(),
            needs_grad(1) ? ops::conv2d_backward_weight(dy, x_, w_shape_, params_) : Tensor(),
            needs_grad(2) ? ops::sum_to_channels(dy) : Tensor()};
  }
  void release() override {
    x_ = Tensor();
    w_ = Tensor();
  }

 private:
  Tensor x_, w_;  // x kept only when w needs a gradient, w only when x does
  Shape x_shape_, w_shape_;
  ops::Conv2dParams params_;
};

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const ops::Conv2dParams& params) {
  Tensor y = ops::conv2d_forward(x, w, b, params);
  if (should_record({&x, &w, &b})) {
    const bool need_dx = x.requires_grad(), need_dw = w.requires_grad();
    record(y,
           std::make_shared<Conv2dBackward>(need_dw ? x.detach() : Tensor(), need_dx ? w.detach() : Tensor(),
                                            x.shape(), w.shape(), params),
           {&x, &w, &b});
  }
  return y;
}

}  // namespace thaw::nn::functional
