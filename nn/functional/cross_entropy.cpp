// cross_entropy with autograd (kernels/cross_entropy.cpp). Labels and class weights are data: never
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
    return {ops::cross_entropy_backward(dloss, probs_, labels_, class_weights_)};
  }
  void release() override { probs_ = labels_ = class_weights_ = Tensor(); }

 private:
  Tensor probs_, labels_, class_weights_;
};

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, const Tensor& class_weights) {
  ops::CrossEntropyForward f = ops::cross_entropy_forward(logits, labels, class_weights);
  if (should_record({&logits})) {
    record(f.loss, std::make_shared<CrossEntropyBackward>(f.probs, labels, class_weights), {&logits});
  }
  return f.loss;
}

}  // namespace thaw::nn::functional
