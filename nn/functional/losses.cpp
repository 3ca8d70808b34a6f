// cross_entropy and bce_with_logits with autograd. Labels, targets and class weights are data: never
// differentiated.
#include "nn/autograd_nodes.h"
#include "nn/functional.h"

namespace thaw::nn::functional {

namespace {

class CrossEntropyBackward : public FunctionNode {
 public:
  CrossEntropyBackward(Tensor probs, Tensor labels, Tensor class_weights)
      : FunctionNode("CrossEntropyBackward"),
        probs_(std::move(probs)),
        labels_(std::move(labels)),
        class_weights_(std::move(class_weights)) {}

 protected:
  std::vector<Tensor> backward(const Tensor& dloss) override {
    return {ops::softmax_xent_backward(dloss, probs_, labels_, class_weights_)};
  }
  void release() override { probs_ = labels_ = class_weights_ = Tensor(); }

 private:
  Tensor probs_, labels_, class_weights_;
};

class BceWithLogitsBackward : public FunctionNode {
 public:
  BceWithLogitsBackward(Tensor logits, Tensor targets)
      : FunctionNode("BceWithLogitsBackward"), logits_(std::move(logits)), targets_(std::move(targets)) {}

 protected:
  std::vector<Tensor> backward(const Tensor& dloss) override {
    return {ops::bce_logits_backward(dloss, logits_, targets_)};
  }
  void release() override { logits_ = targets_ = Tensor(); }

 private:
  Tensor logits_, targets_;
};

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, const Tensor& class_weights) {
  ops::SoftmaxXentForward f = ops::softmax_xent_forward(logits, labels, class_weights);
  if (should_record({&logits})) {
    record(f.loss, std::make_shared<CrossEntropyBackward>(f.probs, labels, class_weights), {&logits});
  }
  return f.loss;
}

Tensor bce_with_logits(const Tensor& logits, const Tensor& targets) {
  Tensor loss = ops::bce_logits_forward(logits, targets);
  if (should_record({&logits})) {
    record(loss, std::make_shared<BceWithLogitsBackward>(logits.detach(), targets), {&logits});
  }
  return loss;
}

}  // namespace thaw::nn::functional
