// Define-by-run autograd: the graph types and the engine.
//
// An op (in nn/) called on inputs of which at least one requires grad, while grad mode is on, creates a
// Node holding what its backward needs, links it to the nodes of its inputs (next()), and sets it as its
// output's grad_fn. If no input requires grad it records nothing and keeps nothing alive: a frozen prefix
// of a network costs a forward pass only.
//
// run_backward(root) walks the graph from root.grad_fn() in reverse topological order (Kahn's algorithm on
// the consumer counts), sums the gradients that reach each node, and calls apply(). Leaves are reached
// through their grad accumulator node, which adds into Tensor::grad() (gradients accumulate across calls).
// Node implementations live above core/ (nn/autograd_nodes.h) because they call the kernels.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace thaw {

class Node {
 public:
  explicit Node(std::string name);
  virtual ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const std::string& name() const { return name_; }

  // Gradients of this node's inputs, one per input (in next() order), given the gradient of its output.
  // An entry may be undefined when that input needs no gradient.
  virtual std::vector<Tensor> apply(const Tensor& grad_output) = 0;
  // a + b for two gradients of this node's output (used when the output feeds several consumers).
  // Must not modify a or b: they may alias other gradients.
  virtual Tensor sum_gradients(const Tensor& a, const Tensor& b) = 0;
  // Drops saved tensors once backward has passed (unless the graph is retained).
  virtual void release_saved() {}

  // One entry per input: the node that receives that input's gradient, or null when it needs none.
  const std::vector<std::shared_ptr<Node>>& next() const { return next_; }
  void set_next(std::vector<std::shared_ptr<Node>> next) { next_ = std::move(next); }

  // Number of Node objects alive in the process (tests use it to prove that nothing was recorded).
  static int64_t live_count();

 private:
  std::string name_;
  std::vector<std::shared_ptr<Node>> next_;
};

// Grad mode: when off (inside a NoGradGuard), ops record nothing. Per thread.
bool grad_mode_enabled();

class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// Runs the backward pass from root. grad: the gradient of root (shape of root); may be undefined only when
// root has one element (then it is 1). retain_graph = false frees each node's saved tensors as it runs.
void run_backward(const Tensor& root, const Tensor& grad, bool retain_graph);

}  // namespace thaw
