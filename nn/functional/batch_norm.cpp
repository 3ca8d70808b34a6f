// batch_norm with autograd. The running statistics are updated by the forward kernel (train mode) and
// are not part of the graph.
#include "nn/autograd_nodes.h"
#include "nn/functional.h"

namespace thaw::nn::functional {

namespace {

class BatchNormBackward : public FunctionNode {
 public:
  BatchNormBackward(Tensor x, Tensor gamma, Tensor mean, Tensor invstd, bool used_batch_stats)
      : FunctionNode("BatchNormBackward"),
        x_(std::move(x)),
        gamma_(std::move(gamma)),
        mean_(std::move(mean)),
        invstd_(std::move(invstd)),
        used_batch_stats_(used_batch_stats) {}

 protected:
  // inputs: x, gamma, beta
  std::vector<Tensor> backward(const Tensor& dy) override {
    ops::BatchNormBackward g =
        ops::batch_norm_backward(dy, x_, gamma_, mean_, invstd_, used_batch_stats_, /*need_dx=*/needs_grad(0),
                                 /*need_affine=*/needs_grad(1) || needs_grad(2));
    return {g.dx, needs_grad(1) ? g.dgamma : Tensor(), needs_grad(2) ? g.dbeta : Tensor()};
  }
  void release() override { x_ = gamma_ = mean_ = invstd_ = Tensor(); }

 private:
  Tensor x_, gamma_, mean_, invstd_;
  bool used_batch_stats_;
};

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                  const Tensor& running_var, bool use_batch_stats, double momentum, double eps) {
  ops::BatchNormForward f =
      ops::batch_norm_forward(x, gamma, beta, running_mean, running_var, use_batch_stats, momentum, eps);
  if (should_record({&x, &gamma, &beta})) {
    record(f.y,
           std::make_shared<BatchNormBackward>(x.detach(), gamma.detach(), f.mean, f.invstd, use_batch_stats),
           {&x, &gamma, &beta});
  }
  return f.y;
}

}  // namespace thaw::nn::functional
