#include "nn/autograd_nodes.h"

#include "core/error.h"
#include "kernels/ops.h"

namespace thaw::nn {

std::vector<Tensor> FunctionNode::apply(const Tensor& grad_output) {
  THAW_CHECK(!released_,
             "backward through {} a second time: its saved tensors were freed by the first backward "
             "(pass retain_graph = true to the first one)",
             name());
  return backward(grad_output);
}

Tensor FunctionNode::sum_gradients(const Tensor& a, const Tensor& b) {
  return ops::add(a, b);
}

void FunctionNode::release_saved() {
  released_ = true;
  release();
}

AccumulateGrad::AccumulateGrad(Tensor leaf) : Node("AccumulateGrad"), leaf_(std::move(leaf)) {}

std::vector<Tensor> AccumulateGrad::apply(const Tensor& grad_output) {
  if (!leaf_.grad().defined()) {
    leaf_.set_grad(grad_output.clone());
  } else {
    ops::add_(leaf_.grad(), grad_output);
  }
  return {};
}

Tensor AccumulateGrad::sum_gradients(const Tensor& a, const Tensor& b) {
  return ops::add(a, b);
}

bool should_record(std::initializer_list<const Tensor*> inputs) {
  if (!grad_mode_enabled()) return false;
  for (const Tensor* t : inputs)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

std::shared_ptr<Node> gradient_edge(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return nullptr;
  if (!t.is_leaf()) return t.grad_fn();
  std::shared_ptr<Node> sink = t.grad_accumulator();
  if (!sink) {
    sink = std::make_shared<AccumulateGrad>(t);
    t.set_grad_accumulator(sink);
  }
  return sink;
}

void record(const Tensor& out, const std::shared_ptr<FunctionNode>& node,
            std::initializer_list<const Tensor*> inputs) {
  std::vector<std::shared_ptr<Node>> edges;
  edges.reserve(inputs.size());
  for (const Tensor* t : inputs)
    edges.push_back(gradient_edge(*t));
  node->set_next(std::move(edges));
  out.set_grad_fn(node);
}

}  // namespace thaw::nn
