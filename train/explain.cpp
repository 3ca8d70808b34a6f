// thaw explain's library (train/explain.h): a walk over a ResNet that applies autograd's recording rules op
// by op and replays the step's memory, the sums per layer, real steps for comparison, and the printed tables.
#include "train/explain.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <map>

#include "core/autograd.h"
#include "core/cuda_runtime.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/storage.h"
#include "kernels/ops.h"
#include "nn/conv_bn.h"
#include "nn/layers.h"
#include "nn/losses.h"
#include "optim/freeze.h"
#include "optim/optimizer.h"
#include "train/feature_cache.h"
#include "train/freeze_plan.h"

namespace thaw::train {

// ---- the step setup: mask and BatchNorm mode, as train/trainer.cpp sets them ------------------------------

namespace {

bool batch_norm_frozen(const TrainConfig& c, int64_t epoch) {
  return c.bn_mode == "frozen" || (c.bn_frozen_from_epoch > 0 && epoch >= c.bn_frozen_from_epoch);
}

}  // namespace

std::string trainable_patterns(const TrainConfig& config, int64_t epoch) {
  return freeze_mask(config, epoch).str();
}

void apply_step_setup(models::ResNet& model, const TrainConfig& config, int64_t epoch) {
  freeze_mask(config, epoch).apply(model.named_parameters());
  model.train();
  nn::set_batch_norm_mode(
      model, {"*"}, batch_norm_frozen(config, epoch) ? nn::BatchNormMode::Frozen : nn::BatchNormMode::Train);
}

std::shared_ptr<models::ResNet> make_explained_model(const TrainConfig& config, int64_t epoch) {
  Generator gen(config.seed);
  auto model = models::make_resnet(models::parse_arch(config.arch), config.num_outputs(), gen);
  apply_step_setup(*model, config, epoch);
  return model;
}

// ---- the walk: one method per differentiable op, each the rule of its nn/functional/<op>.cpp --------------
//
// The walk also replays the step's memory as core/storage.h counts it. A Buffer stands for one storage: the
// walk's Values and traced nodes share it through shared_ptr, as Tensors and autograd nodes share a Storage,
// and its bytes count while any of them holds it. The walk keeps its Values in variables laid out as
// models/resnet.cpp and nn/layers.cpp keep their Tensors, so each buffer dies where its tensor dies.

namespace {

constexpr int64_t kFloatBytes = 4, kInt32Bytes = 4, kInt64Bytes = 8;  // float32; max-pool's argmax; labels

bool trains(const Tensor& parameter) {
  return parameter.defined() && parameter.requires_grad();
}

// Bytes alive, and the timeline's events: an event lasts from its open() to the next open() or close(), and
// its peak is the most bytes alive in that time, as core/storage.h's peak between two reset_cpu_peak().
class MemoryTracker {
 public:
  void allocated(int64_t bytes) {
    in_use_ += bytes;
    peak_ = std::max(peak_, in_use_);
  }
  void freed(int64_t bytes) { in_use_ -= bytes; }
  void open(const char* phase, const std::string& module, const std::string& op) {
    close();
    events_.push_back({phase, module, op, in_use_, in_use_});
    peak_ = in_use_;
    open_ = true;
  }
  void close() {
    if (!open_) return;
    events_.back().peak_bytes = peak_, events_.back().after_bytes = in_use_;
    open_ = false;
  }
  std::vector<MemoryEvent> take_events() {
    close();
    return std::move(events_);
  }

 private:
  int64_t in_use_ = 0, peak_ = 0;
  bool open_ = false;
  std::vector<MemoryEvent> events_;
};

// One storage. A null tracker: the batch, alive between steps, not counted.
struct Buffer {
  Buffer(MemoryTracker* tracker_, int64_t bytes_) : tracker(tracker_), bytes(bytes_) {
    if (tracker) tracker->allocated(bytes);
  }
  ~Buffer() {
    if (tracker) tracker->freed(bytes);
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  MemoryTracker* tracker;
  int64_t bytes;
  bool held_anyway = false;  // the batch and the step's outputs: alive without the graph
  bool kept = false;         // some earlier node keeps it
};
using BufferRef = std::shared_ptr<Buffer>;

// A tensor of the forward pass as the walk sees it: its shape, the storage it views (a view shares it) and
// the traced node that receives its gradient (its grad_fn), -1 when it needs none.
struct Value {
  Shape shape;
  BufferRef storage;
  int node = -1;

  bool requires_grad() const { return node >= 0; }
  int64_t bytes() const { return storage->bytes; }
};

constexpr int kNone = -1, kGradOutput = -2;  // TracedNode::returns: no gradient; dy itself (or a view of it)

// The autograd node of a recorded op, or the gradient sink of a trainable parameter, with what running it
// allocates: backward() of nn/functional/<op>.cpp, AccumulateGrad::apply of nn/autograd_nodes.cpp.
struct TracedNode {
  std::string module, op;          // the forward op's; a sink: the parameter's name and "accumulate_grad"
  std::vector<int> next;           // per input, in record()'s order: the node its gradient goes to, or -1
  std::vector<BufferRef> saved;    // what the node keeps, until it has run
  std::vector<int64_t> allocates;  // bytes of each tensor its backward allocates, in order
  std::vector<int> returns;        // per input: its gradient, an index into allocates, kGradOutput or kNone
  bool sink = false;               // AccumulateGrad: its one allocation becomes the parameter's grad
};

std::string per_image(const Shape& shape) {  // "64x56x56" for (N, 64, 56, 56)
  std::vector<int64_t> dims(shape.begin() + (shape.empty() ? 0 : 1), shape.end());
  return fmt::format("{}", fmt::join(dims, "x"));
}

class StepTracer {
 public:
  StepTracer() = default;
  StepTracer(const StepTracer&) = delete;  // its buffers point at its tracker_
  StepTracer& operator=(const StepTracer&) = delete;

