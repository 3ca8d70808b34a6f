#include "core/autograd.h"

#include <unordered_map>

#include "core/error.h"

namespace thaw {

namespace {
std::atomic<int64_t> g_live_nodes{0};
thread_local bool t_grad_mode = true;
}  // namespace

Node::Node(std::string name) : name_(std::move(name)) {
  ++g_live_nodes;
}
Node::~Node() {
  --g_live_nodes;
}
int64_t Node::live_count() {
  return g_live_nodes.load();
}

bool grad_mode_enabled() {
  return t_grad_mode;
}
NoGradGuard::NoGradGuard() : previous_(t_grad_mode) {
  t_grad_mode = false;
}
NoGradGuard::~NoGradGuard() {
  t_grad_mode = previous_;
}

void run_backward(const Tensor& root, const Tensor& grad, bool retain_graph) {
  THAW_CHECK(root.defined(), "backward() on an undefined tensor");
  THAW_CHECK(root.requires_grad(),
             "backward() on {} which does not require grad: no input of the ops that made it requires grad "
             "(are all parameters frozen, or was it computed under NoGradGuard?)",
             root.desc());
  Tensor seed = grad;
  if (!seed.defined()) {
    THAW_CHECK(root.numel() == 1, "backward() on {} needs an explicit gradient: it has more than one element",
               root.desc());
    seed = Tensor::ones(root.shape(), root.dtype(), root.device());
  }
  THAW_CHECK(seed.shape() == root.shape() && seed.dtype() == root.dtype() && seed.device() == root.device(),
             "backward(): gradient {} does not match {}", seed.desc(), root.desc());

  THAW_CHECK(!root.is_leaf(), "backward() on the leaf {}: nothing was computed from it to differentiate",
             root.desc());
  const std::shared_ptr<Node>& start = root.grad_fn();

  // Consumer counts: how many edges point at each node from nodes reachable from start.
  std::unordered_map<Node*, int> pending;
  std::vector<Node*> stack{start.get()};
  pending[start.get()] = 0;
  while (!stack.empty()) {
    Node* node = stack.back();
    stack.pop_back();
    for (const auto& next : node->next()) {
      if (!next) continue;
      auto [it, inserted] = pending.try_emplace(next.get(), 0);
      ++it->second;
      if (inserted) stack.push_back(next.get());
    }
  }

  // Kahn's algorithm: a node runs once every consumer has delivered its gradient.
  std::unordered_map<Node*, Tensor> gradients;
  gradients[start.get()] = seed;
  std::vector<std::shared_ptr<Node>> ready{start};
  while (!ready.empty()) {
    std::shared_ptr<Node> node = std::move(ready.back());
    ready.pop_back();
    Tensor grad_output;
    if (auto it = gradients.find(node.get()); it != gradients.end()) {
      grad_output = std::move(it->second);
      gradients.erase(it);
    }
    std::vector<Tensor> grad_inputs;
    if (grad_output.defined()) {
      grad_inputs = node->apply(grad_output);
      THAW_CHECK(grad_inputs.size() == node->next().size(),
                 "autograd: node {} returned {} gradients for {} inputs", node->name(), grad_inputs.size(),
                 node->next().size());
    }
    if (!retain_graph) node->release_saved();
    for (size_t i = 0; i < node->next().size(); ++i) {
      const std::shared_ptr<Node>& next = node->next()[i];
      if (!next) continue;
      if (i < grad_inputs.size() && grad_inputs[i].defined()) {
        auto [it, inserted] = gradients.try_emplace(next.get(), grad_inputs[i]);
        if (!inserted) it->second = next->sum_gradients(it->second, grad_inputs[i]);
      }
      if (--pending[next.get()] == 0) ready.push_back(next);
    }
  }
}

}  // namespace thaw
