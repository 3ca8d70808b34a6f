// thaw explain's library (train/explain.h): a walk over a ResNet that applies autograd's recording rules op
// by op, the sums per layer, real steps for comparison, and the printed tables.
#include "train/explain.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>

#include "core/autograd.h"
#include "core/cuda_runtime.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/storage.h"
#include "kernels/ops.h"
#include "nn/layers.h"
#include "nn/losses.h"
#include "optim/freeze.h"
#include "optim/optimizer.h"
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

namespace {

constexpr int64_t kFloatBytes = 4, kInt32Bytes = 4;  // float32 activations; max-pool's int32 argmax

bool trains(const Tensor& parameter) {
  return parameter.defined() && parameter.requires_grad();
}

// A tensor of the forward pass as the walk sees it: its shape, the storage it views (a view shares it) and
// whether it requires grad.
struct Value {
  Shape shape;
  int storage = -1;
  bool requires_grad = false;
};

std::string per_image(const Shape& shape) {  // "64x56x56" for (N, 64, 56, 56)
  std::vector<int64_t> dims(shape.begin() + (shape.empty() ? 0 : 1), shape.end());
  return fmt::format("{}", fmt::join(dims, "x"));
}

class StepTracer {
 public:
  Value images(int64_t batch, int64_t image_size) {
    return new_value({batch, 3, image_size, image_size}, kFloatBytes, false, /*held_anyway=*/true);
  }
  Value conv2d(const std::string& layer, const std::string& module, const nn::Conv2d& m, const Value& x);
  Value batch_norm(const std::string& layer, const std::string& module, const nn::BatchNorm2d& m,
                   const Value& x, bool fused_relu);
  Value relu(const std::string& layer, const std::string& module, const Value& x);
  Value max_pool2d(const std::string& layer, const std::string& module, const nn::MaxPool2d& m,
                   const Value& x);
  Value add(const std::string& layer, const std::string& module, const Value& a, const Value& b);
  Value global_avg_pool2d(const std::string& layer, const std::string& module, const Value& x);
  Value flatten(const std::string& layer, const std::string& module, const Value& x);
  Value linear(const std::string& layer, const std::string& module, const nn::Linear& m, const Value& x);
  void loss(const std::string& kind, const Value& logits);

  std::vector<OpExplanation> take_ops() { return std::move(ops_); }

 private:
  struct StorageInfo {
    int64_t bytes = 0;
    bool held_anyway = false;  // parameters' storage is never a Value; the batch and the outputs are
    bool kept = false;         // some earlier node keeps it
  };

  Value new_value(const Shape& shape, int64_t element_bytes, bool requires_grad, bool held_anyway = false) {
    storages_.push_back({shape_numel(shape) * element_bytes, held_anyway, false});
    return {shape, int(storages_.size()) - 1, requires_grad};
  }
  OpExplanation& begin(const std::string& layer, const std::string& module, const char* op, const Shape& x,
                       const Shape& y) {
    ops_.push_back({});
    OpExplanation& e = ops_.back();
    e.layer = layer, e.module = module, e.op = op, e.shape = per_image(x) + " -> " + per_image(y);
    return e;
  }
  // The node of op keeps v (named `what`); its bytes count once, where the graph alone holds them.
  void keep(OpExplanation& op, const Value& v, const std::string& what) {
    StorageInfo& s = storages_[size_t(v.storage)];
    const char* note = s.held_anyway ? " (held anyway)" : s.kept ? " (kept above)" : "";
    op.kept += (op.kept.empty() ? "" : ", ") + what + note;
    if (!s.kept && !s.held_anyway) op.kept_bytes += s.bytes;
    s.kept = true;
  }
  // A recorded op's parameters: one gradient sink per trainable tensor, and its trainable values.
  static void count_trainable(OpExplanation& op, std::initializer_list<const Tensor*> parameters) {
    for (const Tensor* p : parameters) {
      if (!trains(*p)) continue;
      op.gradient_sinks += 1;
      op.trainable_params += p->numel();
    }
  }