  Value images(int64_t batch, int64_t image_size) {
    const Shape shape = {batch, 3, image_size, image_size};
    Value v{shape, std::make_shared<Buffer>(nullptr, shape_numel(shape) * kFloatBytes)};
    v.storage->held_anyway = true;
    return v;
  }
  // folded: the BatchNorm module folded into the conv (its weights frozen, so the rule is the same), or "".
  Value conv2d(const std::string& layer, const std::string& module, const nn::Conv2d& m, const Value& x,
               const std::string& folded = "");
  Value relu(const std::string& layer, const std::string& module, const Value& x);
  Value batch_norm(const std::string& layer, const std::string& module, const nn::BatchNorm2d& m,
                   const Value& x, bool fused_relu);
  Value add_relu(const std::string& layer, const std::string& module, const Value& a, const Value& b);
  Value max_pool2d(const std::string& layer, const std::string& module, const nn::MaxPool2d& m,
                   const Value& x);
  Value global_avg_pool2d(const std::string& layer, const std::string& module, const Value& x);
  Value flatten(const std::string& layer, const std::string& module, const Value& x);
  Value linear(const std::string& layer, const std::string& module, const nn::Linear& m, const Value& x);
  Value loss(const std::string& kind, const Value& logits);  // the 0-d loss
  void backward(const Value& loss);
  void optimizer_step();
  // The event in which the caller's step ends and its outputs (logits, loss) go.
  void end_step() { tracker_.open("end", "step", "outputs freed"); }

  std::vector<OpExplanation> take_ops() { return std::move(ops_); }
  std::vector<MemoryEvent> take_timeline() { return tracker_.take_events(); }

 private:
  // conv2d and linear once their output shape and FLOPs per pass are known: y = x (*) weight (+ bias). A node
  // when x or a parameter needs a gradient; backward-data when x does, backward-weight when a parameter
  // trains; x kept when the weight trains.
  Value weighted_op(const std::string& layer, const std::string& module, const char* name, const Value& x,
                    const Shape& y, double flops, const Tensor& weight, const Tensor& bias);
  Value new_value(const Shape& shape, int64_t element_bytes) {
    return {shape, std::make_shared<Buffer>(&tracker_, shape_numel(shape) * element_bytes)};
  }
  OpExplanation& begin(const std::string& layer, const std::string& module, const char* op, const Shape& x,
                       const Shape& y) {
    tracker_.open("forward", module, op);
    ops_.push_back({});
    OpExplanation& e = ops_.back();
    e.layer = layer, e.module = module, e.op = op, e.shape = per_image(x) + " -> " + per_image(y);
    return e;
  }
  // nn/autograd_nodes.cpp record(): op's node, its edges in the op's input order; out.grad_fn = the node.
  TracedNode& record(const OpExplanation& op, Value& out, std::vector<int> next) {
    TracedNode& node = graph_.emplace_back();
    node.module = op.module, node.op = op.op, node.next = std::move(next);
    out.node = int(graph_.size()) - 1;
    return node;
  }
  // The gradient sink of a parameter that trains (nn/autograd_nodes.cpp gradient_edge()), or -1.
  int sink(const std::string& name, const Tensor& parameter) {
    if (!trains(parameter)) return -1;
    TracedNode& node = graph_.emplace_back();
    node.module = name, node.op = "accumulate_grad", node.sink = true;
    node.allocates = {parameter.numel() * kFloatBytes};  // its grad: a clone of the gradient
    return int(graph_.size()) - 1;
  }
  // A backward that allocates the gradient of each input that needs one, of bytes[i], and returns it.
  static void returns_new(TracedNode& node, const std::vector<int64_t>& bytes) {
    for (size_t i = 0; i < node.next.size(); ++i) {
      node.returns.push_back(node.next[i] < 0 ? kNone : int(node.allocates.size()));
      if (node.next[i] >= 0) node.allocates.push_back(bytes[i]);
    }
  }
  // The node of op keeps v (named `what`); its bytes count once, where the graph alone holds them.
  static void keep(OpExplanation& op, TracedNode& node, const Value& v, const std::string& what) {
    Buffer& s = *v.storage;
    const char* note = s.held_anyway ? " (held anyway)" : s.kept ? " (kept above)" : "";
    op.kept += (op.kept.empty() ? "" : ", ") + what + note;
    if (!s.kept && !s.held_anyway) op.kept_bytes += s.bytes;
    s.kept = true;
    node.saved.push_back(v.storage);
  }
  // A recorded op's parameters: one gradient sink per trainable tensor, and its trainable values.
  static void count_trainable(OpExplanation& op, std::initializer_list<const Tensor*> parameters) {
    for (const Tensor* p : parameters) {
      if (!trains(*p)) continue;
      op.gradient_sinks += 1;
      op.trainable_params += p->numel();
    }
  }
  std::vector<int> consumer_counts(int root) const;
  void run_node(int id, std::map<int, BufferRef>& gradients, std::vector<int>& pending,
                std::vector<int>& ready);

