// batch_norm followed by relu, fused (kernels/ops.h batch_norm_relu_*), with autograd: the same values and
// gradients as relu(batch_norm(...)) (nn/functional/batch_norm.cpp, relu.cpp), one node instead of two.
// The node keeps the BatchNorm input x (for the statistics' gradients) and the output y (relu's mask), as the
// two separate nodes would.
#include "nn/autograd_nodes.h"
#include "nn/functional.h"

namespace thaw::nn::functional {

namespace {

class BatchNormReluBackward : public FunctionNode {
 public:
  BatchNormReluBackward(Tensor x, Tensor y, Tensor gamma, Tensor mean, Tensor invstd, bool used_batch_stats)
      : FunctionNode("BatchNormReluBackward"),
        x_(std::move(x)),
        y_(std::move(y)),
        gamma_(std::move(gamma)),
        mean_(std::move(mean)),
        invstd_(std::move(invstd)),
        used_batch_stats_(used_batch_stats) {}

 protected:
  // inputs: x, gamma, beta
  std::vector<Tensor> backward(const Tensor& dy) override {
    ops::BatchNormBackward g = ops::batch_norm_relu_backward(
        dy, y_, x_, gamma_, mean_, invstd_, used_batch_stats_,
        /*need_dx=*/needs_grad(0), /*need_affine=*/needs_grad(1) || needs_grad(2));
    return {g.dx, needs_grad(1) ? g.dgamma : Tensor(), needs_grad(2) ? g.dbeta : Tensor()};
  }
  void release() override { x_ = y_ = gamma_ = mean_ = invstd_ = Tensor(); }

 private:
  Tensor x_, y_, gamma_, mean_, invstd_;
  bool used_batch_stats_;
};

}  // namespace

Tensor batch_norm_relu(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                       const Tensor& running_var, bool use_batch_stats, double momentum, double eps) {
  ops::BatchNormForward f =
      ops::batch_norm_relu_forward(x, gamma, beta, running_mean, running_var, use_batch_stats, momentum, eps);
  if (should_record({&x, &gamma, &beta})) {
    record(f.y,
           std::make_shared<BatchNormReluBackward>(x.detach(), f.y.detach(), gamma.detach(), f.mean, f.invstd,
                                                   use_batch_stats),
           {&x, &gamma, &beta});
  }
  return f.y;
}

}  // namespace thaw::nn::functional
