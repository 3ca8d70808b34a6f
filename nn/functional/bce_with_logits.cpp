// bce_with_logits with autograd (kernels/bce_with_logits.cpp). Targets are data: never differentiated.
#include "nn/autograd_nodes.h"
#include "nn/functional.h"

namespace thaw::nn::functional {

namespace {

class BceWithLogitsBackward : public FunctionNode {
 public:
  BceWithLogitsBackward(Tensor logits, Tensor targets)
      : FunctionNode("BceWithLogitsBackward"), logits_(std::move(logits)), targets_(std::move(targets)) {}

 protected:
  std::vector<Tensor> backward(const Tensor& dloss) override {
    return {ops::bce_with_logits_backward(dloss, logits_, targets_)};
  }
  void release() override { logits_ = targets_ = Tensor(); }

 private:
  Tensor logits_, targets_;
};

}  // namespace

Tensor bce_with_logits(const Tensor& logits, const Tensor& targets) {
  Tensor loss = ops::bce_with_logits_forward(logits, targets);
  if (should_record({&logits})) {
    record(loss, std::make_shared<BceWithLogitsBackward>(logits.detach(), targets), {&logits});
  }
  return loss;
}

}  // namespace thaw::nn::functional