  MemoryTracker tracker_;  // first: every Buffer below points at it
  std::vector<TracedNode> graph_;
  std::vector<BufferRef> parameter_grads_;  // the .grad of each trainable parameter, once backward made it
  std::vector<OpExplanation> ops_;
};

// nn/functional/conv2d.cpp: keeps x when w trains (and w, a parameter, when x needs a gradient); backward
// allocates dx, dw and db for the inputs that need them.
// A folded conv (nn/conv_bn.h) runs on w' and b', which do not train: as a frozen conv, it keeps nothing.
Value StepTracer::conv2d(const std::string& layer, const std::string& module, const nn::Conv2d& m,
                         const Value& x, const std::string& folded) {
  const Shape y = ops::conv2d_output_shape(x.shape, m.weight.shape(), m.params);
  const Shape& w = m.weight.shape();                                               // (K, C, R, S)
  const double flops = 2.0 * double(shape_numel(y)) * double(w[1] * w[2] * w[3]);  // 2 N K P Q C R S
  Value out = weighted_op(layer, module, "conv2d", x, y, flops, m.weight, m.bias);
  ops_.back().folded = folded;
  return out;
}

// nn/functional/relu.cpp: keeps its output y; backward allocates dx.
Value StepTracer::relu(const std::string& layer, const std::string& module, const Value& x) {
  OpExplanation& op = begin(layer, module, "relu", x.shape, x.shape);
  op.records = op.backward_data = x.requires_grad();
  Value y = new_value(x.shape, kFloatBytes);
  if (op.records) {
    TracedNode& node = record(op, y, {x.node});
    returns_new(node, {x.bytes()});
    keep(op, node, y, "y");
  }
  return y;
}

// nn/functional/batch_norm.cpp and batch_norm_relu.cpp: keep x, the batch's (or running) mean and inverse
// standard deviation (fresh (C,) tensors from the forward kernel), and the fused op also y (relu's mask).
// Backward allocates dx when x needs it, and dgamma and dbeta when they train or the batch's statistics were
// used (dx needs their sums then; they are dropped unless they train).
Value StepTracer::batch_norm(const std::string& layer, const std::string& module, const nn::BatchNorm2d& m,
                             const Value& x, bool fused_relu) {
  OpExplanation& op = begin(layer, module, fused_relu ? "batch_norm_relu" : "batch_norm", x.shape, x.shape);
  op.records = x.requires_grad() || trains(m.weight) || trains(m.bias);
  Value y = new_value(x.shape, kFloatBytes);
  const Value mean = new_value({x.shape[1]}, kFloatBytes), invstd = new_value({x.shape[1]}, kFloatBytes);
  if (op.records) {
    op.backward_data = x.requires_grad();
    op.backward_weight = trains(m.weight) || trains(m.bias);
    count_trainable(op, {&m.weight, &m.bias});
    TracedNode& node =
        record(op, y, {x.node, sink(module + ".weight", m.weight), sink(module + ".bias", m.bias)});
    const int64_t channel_bytes = x.shape[1] * kFloatBytes;
    if (x.requires_grad()) node.allocates.push_back(x.bytes());
    if (op.backward_weight || m.uses_batch_stats()) {
      node.allocates.push_back(channel_bytes);  // dgamma
      node.allocates.push_back(channel_bytes);  // dbeta
    }
    const int first = x.requires_grad() ? 1 : 0;
    node.returns = {x.requires_grad() ? 0 : kNone, node.next[1] >= 0 ? first : kNone,
                    node.next[2] >= 0 ? first + 1 : kNone};
    keep(op, node, x, "x");
    if (fused_relu) keep(op, node, y, "y");
    keep(op, node, mean, "mean");
    keep(op, node, invstd, "invstd");
  }
  return y;
}

// nn/functional/max_pool2d.cpp: keeps the int32 argmax of each window; backward allocates dx.
Value StepTracer::max_pool2d(const std::string& layer, const std::string& module, const nn::MaxPool2d& m,
                             const Value& x) {
  const ops::Pool2dParams& p = m.params;
  const Shape y = {x.shape[0], x.shape[1], (x.shape[2] + 2 * p.pad_h - p.kernel_h) / p.stride_h + 1,
                   (x.shape[3] + 2 * p.pad_w - p.kernel_w) / p.stride_w + 1};
  OpExplanation& op = begin(layer, module, "max_pool2d", x.shape, y);
  op.records = op.backward_data = x.requires_grad();
  Value out = new_value(y, kFloatBytes);
  const Value argmax = new_value(y, kInt32Bytes);
  if (op.records) {
    TracedNode& node = record(op, out, {x.node});
    returns_new(node, {x.bytes()});
    keep(op, node, argmax, "argmax (int32)");
  }
  return out;
}

// nn/functional/add_relu.cpp: keeps its output y; backward allocates one masked gradient, which both inputs
// get.
Value StepTracer::add_relu(const std::string& layer, const std::string& module, const Value& a,
                           const Value& b) {
  OpExplanation& op = begin(layer, module, "add_relu", a.shape, a.shape);
  op.records = op.backward_data = a.requires_grad() || b.requires_grad();
  Value y = new_value(a.shape, kFloatBytes);
  if (op.records) {
    TracedNode& node = record(op, y, {a.node, b.node});
    node.allocates.push_back(a.bytes());
    for (const int next : node.next)
      node.returns.push_back(next < 0 ? kNone : 0);
    keep(op, node, y, "y");
  }
  return y;
}

// nn/functional/global_avg_pool2d.cpp: keeps only x's shape; backward allocates dx.
Value StepTracer::global_avg_pool2d(const std::string& layer, const std::string& module, const Value& x) {
  const Shape y = {x.shape[0], x.shape[1], 1, 1};
  OpExplanation& op = begin(layer, module, "global_avg_pool2d", x.shape, y);
  op.records = op.backward_data = x.requires_grad();
  Value out = new_value(y, kFloatBytes);
  if (op.records) returns_new(record(op, out, {x.node}), {x.bytes()});
  return out;
}

// nn/functional/elementwise.cpp: flatten is a view (the same storage), its node keeps only the shape, and
// its backward returns a view of dy.
Value StepTracer::flatten(const std::string& layer, const std::string& module, const Value& x) {
  const Shape y = {x.shape[0], shape_numel(x.shape) / x.shape[0]};
  OpExplanation& op = begin(layer, module, "flatten", x.shape, y);
  op.records = op.backward_data = x.requires_grad();
  Value out{y, x.storage};
  if (op.records) record(op, out, {x.node}).returns = {kGradOutput};
  return out;
}

// nn/functional/linear.cpp: keeps x when w trains (and w when x needs a gradient); backward allocates dx, dw
// and db for the inputs that need them.
Value StepTracer::linear(const std::string& layer, const std::string& module, const nn::Linear& m,
                         const Value& x) {
  const Shape y = {x.shape[0], m.weight.size(0)};
  const double flops = 2.0 * double(x.shape[0]) * double(m.weight.numel());  // 2 N I O
  return weighted_op(layer, module, "linear", x, y, flops, m.weight, m.bias);
}

Value StepTracer::weighted_op(const std::string& layer, const std::string& module, const char* name,
                              const Value& x, const Shape& y, double flops, const Tensor& weight,
                              const Tensor& bias) {
  OpExplanation& op = begin(layer, module, name, x.shape, y);
  op.forward_flops = flops;
  op.records = x.requires_grad() || trains(weight) || trains(bias);
  Value out = new_value(y, kFloatBytes);
  if (op.records) {
    op.backward_data = x.requires_grad();
    op.backward_weight = trains(weight) || trains(bias);
    op.backward_data_flops = x.requires_grad() ? flops : 0;
    op.backward_weight_flops = trains(weight) ? flops : 0;
    count_trainable(op, {&weight, &bias});
    TracedNode& node =
        record(op, out, {x.node, sink(module + ".weight", weight), sink(module + ".bias", bias)});
    returns_new(node, {x.bytes(), weight.numel() * kFloatBytes, weight.size(0) * kFloatBytes});
    if (trains(weight)) keep(op, node, x, "x");
  }
  return out;
}

// nn/functional/cross_entropy.cpp keeps the softmax probabilities; bce_with_logits.cpp keeps the logits (held
// by the caller anyway) and the float targets that nn/losses.cpp makes from the labels (a copy of the labels
// on the host, the targets, and their copy on the logits' device, which the node keeps). Backward allocates
// dlogits.
Value StepTracer::loss(const std::string& kind, const Value& logits) {
  THAW_CHECK(kind == "cross_entropy" || kind == "bce", "explain: loss '{}' is not cross_entropy or bce",
             kind);
  const bool ce = kind == "cross_entropy";
  OpExplanation& op = begin("loss", "loss", ce ? "cross_entropy" : "bce_with_logits", logits.shape, {1, 1});
  op.shape = per_image(logits.shape) + " -> loss";
  op.records = op.backward_data = logits.requires_grad();
  logits.storage->held_anyway = true;  // the caller holds the logits, and the loss
  Value total = new_value({}, kFloatBytes);
  total.storage->held_anyway = true;
  const Value host_labels = ce ? Value{} : new_value({logits.shape[0]}, kInt64Bytes);
  const Value host_targets = ce ? Value{} : new_value(logits.shape, kFloatBytes);
  const Value kept = new_value(logits.shape, kFloatBytes);  // probabilities, or the targets on the device
  if (!op.records) return total;
  TracedNode& node = record(op, total, {logits.node});
  returns_new(node, {logits.bytes()});
  if (!ce) keep(op, node, logits, "logits");
  keep(op, node, kept, ce ? "probs" : "targets");
  return total;
}

// core/autograd.cpp run_backward(): the consumer counts of the nodes reachable from root.
std::vector<int> StepTracer::consumer_counts(int root) const {
  std::vector<int> pending(graph_.size(), 0);
  std::vector<bool> seen(graph_.size(), false);
  std::vector<int> stack{root};
  seen[size_t(root)] = true;
  while (!stack.empty()) {
    const int id = stack.back();
    stack.pop_back();
    for (const int next : graph_[size_t(id)].next) {
      if (next < 0) continue;
      pending[size_t(next)] += 1;
      if (!seen[size_t(next)]) seen[size_t(next)] = true, stack.push_back(next);
    }
  }
  return pending;
}

// One iteration of run_backward()'s loop: take the node's gradient, run its backward (what that allocates
// and does not return is freed with it), release what it saved, hand each input its gradient (a second
// gradient for the same node is summed into a new tensor), and queue the nodes whose consumers are done.
void StepTracer::run_node(int id, std::map<int, BufferRef>& gradients, std::vector<int>& pending,
                          std::vector<int>& ready) {
  TracedNode& node = graph_[size_t(id)];
  BufferRef dy;
  if (const auto it = gradients.find(id); it != gradients.end()) {
    dy = std::move(it->second);
    gradients.erase(it);
  }
  std::vector<BufferRef> dx(node.next.size());
  if (dy) {
    std::vector<BufferRef> made;
    for (const int64_t bytes : node.allocates)
      made.push_back(std::make_shared<Buffer>(&tracker_, bytes));
    for (size_t i = 0; i < dx.size(); ++i) {
      if (node.returns[i] == kGradOutput) dx[i] = dy;
      if (node.returns[i] >= 0) dx[i] = made[size_t(node.returns[i])];
    }
    if (node.sink) parameter_grads_.push_back(made.front());
  }
  node.saved.clear();
  for (size_t i = 0; i < node.next.size(); ++i) {
    const int next = node.next[i];
    if (next < 0) continue;
    if (dx[i]) {
      const auto [it, inserted] = gradients.try_emplace(next, dx[i]);
      if (!inserted) it->second = std::make_shared<Buffer>(&tracker_, it->second->bytes);
    }
    if (--pending[size_t(next)] == 0) ready.push_back(next);
  }
}

// core/autograd.cpp run_backward() on the traced graph, node by node in its order (Kahn's algorithm, the
// ready nodes on a stack). Its seed, a 1 of the loss's shape, lives until it returns.
void StepTracer::backward(const Value& loss) {
  if (!loss.requires_grad()) return;  // nothing trains: thaw train would refuse this step
  const int root = loss.node;
  tracker_.open("backward", graph_[size_t(root)].module, graph_[size_t(root)].op);  // before the seed
  const BufferRef seed = std::make_shared<Buffer>(&tracker_, loss.bytes());
  std::vector<int> pending = consumer_counts(root);
  std::map<int, BufferRef> gradients{{root, seed}};
  std::vector<int> ready{root};
  while (!ready.empty()) {
    const int id = ready.back();
    ready.pop_back();
    if (id != root) tracker_.open("backward", graph_[size_t(id)].module, graph_[size_t(id)].op);
    run_node(id, gradients, pending, ready);
  }
}

// optim/optimizer.cpp: step() updates in place once its state exists (the first step allocates it, SGD's
// momentum or Adam's two moments, which then live between steps); zero_grad() drops the gradients.
void StepTracer::optimizer_step() {
  tracker_.open("optimizer", "optimizer", "step");
  tracker_.open("optimizer", "optimizer", "zero_grad");
  parameter_grads_.clear();
}

// ---- the ResNet, in the order of models/resnet.cpp's forward ----------------------------------------------
//
// Each function below keeps its Values where the function it follows keeps its Tensors: a block's input is
// alive until the block returns, a layer's input until the layer returns, a temporary until the end of its
// statement.

template <typename M>
const M& module_of(models::ResNet& model, const std::string& name) {
  const auto* m = dynamic_cast<const M*>(&model.submodule(name));
  THAW_CHECK(m != nullptr, "explain: module '{}' of {} is a {}, not the layer models/resnet.cpp puts there",
             name, models::arch_name(model.arch()), model.submodule(name).type_name());
  return *m;
}

bool has_child(nn::Module& module, const std::string& name) {
  for (const auto& [child, _] : module.children())
    if (child == name) return true;
  return false;
}

// nn/conv_bn.h ConvBatchNorm::forward: bn(conv(x)) (relu: the fused batch_norm_relu), or, where the pair
// folds, one conv2d with a bias (then a relu). x goes before the BatchNorm or relu, as the pair drops it (the
// caller passes std::move(h) where models/resnet.cpp does). The stem sums its conv and its BatchNorm in two
// rows (conv_layer "conv1", bn_layer "bn1"), a block in one.
Value trace_conv_bn(StepTracer& t, models::ResNet& model, const std::string& conv_layer,
                    const std::string& bn_layer, const std::string& conv_name, const std::string& bn_name,
                    Value x, bool relu) {
  const nn::Conv2d& conv = module_of<nn::Conv2d>(model, conv_name);
  const nn::BatchNorm2d& bn = module_of<nn::BatchNorm2d>(model, bn_name);
  const bool fold = model.fold_frozen_batch_norm() && nn::can_fold(conv, bn);
  Value h = t.conv2d(conv_layer, conv_name, conv, x, fold ? bn_name : "");
  x = Value{};
  if (fold) return relu ? t.relu(bn_layer, bn_name, h) : h;
  return t.batch_norm(bn_layer, bn_name, bn, h, relu);
}

// A block's shortcut projection, downsample.0 conv and downsample.1 BN, on its input x.
Value trace_downsample(StepTracer& t, models::ResNet& model, const std::string& name, const Value& x) {
  return trace_conv_bn(t, model, name, name, name + ".downsample.0", name + ".downsample.1", x,
                       /*relu=*/false);
}

// BasicBlock: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)), the join fused (add_relu); Bottleneck adds
// conv3/bn3, its bn2 fused with relu too. The shortcut runs after the main branch, a temporary of the join's
// statement.
Value trace_block(StepTracer& t, models::ResNet& model, const std::string& name, const Value& x) {
  const std::string& type = model.submodule(name).type_name();
  THAW_CHECK(type == "BasicBlock" || type == "Bottleneck", "explain: '{}' is a {}, not a ResNet block", name,
             type);
  const bool bottleneck = type == "Bottleneck";
  const auto pair = [&](const char* conv, const char* bn, Value in, bool relu) {
    return trace_conv_bn(t, model, name, name, name + "." + conv, name + "." + bn, std::move(in), relu);
  };
  Value h = pair("conv1", "bn1", x, /*relu=*/true);
  h = pair("conv2", "bn2", std::move(h), /*relu=*/bottleneck);
  if (bottleneck) h = pair("conv3", "bn3", std::move(h), /*relu=*/false);
  const bool downsample = has_child(model.submodule(name), "downsample");
  return t.add_relu(name, name, h, downsample ? trace_downsample(t, model, name, x) : x);
}

// nn::Sequential::forward: h = x, then each block in turn.
Value trace_layer(StepTracer& t, models::ResNet& model, const std::string& layer, const Value& x) {
  Value h = x;
  for (const auto& [block, _] : model.submodule(layer).children())
    h = trace_block(t, model, layer + "." + block, h);
  return h;
}

// ResNet::features: conv1 - bn1 + relu (fused) - maxpool - layer1..4 - avgpool - flatten.
Value trace_features(StepTracer& t, models::ResNet& model, const Value& x) {
  Value h = trace_conv_bn(t, model, "conv1", "bn1", "conv1", "bn1", x, /*relu=*/true);
  h = t.max_pool2d("maxpool", "maxpool", module_of<nn::MaxPool2d>(model, "maxpool"), h);
  for (int i = 1; i <= 4; ++i)
    h = trace_layer(t, model, "layer" + std::to_string(i), h);
  return t.flatten("avgpool", "flatten", t.global_avg_pool2d("avgpool", "avgpool", h));
}

// The model's children that train, "layer3, layer4, fc"; "layer1 (partly)" where only some parameters do.
std::string trainable_children(models::ResNet& model) {
  std::string out;
  for (const auto& [name, child] : model.children()) {
    int64_t tensors = 0, trainable = 0;
    for (const auto& [_, p] : child->named_parameters())
      tensors += 1, trainable += p.requires_grad();
    if (trainable == 0) continue;
    out += (out.empty() ? "" : ", ") + name + (trainable < tensors ? " (partly)" : "");
  }
  return out.empty() ? "(nothing)" : out;
}

// One training step as thaw explain --measure runs it (train/explain.cpp measure_step): logits =
// fc(features(images)), the loss, backward, the optimizer's step and zero_grad; then logits and loss go.
void trace_resnet_step(models::ResNet& model, int64_t batch, int64_t image_size, const std::string& loss,
                       StepExplanation& e) {
  StepTracer t;
  {
    const Value images = t.images(batch, image_size);
    const Value logits =
        t.linear("fc", "fc", module_of<nn::Linear>(model, "fc"), trace_features(t, model, images));
    const Value total = t.loss(loss, logits);
    t.backward(total);
    t.optimizer_step();
    t.end_step();
  }
  e.ops = t.take_ops();
  e.timeline = t.take_timeline();
}

}  // namespace

StepExplanation explain_step(models::ResNet& model, int64_t batch, int64_t image_size,
                             const std::string& loss) {
  THAW_CHECK(batch >= 1 && image_size >= 32, "explain: need batch >= 1 and image_size >= 32, got {} and {}",
             batch, image_size);
  StepExplanation e;
  e.arch = models::arch_name(model.arch());
  e.num_outputs = model.num_classes();
  e.loss = loss, e.batch = batch, e.image_size = image_size;
  e.bn_mode = module_of<nn::BatchNorm2d>(model, "bn1").uses_batch_stats() ? "train" : "frozen";
  e.trainable = trainable_children(model);
  for (const nn::ConvBatchNorm* pair : model.conv_bn_pairs()) {
    e.conv_bn_pairs += 1;
    e.folded_pairs += model.fold_frozen_batch_norm() && nn::can_fold(pair->conv(), pair->bn());
  }
  for (const auto& [name, p] : model.named_parameters()) {
    e.parameter_tensors += 1, e.parameters += p.numel();
    if (!p.requires_grad()) continue;
    e.trainable_tensors += 1, e.trainable_params += p.numel();
  }
  trace_resnet_step(model, batch, image_size, loss, e);
  return e;
}

StepExplanation explain_config(const TrainConfig& config, int64_t epoch) {
  auto model = make_explained_model(config, epoch);
  StepExplanation e = explain_step(*model, config.batch_size, config.image_size, config.loss);
  e.trainable = trainable_patterns(config, epoch);
  e.feature_cache = describe_feature_cache(config, *model);
  return e;
}

std::string describe_feature_cache(const TrainConfig& config, models::ResNet& model) {
  if (!config.feature_cache) return "off (feature_cache = false)";
  const PrefixCut cut = cacheable_prefix(model, config.augment);
  if (cut.stages == 0) return "not used: " + cut.reason;
  return fmt::format(
      "{} is computed once per image ({}), so a training step runs {} only; the rows of {} below are what "
      "the step would cost without the cache",
      cut.prefix_text(), cut.reason, cut.rest_text(), cut.prefix_text());
}

// ---- sums -------------------------------------------------------------------------------------------------

namespace {

template <typename Field>
auto sum_over(const std::vector<OpExplanation>& ops, Field field) {
  decltype(field(ops.front())) total{};
  for (const OpExplanation& op : ops)
    total += field(op);
  return total;
}

std::string passes_of(bool data, bool weight) {
  return std::string("F") + (data ? " D" : "") + (weight ? " W" : "");
}

}  // namespace

std::vector<LayerExplanation> StepExplanation::layers() const {
  std::vector<LayerExplanation> rows;
  bool data = false, weight = false;
  for (const OpExplanation& op : ops) {
    if (rows.empty() || rows.back().layer != op.layer) {
      rows.emplace_back();
      rows.back().layer = op.layer;
      data = weight = false;
    }
    LayerExplanation& r = rows.back();
    data |= op.backward_data, weight |= op.backward_weight;
    r.passes = passes_of(data, weight);
    r.nodes += op.nodes(), r.kept_bytes += op.kept_bytes, r.trainable_params += op.trainable_params;
    r.forward_flops += op.forward_flops, r.backward_data_flops += op.backward_data_flops;
    r.backward_weight_flops += op.backward_weight_flops;
  }
  return rows;
}

int64_t StepExplanation::recorded_nodes() const {
  return sum_over(ops, [](const OpExplanation& op) { return int64_t(op.records); });
}
int64_t StepExplanation::gradient_sinks() const {
  return sum_over(ops, [](const OpExplanation& op) { return op.gradient_sinks; });
}
int64_t StepExplanation::kept_bytes() const {
  return sum_over(ops, [](const OpExplanation& op) { return op.kept_bytes; });
}
double StepExplanation::forward_flops() const {
  return sum_over(ops, [](const OpExplanation& op) { return op.forward_flops; });
}
double StepExplanation::backward_data_flops() const {
  return sum_over(ops, [](const OpExplanation& op) { return op.backward_data_flops; });
}
double StepExplanation::backward_weight_flops() const {
  return sum_over(ops, [](const OpExplanation& op) { return op.backward_weight_flops; });
}
int64_t StepExplanation::peak_bytes() const {
  int64_t peak = 0;
  for (const MemoryEvent& event : timeline)
    peak = std::max(peak, event.peak_bytes);
  return peak;
}

// ---- real steps -------------------------------------------------------------------------------------------

namespace {

std::unique_ptr<optim::Optimizer> make_optimizer(models::ResNet& model, const TrainConfig& c) {
  std::vector<optim::ParamGroup> groups = {{model.named_parameters(), c.lr, c.weight_decay, "all"}};
  if (c.optimizer == "sgd") return std::make_unique<optim::SGD>(groups, c.momentum, c.nesterov);
  if (c.optimizer == "adam") return std::make_unique<optim::Adam>(groups, c.betas[0], c.betas[1], c.eps);
  THAW_CHECK(c.optimizer == "adamw", "optimizer: '{}' is not sgd, adam or adamw", c.optimizer);
  return std::make_unique<optim::AdamW>(groups, c.betas[0], c.betas[1], c.eps);
}

// Labels in [0, classes): the task's classes, or {0, 1} for bce's single output.
Tensor random_labels(const TrainConfig& c, Generator& gen, Device device) {
  std::vector<int64_t> labels(size_t(c.batch_size));
  for (int64_t& y : labels)
    y = gen.next_int(0, c.loss == "bce" ? 2 : c.num_outputs());
  return Tensor::from_data<int64_t>({c.batch_size}, labels).to(device);
}

int64_t bytes_in_use(Device device) {
  return int64_t(device.is_cuda() ? cuda_runtime::memory_stats(device.index).in_use
                                  : cpu_memory_stats().in_use);
}
int64_t peak_bytes_in_use(Device device) {
  return int64_t(device.is_cuda() ? cuda_runtime::memory_stats(device.index).peak_in_use
                                  : cpu_memory_stats().peak_in_use);
}
void reset_peak_bytes(Device device) {
  if (device.is_cuda()) {
    cuda_runtime::reset_peak_memory(device.index);
  } else {
    reset_cpu_peak();
  }
}

}  // namespace

StepMeasurement measure_step(models::ResNet& model, const TrainConfig& config, int steps) {
  THAW_CHECK(steps >= 1, "explain: --steps must be at least 1, got {}", steps);
  const Device device = Device::parse(config.device);
  THAW_CHECK(!device.is_cuda() || cuda_runtime::device_count() > device.index,
             "explain: no CUDA device {} here ({} found{})", device.str(), cuda_runtime::device_count(),
             cuda_runtime::built_with_cuda() ? "" : "; this thaw was built without CUDA");
  model.to(device);
  Generator gen(config.seed + 1);
  const Tensor images =
      Tensor::normal({config.batch_size, 3, config.image_size, config.image_size}, 0, 1, gen).to(device);
  const Tensor labels = random_labels(config, gen, device);
  const auto optimizer = make_optimizer(model, config);
  const auto step = [&] {
    const Tensor logits = model.forward(images);
    const Tensor loss = config.loss == "bce" ? nn::BCEWithLogitsLoss()(logits, labels)
                                             : nn::CrossEntropyLoss()(logits, labels);
    loss.backward();
    optimizer->step();
    optimizer->zero_grad();
    if (device.is_cuda()) cuda_runtime::synchronize();
  };
  step();  // warm-up: the optimizer's state, scratch buffers, the CUDA allocator's cache
  StepMeasurement m{device.str(), steps, 0, bytes_in_use(device), 0};
  reset_peak_bytes(device);
  std::vector<double> ms;
  for (int i = 0; i < steps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    step();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(ms.begin(), ms.end());
  m.median_ms = ms[ms.size() / 2];
  m.peak_bytes = peak_bytes_in_use(device);
  return m;
}

std::vector<LayerCountRow> explain_over_layers(const TrainConfig& config, bool measure, int steps) {
  std::vector<LayerCountRow> rows;
  for (const char* arch : {"resnet18", "resnet50"}) {
    TrainConfig c = config;
    c.arch = arch, c.trainable = "last_layers";
    std::shared_ptr<models::ResNet> model = make_explained_model(c);  // one model per arch, every mask on it
    for (int l = 1; l <= 5; ++l) {
      c.layers = l;
      apply_step_setup(*model, c);
      LayerCountRow row{arch, l, explain_step(*model, c.batch_size, c.image_size, c.loss), std::nullopt};
      row.explanation.trainable = trainable_patterns(c);
      if (measure) row.measured = measure_step(*model, c, steps);
      rows.push_back(std::move(row));
    }
  }
  return rows;
}

// ---- the printed tables -----------------------------------------------------------------------------------

namespace {

std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return (n < 0 ? "-" : "") + out;
}

std::string mib(int64_t bytes) {
  return fmt::format("{:.2f}", double(bytes) / 1048576.0);
}

std::string gflop(double flops) {  // blank where a pass does not run
  return flops == 0 ? "" : fmt::format("{:.3f}", flops / 1e9);
}

std::string step_header(const StepExplanation& e) {
  return fmt::format(
      "thaw explain: one training step of {} ({} output{}, {} loss), batch {} of 3x{}x{} images, float32\n"
      "trainable: {}: {} of {} parameter tensors, {} of {} values ({:.1f}%)\n"
      "BatchNorm: {}{}\n{}\n",
      e.arch, e.num_outputs, e.num_outputs == 1 ? "" : "s", e.loss, e.batch, e.image_size, e.image_size,
      e.trainable, e.trainable_tensors, e.parameter_tensors, with_commas(e.trainable_params),
      with_commas(e.parameters), 100.0 * double(e.trainable_params) / double(e.parameters),
      e.bn_mode == "train" ? "train (batch statistics; running statistics updated)"
                           : "frozen (running statistics, never updated)",
      e.folded_pairs == 0
          ? ""
          : fmt::format("; {} of {} folded into their frozen convs (one conv with a bias each)",
                        e.folded_pairs, e.conv_bn_pairs),
      e.feature_cache.empty() ? "" : "feature cache: " + e.feature_cache + "\n");
}

std::string layer_table(const StepExplanation& e) {
  std::string out =
      "| layer | passes | nodes | bytes kept for backward | forward GFLOP | backward-data GFLOP | "
      "backward-weight GFLOP | trainable params |\n|---|---|--:|--:|--:|--:|--:|--:|\n";
  for (const LayerExplanation& r : e.layers())
    out += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} |\n", r.layer, r.passes, r.nodes,
                       with_commas(r.kept_bytes), gflop(r.forward_flops), gflop(r.backward_data_flops),
                       gflop(r.backward_weight_flops), with_commas(r.trainable_params));
  return out;
}

std::string op_table(const StepExplanation& e) {
  std::string out =
      "| module | op | shape | passes | node + sinks | keeps | bytes kept | forward GFLOP | backward-data "
      "GFLOP | backward-weight GFLOP | trainable params |\n|---|---|---|---|--:|---|--:|--:|--:|--:|--:|\n";
  for (const OpExplanation& op : e.ops)
    out += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", op.module,
                       op.folded.empty() ? op.op : op.op + " + " + op.folded + " folded", op.shape,
                       passes_of(op.backward_data, op.backward_weight), op.nodes(), op.kept,
                       with_commas(op.kept_bytes), gflop(op.forward_flops), gflop(op.backward_data_flops),
                       gflop(op.backward_weight_flops), with_commas(op.trainable_params));
  return out;
}