  std::vector<StorageInfo> storages_;
  std::vector<OpExplanation> ops_;
};

// nn/functional/conv2d.cpp: keeps x when w trains (and w, a parameter, when x needs a gradient).
Value StepTracer::conv2d(const std::string& layer, const std::string& module, const nn::Conv2d& m,
                         const Value& x) {
  const Shape y = ops::conv2d_output_shape(x.shape, m.weight.shape(), m.params);
  OpExplanation& op = begin(layer, module, "conv2d", x.shape, y);
  const Shape& w = m.weight.shape();                                               // (K, C, R, S)
  const double flops = 2.0 * double(shape_numel(y)) * double(w[1] * w[2] * w[3]);  // 2 N K P Q C R S
  op.forward_flops = flops;
  op.records = x.requires_grad || trains(m.weight) || trains(m.bias);
  if (op.records) {
    op.backward_data = x.requires_grad;
    op.backward_weight = trains(m.weight) || trains(m.bias);
    op.backward_data_flops = x.requires_grad ? flops : 0;
    op.backward_weight_flops = trains(m.weight) ? flops : 0;
    count_trainable(op, {&m.weight, &m.bias});
    if (trains(m.weight)) keep(op, x, "x");
  }
  return new_value(y, kFloatBytes, op.records);
}

// nn/functional/batch_norm.cpp and batch_norm_relu.cpp: keep x, the batch's (or running) mean and inverse
// standard deviation (fresh (C,) tensors from the forward kernel), and the fused op also y (relu's mask).
Value StepTracer::batch_norm(const std::string& layer, const std::string& module, const nn::BatchNorm2d& m,
                             const Value& x, bool fused_relu) {
  OpExplanation& op = begin(layer, module, fused_relu ? "batch_norm_relu" : "batch_norm", x.shape, x.shape);
  op.records = x.requires_grad || trains(m.weight) || trains(m.bias);
  const Value y = new_value(x.shape, kFloatBytes, op.records);
  const Value mean = new_value({x.shape[1]}, kFloatBytes, false),
              invstd = new_value({x.shape[1]}, kFloatBytes, false);
  if (op.records) {
    op.backward_data = x.requires_grad;
    op.backward_weight = trains(m.weight) || trains(m.bias);
    count_trainable(op, {&m.weight, &m.bias});
    keep(op, x, "x");
    if (fused_relu) keep(op, y, "y");
    keep(op, mean, "mean");
    keep(op, invstd, "invstd");
  }
  return y;
}

// nn/functional/relu.cpp: keeps its output y.
Value StepTracer::relu(const std::string& layer, const std::string& module, const Value& x) {
  OpExplanation& op = begin(layer, module, "relu", x.shape, x.shape);
  op.records = op.backward_data = x.requires_grad;
  const Value y = new_value(x.shape, kFloatBytes, op.records);
  if (op.records) keep(op, y, "y");
  return y;
}

// nn/functional/max_pool2d.cpp: keeps the int32 argmax of each window.
Value StepTracer::max_pool2d(const std::string& layer, const std::string& module, const nn::MaxPool2d& m,
                             const Value& x) {
  const ops::Pool2dParams& p = m.params;
  const Shape y = {x.shape[0], x.shape[1], (x.shape[2] + 2 * p.pad_h - p.kernel_h) / p.stride_h + 1,
                   (x.shape[3] + 2 * p.pad_w - p.kernel_w) / p.stride_w + 1};
  OpExplanation& op = begin(layer, module, "max_pool2d", x.shape, y);
  op.records = op.backward_data = x.requires_grad;
  const Value argmax = new_value(y, kInt32Bytes, false);
  if (op.records) keep(op, argmax, "argmax (int32)");
  return new_value(y, kFloatBytes, op.records);
}

// nn/functional/elementwise.cpp: add keeps nothing (its backward hands dy to both inputs).
Value StepTracer::add(const std::string& layer, const std::string& module, const Value& a, const Value& b) {
  OpExplanation& op = begin(layer, module, "add", a.shape, a.shape);
  op.records = op.backward_data = a.requires_grad || b.requires_grad;
  return new_value(a.shape, kFloatBytes, op.records);
}

// nn/functional/global_avg_pool2d.cpp: keeps only x's shape.
Value StepTracer::global_avg_pool2d(const std::string& layer, const std::string& module, const Value& x) {
  const Shape y = {x.shape[0], x.shape[1], 1, 1};
  OpExplanation& op = begin(layer, module, "global_avg_pool2d", x.shape, y);
  op.records = op.backward_data = x.requires_grad;
  return new_value(y, kFloatBytes, op.records);
}

// nn/functional/elementwise.cpp: flatten is a view (the same storage), its node keeps only the shape.
Value StepTracer::flatten(const std::string& layer, const std::string& module, const Value& x) {
  const Shape y = {x.shape[0], shape_numel(x.shape) / x.shape[0]};
  OpExplanation& op = begin(layer, module, "flatten", x.shape, y);
  op.records = op.backward_data = x.requires_grad;
  return {y, x.storage, op.records};
}

// nn/functional/linear.cpp: keeps x when w trains (and w when x needs a gradient).
Value StepTracer::linear(const std::string& layer, const std::string& module, const nn::Linear& m,
                         const Value& x) {
  const Shape y = {x.shape[0], m.weight.size(0)};
  OpExplanation& op = begin(layer, module, "linear", x.shape, y);
  const double flops = 2.0 * double(x.shape[0]) * double(m.weight.numel());  // 2 N I O
  op.forward_flops = flops;
  op.records = x.requires_grad || trains(m.weight) || trains(m.bias);
  if (op.records) {
    op.backward_data = x.requires_grad;
    op.backward_weight = trains(m.weight) || trains(m.bias);
    op.backward_data_flops = x.requires_grad ? flops : 0;
    op.backward_weight_flops = trains(m.weight) ? flops : 0;
    count_trainable(op, {&m.weight, &m.bias});
    if (trains(m.weight)) keep(op, x, "x");
  }
  return new_value(y, kFloatBytes, op.records);
}

// nn/functional/cross_entropy.cpp keeps the softmax probabilities; bce_with_logits.cpp keeps the logits (held
// by the caller anyway) and the float targets that nn/losses.cpp makes from the labels.
void StepTracer::loss(const std::string& kind, const Value& logits) {
  THAW_CHECK(kind == "cross_entropy" || kind == "bce", "explain: loss '{}' is not cross_entropy or bce",
             kind);
  const bool ce = kind == "cross_entropy";
  OpExplanation& op = begin("loss", "loss", ce ? "cross_entropy" : "bce_with_logits", logits.shape, {1, 1});
  op.shape = per_image(logits.shape) + " -> loss";
  op.records = op.backward_data = logits.requires_grad;
  storages_[size_t(logits.storage)].held_anyway = true;            // the caller holds the logits
  const Value kept = new_value(logits.shape, kFloatBytes, false);  // probabilities, or targets
  if (!op.records) return;
  if (!ce) keep(op, logits, "logits");
  keep(op, kept, ce ? "probs" : "targets");
}

// ---- the ResNet, in the order of models/resnet.cpp's forward ----------------------------------------------

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

// BasicBlock: relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)); Bottleneck adds conv3/bn3, its bn2 fused
// with relu too. The shortcut (downsample.0 conv, downsample.1 BN) runs after the main branch.
Value trace_block(StepTracer& t, models::ResNet& model, const std::string& name, const Value& x) {
  const std::string& type = model.submodule(name).type_name();
  THAW_CHECK(type == "BasicBlock" || type == "Bottleneck", "explain: '{}' is a {}, not a ResNet block", name,
             type);
  const bool bottleneck = type == "Bottleneck";
  const auto conv = [&](const char* child) -> const nn::Conv2d& {
    return module_of<nn::Conv2d>(model, name + "." + child);
  };
  const auto bn = [&](const char* child) -> const nn::BatchNorm2d& {
    return module_of<nn::BatchNorm2d>(model, name + "." + child);
  };
  Value h = t.conv2d(name, name + ".conv1", conv("conv1"), x);
  h = t.batch_norm(name, name + ".bn1", bn("bn1"), h, /*fused_relu=*/true);
  h = t.conv2d(name, name + ".conv2", conv("conv2"), h);
  h = t.batch_norm(name, name + ".bn2", bn("bn2"), h, /*fused_relu=*/bottleneck);
  if (bottleneck) {
    h = t.conv2d(name, name + ".conv3", conv("conv3"), h);
    h = t.batch_norm(name, name + ".bn3", bn("bn3"), h, /*fused_relu=*/false);
  }
  Value shortcut = x;
  if (has_child(model.submodule(name), "downsample")) {
    shortcut = t.conv2d(name, name + ".downsample.0", conv("downsample.0"), x);
    shortcut = t.batch_norm(name, name + ".downsample.1", bn("downsample.1"), shortcut, /*fused_relu=*/false);
  }
  h = t.add(name, name, h, shortcut);
  return t.relu(name, name, h);
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

// conv1 - bn1 + relu (fused) - maxpool - layer1..4 - avgpool - flatten - fc - loss.
std::vector<OpExplanation> trace_resnet_step(models::ResNet& model, int64_t batch, int64_t image_size,
                                             const std::string& loss) {
  StepTracer t;
  Value h = t.images(batch, image_size);
  h = t.conv2d("conv1", "conv1", module_of<nn::Conv2d>(model, "conv1"), h);
  h = t.batch_norm("bn1", "bn1", module_of<nn::BatchNorm2d>(model, "bn1"), h, /*fused_relu=*/true);
  h = t.max_pool2d("maxpool", "maxpool", module_of<nn::MaxPool2d>(model, "maxpool"), h);
  for (int i = 1; i <= 4; ++i) {
    const std::string layer = "layer" + std::to_string(i);
    for (const auto& [block, _] : model.submodule(layer).children())
      h = trace_block(t, model, layer + "." + block, h);
  }
  h = t.global_avg_pool2d("avgpool", "avgpool", h);
  h = t.flatten("avgpool", "flatten", h);
  h = t.linear("fc", "fc", module_of<nn::Linear>(model, "fc"), h);
  t.loss(loss, h);
  return t.take_ops();
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
  for (const auto& [name, p] : model.named_parameters()) {
    e.parameter_tensors += 1, e.parameters += p.numel();
    if (!p.requires_grad()) continue;
    e.trainable_tensors += 1, e.trainable_params += p.numel();
  }
  e.ops = trace_resnet_step(model, batch, image_size, loss);
  return e;
}

StepExplanation explain_config(const TrainConfig& config, int64_t epoch) {
  auto model = make_explained_model(config, epoch);
  StepExplanation e = explain_step(*model, config.batch_size, config.image_size, config.loss);
  e.trainable = trainable_patterns(config, epoch);
  return e;
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
      "BatchNorm: {}\n\n",
      e.arch, e.num_outputs, e.num_outputs == 1 ? "" : "s", e.loss, e.batch, e.image_size, e.image_size,
      e.trainable, e.trainable_tensors, e.parameter_tensors, with_commas(e.trainable_params),
      with_commas(e.parameters), 100.0 * double(e.trainable_params) / double(e.parameters),
      e.bn_mode == "train" ? "train (batch statistics; running statistics updated)"
                           : "frozen (running statistics, never updated)");
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
    out += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", op.module, op.op,
                       op.shape, passes_of(op.backward_data, op.backward_weight), op.nodes(), op.kept,
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

}  // namespace thaw::train
