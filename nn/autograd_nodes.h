// The pieces nn/ adds to core/autograd.h: the base class of every op's backward node, the gradient sink of
// leaves, and record(), the one function that decides whether an op records a node at all.
#pragma once

#include <initializer_list>
#include <memory>
#include <vector>

#include "core/autograd.h"
#include "core/tensor.h"

namespace thaw::nn {

// Base of the backward node of a differentiable op. Subclasses implement backward() (one gradient per
// input, in the order given to record(); undefined where needs_grad(i) is false) and release() (drop saved
// tensors). Running backward a second time through a released node is an error that says so.
class FunctionNode : public Node {
 public:
  using Node::Node;
  std::vector<Tensor> apply(const Tensor& grad_output) final;
  Tensor sum_gradients(const Tensor& a, const Tensor& b) final;
  void release_saved() final;

 protected:
  virtual std::vector<Tensor> backward(const Tensor& grad_output) = 0;
  virtual void release() = 0;
  bool needs_grad(size_t input) const { return input < next().size() && next()[input] != nullptr; }

 private:
  bool released_ = false;
};

// Gradient sink of a leaf: grad = g on the first gradient (a copy), grad += g afterwards.
class AccumulateGrad : public Node {
 public:
  explicit AccumulateGrad(Tensor leaf);
  std::vector<Tensor> apply(const Tensor& grad_output) override;
  Tensor sum_gradients(const Tensor& a, const Tensor& b) override;

 private:
  Tensor leaf_;
};

// True when grad mode is on and at least one input requires grad: only then does an op record a node.
bool should_record(std::initializer_list<const Tensor*> inputs);

// The node that receives the gradient of t: its grad_fn, its (shared) AccumulateGrad if it is a leaf that
// requires grad, or null.
std::shared_ptr<Node> gradient_edge(const Tensor& t);

// Links node to the inputs' gradient edges and makes it out's grad_fn.
void record(const Tensor& out, const std::shared_ptr<FunctionNode>& node,
            std::initializer_list<const Tensor*> inputs);

}  // namespace thaw::nn