std::string layer_total_row(const StepExplanation& e) {
  return fmt::format("| total | | {} | {} | {} | {} | {} | {} |\n", e.nodes(), with_commas(e.kept_bytes()),
                     gflop(e.forward_flops()), gflop(e.backward_data_flops()),
                     gflop(e.backward_weight_flops()), with_commas(e.trainable_params));
}

std::string op_total_row(const StepExplanation& e) {
  return fmt::format("| total | | | | {} | | {} | {} | {} | {} | {} |\n", e.nodes(),
                     with_commas(e.kept_bytes()), gflop(e.forward_flops()), gflop(e.backward_data_flops()),
                     gflop(e.backward_weight_flops()), with_commas(e.trainable_params));
}

std::string step_summary(const StepExplanation& e) {
  return fmt::format(
      "\nnodes: {} recorded ops + {} gradient sinks = {}; kept for backward: {} bytes = {} MiB\n"
      "gradients the backward pass writes: {} bytes = {} MiB (one float per trainable value)\n"
      "GFLOP: forward {:.3f}, backward {:.3f} (data {:.3f} + weight {:.3f}) = {:.2f}x the forward\n",
      e.recorded_nodes(), e.gradient_sinks(), e.nodes(), with_commas(e.kept_bytes()), mib(e.kept_bytes()),
      with_commas(e.trainable_params * kFloatBytes), mib(e.trainable_params * kFloatBytes),
      e.forward_flops() / 1e9, e.backward_flops() / 1e9, e.backward_data_flops() / 1e9,
      e.backward_weight_flops() / 1e9, e.backward_flops() / e.forward_flops());
}

constexpr const char* kLegend =
    "\nF forward, D backward-data (the input's gradient), W backward-weight (the parameters' gradients).\n"
    "nodes: autograd nodes recorded, one per op with an input that requires grad, plus one gradient sink\n"
    "per trainable parameter tensor. bytes kept: what the graph holds from the forward pass until the\n"
    "backward pass (activations, BatchNorm statistics, max-pool indices, probabilities), each tensor once;\n"
    "weights, the batch and the outputs are held anyway. GFLOP: the convolutions and fc (2 x "
    "multiply-adds).\n";

}  // namespace

std::string format_step_explanation(const StepExplanation& e, bool per_op) {
  const std::string table = per_op ? op_table(e) + op_total_row(e) : layer_table(e) + layer_total_row(e);
  return step_header(e) + table + step_summary(e) + kLegend;
}

namespace {

std::string over_layers_header(const LayerCountRow& first) {
  const StepExplanation& e = first.explanation;
  std::string out = fmt::format("batch {} of 3x{}x{} images, BatchNorm {}, {} loss{}\n\n", e.batch,
                                e.image_size, e.image_size, e.bn_mode, e.loss,
                                first.measured ? ", measured on " + first.measured->device : "");
  out += "| model | l | trainable | trainable params | nodes | MiB kept for backward | forward GFLOP | ";
  out += first.measured ? "backward GFLOP | step ms (median) | peak MiB | step adds MiB |\n"
                          "|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|\n"
                        : "backward GFLOP |\n|---|--:|---|--:|--:|--:|--:|--:|\n";
  return out;
}

std::string over_layers_row(const LayerCountRow& r) {
  const StepExplanation& e = r.explanation;
  std::string out = fmt::format("| {} | {} | {} | {} | {} | {} | {:.2f} | {:.2f} |", r.arch, r.l, e.trainable,
                                with_commas(e.trainable_params), e.nodes(), mib(e.kept_bytes()),
                                e.forward_flops() / 1e9, e.backward_flops() / 1e9);
  if (r.measured)
    out += fmt::format(" {:.0f} | {} | {} |", r.measured->median_ms, mib(r.measured->peak_bytes),
                       mib(r.measured->peak_bytes - r.measured->start_bytes));
  return out + "\n";
}

}  // namespace

std::string format_over_layers(const std::vector<LayerCountRow>& rows) {
  if (rows.empty()) return "";
  std::string out = over_layers_header(rows.front());
  for (const LayerCountRow& r : rows)
    out += over_layers_row(r);
  return out;
}

std::string format_timeline_csv(const StepExplanation& e) {
  std::string out = fmt::format(
      "# thaw explain --timeline: one training step of {}, batch {} of 3x{}x{} images, trainable: {}, "
      "BatchNorm {}, {} loss\n"
      "# bytes of the tensors the step creates (the weights, the optimizer's state and the batch live "
      "between "
      "steps and are not counted): peak while the event runs, and after it\n"
      "event,phase,module,op,peak_bytes,after_bytes\n",
      e.arch, e.batch, e.image_size, e.image_size, e.trainable, e.bn_mode, e.loss);
  for (size_t i = 0; i < e.timeline.size(); ++i) {
    const MemoryEvent& m = e.timeline[i];
    out += fmt::format("{},{},{},{},{},{}\n", i, m.phase, m.module, m.op, m.peak_bytes, m.after_bytes);
  }
  return out;
}

}  // namespace thaw::train
