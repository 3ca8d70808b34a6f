// thaw explain (train/explain.h) against reality: the CPU memory counters of core/storage.h; the nodes and
// bytes an explanation predicts against those one real forward pass records and keeps, and its memory
// timeline against a real step's, phase by phase, for many masks and both BatchNorm modes; counts worked out
// by hand; the conv FLOPs against thaw bench kernels' tables.
#include <map>
#include <memory>
#include <sstream>

#include "bench/kernels/problems.h"
#include "core/autograd.h"
#include "core/rng.h"
#include "core/storage.h"
#include "kernels/ops.h"
#include "nn/functional.h"
#include "nn/losses.h"
#include "optim/optimizer.h"
#include "tests/support/catch.h"
#include "train/explain.h"

using namespace thaw;

namespace {

train::TrainConfig config_of(const std::string& arch, const std::string& trainable, int64_t layers = 1) {
  train::TrainConfig c;
  c.arch = arch, c.trainable = trainable, c.layers = layers;
  c.batch_size = 2, c.image_size = 64;  // small enough for a real ResNet50 forward in a test
  return c;
}

int64_t in_use() {
  return int64_t(cpu_memory_stats().in_use);
}

// What a real backward holds when it reaches a trainable parameter's gradient sink: the bytes alive then, and
// the most since the sink before it (or since the backward began), both above the bytes alive before the
// step.
struct SinkReading {
  std::string parameter;
  int64_t in_use = 0, peak = 0;
};

// Stands in for a parameter's AccumulateGrad (nn/autograd_nodes.cpp), installed with set_grad_accumulator
// before the forward so that autograd links the graph to it: reads the CPU counters when the backward
// reaches it, then does what AccumulateGrad does in a step that starts without gradients.
class ProbeSink : public Node {
 public:
  ProbeSink(Tensor leaf, std::string parameter, int64_t base, std::vector<SinkReading>& readings)
      : Node("ProbeSink"),
        leaf_(std::move(leaf)),
        parameter_(std::move(parameter)),
        base_(base),
        readings_(readings) {}
  std::vector<Tensor> apply(const Tensor& grad) override {
    readings_.push_back({parameter_, in_use() - base_, int64_t(cpu_memory_stats().peak_in_use) - base_});
    reset_cpu_peak();
    REQUIRE(!leaf_.grad().defined());
    leaf_.set_grad(grad.clone());
    return {};
  }
  Tensor sum_gradients(const Tensor& a, const Tensor& b) override { return ops::add(a, b); }

 private:
  Tensor leaf_;
  std::string parameter_;
  int64_t base_;
  std::vector<SinkReading>& readings_;
};

// One real training step (forward and loss, backward, SGD's first step, zero_grad), read from the CPU
// counters where a caller can read them: what it adds to the bytes alive at its start, at each phase's end,
// and its peak within each phase (reset_cpu_peak() at the phase's start); and inside the backward, at each
// gradient sink. Also what the forward pass alone left alive besides its outputs, and the autograd nodes it
// created; and it checks that backward frees the graph and reaches exactly the trainable parameters.
struct RealPhase {
  int64_t peak = 0, end = 0;
};
struct RealStep {
  int64_t kept_bytes = 0, nodes = 0;
  RealPhase forward, backward, step, zero_grad, end;
  std::vector<SinkReading> sinks;  // in the order the backward reached them
};

RealStep run_real_step(models::ResNet& model, const train::TrainConfig& c) {
  Generator gen(7);
  const Tensor images = Tensor::normal({c.batch_size, 3, c.image_size, c.image_size}, 0, 1, gen);
  std::vector<int64_t> y(size_t(c.batch_size));
  for (int64_t& label : y)
    label = gen.next_int(0, c.loss == "bce" ? 2 : c.num_outputs());
  const Tensor labels = Tensor::from_data<int64_t>({c.batch_size}, y);
  optim::SGD optimizer({{model.named_parameters(), 0.01, 0, "all"}}, /*momentum=*/0.9, /*nesterov=*/false);
  {  // the folded conv + BatchNorm weights (nn/conv_bn.h) this mask uses: made once, held between steps
    NoGradGuard no_grad;
    model.forward(images);
  }

  const int64_t bytes_before = in_use(), nodes_before = Node::live_count();
  const auto read = [bytes_before](RealPhase& phase) {
    phase.peak = int64_t(cpu_memory_stats().peak_in_use) - bytes_before;
    phase.end = in_use() - bytes_before;
    reset_cpu_peak();
  };
  RealStep real;
  {
    std::vector<std::shared_ptr<ProbeSink>> probes;
    for (const auto& [name, p] : model.named_parameters()) {
      if (!p.requires_grad()) continue;
      probes.push_back(std::make_shared<ProbeSink>(p, name, bytes_before, real.sinks));
      p.set_grad_accumulator(probes.back());
    }
    reset_cpu_peak();
    const Tensor logits = model.forward(images);
    const Tensor loss =
        c.loss == "bce" ? nn::BCEWithLogitsLoss()(logits, labels) : nn::CrossEntropyLoss()(logits, labels);
    read(real.forward);
    real.kept_bytes = real.forward.end - int64_t(logits.nbytes() + loss.nbytes());
    real.nodes = Node::live_count() - nodes_before;
    loss.backward();
    read(real.backward);
    for (const SinkReading& r : real.sinks)  // the probes reset the peak
      real.backward.peak = std::max(real.backward.peak, r.peak);
    for (const auto& [name, p] : model.named_parameters()) {
      INFO(name);
      REQUIRE(p.grad().defined() == p.requires_grad());
    }
    optimizer.step();
    read(real.step);
    optimizer.zero_grad();
    read(real.zero_grad);
  }
  read(real.end);
  REQUIRE(Node::live_count() == nodes_before);  // the graph is gone with the outputs
  return real;
}

// The timeline's events of one phase, as the real step reads them: the most bytes alive during the phase,
// and the bytes alive after its last event.
RealPhase explained_phase(const train::StepExplanation& e, const std::string& phase,
                          const std::string& op = "") {
  RealPhase p{-1, -1};
  for (const train::MemoryEvent& event : e.timeline) {
    if (event.phase != phase || (!op.empty() && event.op != op)) continue;
    p.peak = std::max(p.peak, event.peak_bytes);
    p.end = event.after_bytes;
  }
  return p;
}

// The backward seen from inside: at each gradient sink, in the order the real backward reached them, the
// bytes alive must be those the timeline has when the sink's event starts, and the peak since the sink before
// the timeline's peak over the events in between.
void check_sinks(const RealStep& real, const train::StepExplanation& e) {
  std::vector<size_t> sinks;
  size_t from = e.timeline.size();  // the first event of the backward
  for (size_t j = 0; j < e.timeline.size(); ++j) {
    if (e.timeline[j].phase == "backward") from = std::min(from, j);
    if (e.timeline[j].op == "accumulate_grad") sinks.push_back(j);
  }
  REQUIRE(real.sinks.size() == sinks.size());
  for (size_t i = 0; i < sinks.size(); ++i) {
    const size_t j = sinks[i];
    INFO("sink " << i << ": " << real.sinks[i].parameter);
    CHECK(real.sinks[i].parameter == e.timeline[j].module);
    CHECK(real.sinks[i].in_use == e.timeline[j - 1].after_bytes);
    int64_t peak = 0;
    for (size_t k = from; k < j; ++k)
      peak = std::max(peak, e.timeline[k].peak_bytes);
    CHECK(real.sinks[i].peak == peak);
    from = j;
  }
}

// Each ResNet block run alone, on an input that requires grad where the step's does: the most bytes it adds
// to those alive at its start must be the timeline's peak over the block's ops above the bytes alive when its
// first op starts (what lives around a block, kept earlier or held by its callers, stays put while it runs).
void check_block_peaks(models::ResNet& model, const train::StepExplanation& e) {
  Generator gen(11);
  for (size_t first = 0, end = 0; first < e.ops.size(); first = end) {
    const std::string& block = e.ops[first].layer;
    for (end = first; end < e.ops.size() && e.ops[end].layer == block;)
      ++end;
    if (block.rfind("layer", 0) != 0) continue;  // the stem, avgpool, fc, loss
    const train::OpExplanation& conv1 = e.ops[first];
    Shape shape = {e.batch};  // conv1.shape: "64x56x56 -> 64x56x56"
    std::istringstream dims(conv1.shape.substr(0, conv1.shape.find(' ')));
    for (std::string d; std::getline(dims, d, 'x');)
      shape.push_back(std::stoll(d));
    int64_t explained = 0;
    for (size_t i = first; i < end; ++i)
      explained = std::max(explained, e.timeline[i].peak_bytes);
    explained -= first > 0 ? e.timeline[first - 1].after_bytes : 0;

    Tensor leaf = Tensor::normal(shape, 0, 1, gen);
    if (conv1.backward_data) leaf.set_requires_grad(true);
    const Tensor x = conv1.backward_data ? nn::functional::relu(leaf) : leaf;  // not a leaf, as in the step
    const int64_t start = in_use();
    reset_cpu_peak();
    { const Tensor y = model.submodule(block).forward(x); }
    INFO(block);
    CHECK(int64_t(cpu_memory_stats().peak_in_use) - start == explained);
  }
}

}  // namespace

TEST_CASE("cpu_memory_stats counts the bytes of CPU storage alive, its peak and its allocations") {
  const CpuMemoryStats start = cpu_memory_stats();
  {
    const Tensor a = Tensor::empty({1000});  // 4,000 bytes
    REQUIRE(cpu_memory_stats().in_use == start.in_use + 4000);
    REQUIRE(cpu_memory_stats().allocations == start.allocations + 1);
    const Tensor view = a.reshape({10, 100});  // a view: the same storage, no new bytes
    const Tensor d = Tensor::zeros({5}, DType::Float64);
    REQUIRE(cpu_memory_stats().in_use == start.in_use + 4040);
    REQUIRE(cpu_memory_stats().peak_in_use >= start.in_use + 4040);
  }
  REQUIRE(cpu_memory_stats().in_use == start.in_use);
  reset_cpu_peak();
  REQUIRE(cpu_memory_stats().peak_in_use == start.in_use);
  { const Tensor b = Tensor::empty({10}, DType::Int64); }
  REQUIRE(cpu_memory_stats().peak_in_use == start.in_use + 80);  // the peak remembers b
  REQUIRE(cpu_memory_stats().in_use == start.in_use);
}

TEST_CASE("explain's nodes, bytes kept and memory timeline equal what a real step records, keeps and holds") {
  struct Case {
    const char* what;
    train::TrainConfig config;
    int64_t epoch = 1;
  };
  std::vector<Case> cases = {
      {"resnet18 head only", config_of("resnet18", "last_layers", 1)},
      {"resnet18 l = 3", config_of("resnet18", "last_layers", 3)},
      {"resnet18 everything (conv1 keeps the images, which the batch holds)", config_of("resnet18", "all")},
      {"resnet18 BatchNorm only", config_of("resnet18", "bn_only")},
      {"resnet18 a downsample conv alone (it keeps x; no other op records before it)",
       config_of("resnet18", "patterns")},
      {"resnet18 gradual at epoch 3: fc and layer4", config_of("resnet18", "gradual"), 3},
      {"resnet18 species, bce (keeps logits and targets)", config_of("resnet18", "last_layers", 2)},
      {"resnet50 l = 3", config_of("resnet50", "last_layers", 3)},
      {"resnet50 everything", config_of("resnet50", "all")},
  };
  cases[4].config.patterns = {"layer3.0.downsample.0"};
  cases[6].config.task = "species", cases[6].config.loss = "bce";
  std::map<std::string, std::shared_ptr<models::ResNet>> models;  // one per arch and head: masks change
  for (const char* bn_mode : {"train", "frozen"}) {
    for (Case& k : cases) {
      k.config.bn_mode = bn_mode;
      INFO(k.what << ", BatchNorm " << bn_mode);
      auto& model = models[k.config.arch + std::to_string(k.config.num_outputs())];
      if (!model) model = train::make_explained_model(k.config);
      train::apply_step_setup(*model, k.config, k.epoch);
      const train::StepExplanation e =
          train::explain_step(*model, k.config.batch_size, k.config.image_size, k.config.loss);
      REQUIRE(e.bn_mode == bn_mode);
      const RealStep real = run_real_step(*model, k.config);
      CHECK(real.nodes == e.nodes());
      CHECK(real.kept_bytes == e.kept_bytes());
      CHECK(e.trainable_params == model->num_parameters(/*trainable_only=*/true));
      CHECK(e.gradient_sinks() == e.trainable_tensors);  // every trainable tensor is read by one recorded op

      // The memory timeline, phase by phase, to the byte: peaks and ends of the forward and the backward.
      const RealPhase forward = explained_phase(e, "forward"), backward = explained_phase(e, "backward");
      CHECK(real.forward.peak == forward.peak);
      CHECK(real.forward.end == forward.end);
      CHECK(real.backward.peak == backward.peak);
      CHECK(real.backward.end == backward.end);
      CHECK(backward.end == forward.end - e.kept_bytes() + e.trainable_params * 4);  // the gradients
      // The timeline's step is a later one; this first step also allocates SGD's momentum, one float per
      // trainable value, which then lives between steps: the only difference from here on.
      const int64_t momentum = e.trainable_params * 4;
      CHECK(real.step.end == explained_phase(e, "optimizer", "step").end + momentum);
      CHECK(real.zero_grad.end == explained_phase(e, "optimizer", "zero_grad").end + momentum);
      CHECK(real.end.end == explained_phase(e, "end").end + momentum);
      CHECK(explained_phase(e, "end").end == 0);
      check_sinks(real, e);
      check_block_peaks(*model, e);
    }
  }
}

TEST_CASE("explain's memory peak is the one thaw explain --measure reads of a real step, to the byte") {
  // measure_step times steps after a warm-up one, which allocated the optimizer's state: the steps the
  // timeline replays, whatever the optimizer (its updates run in place).
  for (const int64_t l : {1, 3, 5}) {
    for (const char* optimizer : {"sgd", "adam"}) {
      train::TrainConfig c = config_of("resnet18", "last_layers", l);
      c.optimizer = optimizer;
      INFO("l = " << l << ", " << optimizer);
      const auto model = train::make_explained_model(c);
      const train::StepExplanation e = train::explain_step(*model, c.batch_size, c.image_size, c.loss);
      const train::StepMeasurement m = train::measure_step(*model, c, 1);
      CHECK(m.peak_bytes - m.start_bytes == e.peak_bytes());
    }
  }
}

TEST_CASE("explain by hand: ResNet18 head only, and everything trainable") {
  train::TrainConfig c = config_of("resnet18", "last_layers", 1);
  c.batch_size = 4, c.image_size = 224;
  const train::StepExplanation head = train::explain_config(c);
  // linear and cross_entropy record (2) + fc.weight and fc.bias sinks (2); fc keeps its input (4 x 512
  // floats), cross_entropy its probabilities (4 x 37 floats); fc's input needs no gradient: no backward-data.
  REQUIRE(head.nodes() == 4);
  REQUIRE(head.kept_bytes() == 4 * 512 * 4 + 4 * 37 * 4);
  REQUIRE(head.trainable_params == 512 * 37 + 37);
  REQUIRE(head.backward_data_flops() == 0);
  REQUIRE(head.backward_weight_flops() == 2.0 * 4 * 512 * 37);
  REQUIRE(head.trainable == "fc");
  REQUIRE(head.feature_cache == "not used: bn1 uses batch statistics (bn_mode = \"train\")");
  c.bn_mode = "frozen";  // now the backbone's outputs are a function of the image: thaw train caches them
  REQUIRE_THAT(train::explain_config(c).feature_cache,
               ContainsSubstring(
                   "stem..avgpool is computed once per image (fc trains), so a training step runs fc only"));
  c.bn_mode = "train";
  const std::vector<train::LayerExplanation> rows = head.layers();
  REQUIRE(rows.size() == 14);  // conv1, bn1, maxpool, 8 blocks, avgpool, fc, loss
  REQUIRE(rows[0].layer == "conv1");
  REQUIRE(rows[0].passes == "F");
  REQUIRE(rows[12].layer == "fc");
  REQUIRE(rows[12].passes == "F W");

  c.trainable = "bn_only";  // explain_step names the trainable children from the model's flags
  REQUIRE(train::explain_step(*train::make_explained_model(c), 4, 224, c.loss).trainable ==
          "bn1, layer1 (partly), layer2 (partly), layer3 (partly), layer4 (partly), fc");

  c.trainable = "all";
  const train::StepExplanation all = train::explain_config(c);
  // Ops: the stem 3 (conv1, bn1 + relu, maxpool); 8 blocks of conv, bn + relu, conv, bn, add + relu (5) and
  // 3 downsample branches (conv, bn); avgpool, flatten, fc, loss (4). Sinks: the 62 parameter tensors.
  REQUIRE(all.recorded_nodes() == 3 + 8 * 5 + 3 * 2 + 4);
  REQUIRE(all.gradient_sinks() == 62);
  REQUIRE(all.trainable_tensors == 62);
  REQUIRE(all.layers()[0].passes == "F W");  // conv1: the images need no gradient
  REQUIRE(all.backward_data_flops() == all.forward_flops() - all.ops[0].forward_flops);
  REQUIRE(all.backward_weight_flops() == all.forward_flops());
}

TEST_CASE("explain's conv FLOPs of a full training step are thaw bench kernels' (bench/kernels/problems.h)") {
  for (const char* arch : {"resnet18", "resnet50"}) {
    INFO(arch);
    train::TrainConfig c = config_of(arch, "all");
    c.batch_size = 32, c.image_size = 224;
    const train::StepExplanation e = train::explain_config(c);
    std::map<std::string, const train::OpExplanation*> by_module;
    for (const train::OpExplanation& op : e.ops)
      by_module[op.module] = &op;
    std::map<bench::OpKind, double> bench_total;
    for (const bench::Problem& p : bench::network_ops(arch, 32, 224, 37)) {
      if (!bench::is_conv(p.op)) continue;
      bench_total[p.op] += p.flops();
      const std::string module = p.layers.at(0).substr(std::string(arch).size() + 1);  // "resnet18 conv1"
      INFO(module << " " << bench::op_name(p.op));
      REQUIRE(by_module.count(module) == 1);
      const train::OpExplanation& op = *by_module[module];
      REQUIRE(op.op == "conv2d");
      const double explained = p.op == bench::OpKind::ConvForward        ? op.forward_flops
                               : p.op == bench::OpKind::ConvBackwardData ? op.backward_data_flops
                                                                         : op.backward_weight_flops;
      REQUIRE(explained == p.flops());
    }
    const train::OpExplanation& fc = *by_module.at("fc");  // not in the bench tables (cuBLAS)
    REQUIRE(e.forward_flops() - fc.forward_flops == bench_total[bench::OpKind::ConvForward]);
    REQUIRE(e.backward_data_flops() - fc.backward_data_flops == bench_total[bench::OpKind::ConvBackwardData]);
    REQUIRE(e.backward_weight_flops() - fc.backward_weight_flops ==
            bench_total[bench::OpKind::ConvBackwardWeight]);
  }
}

TEST_CASE("explain: the l table follows the report's masks, and the config's errors name the key") {
  train::TrainConfig c = config_of("resnet18", "last_layers", 1);
  const std::vector<train::LayerCountRow> rows = train::explain_over_layers(c, /*measure=*/false, 1);
  REQUIRE(rows.size() == 10);
  for (size_t i = 1; i < rows.size(); ++i) {
    if (rows[i].arch != rows[i - 1].arch) continue;
    // Each more layer that trains records more, keeps more and computes more backward.
    REQUIRE(rows[i].explanation.nodes() > rows[i - 1].explanation.nodes());
    REQUIRE(rows[i].explanation.kept_bytes() > rows[i - 1].explanation.kept_bytes());
    REQUIRE(rows[i].explanation.backward_flops() > rows[i - 1].explanation.backward_flops());
    REQUIRE(rows[i].explanation.forward_flops() == rows[i - 1].explanation.forward_flops());
  }
  REQUIRE(rows[4].explanation.trainable == "layer4, layer3, layer2, layer1, fc");
  REQUIRE(rows[5].arch == "resnet50");
  REQUIRE(train::format_over_layers(rows).find("| resnet50 | 3 | layer4, layer3, fc |") != std::string::npos);

  c.trainable = "nonsense";
  REQUIRE_THROWS_WITH(train::explain_config(c), ContainsSubstring("trainable: 'nonsense'"));
  c.trainable = "gradual";
  REQUIRE_THROWS_WITH(train::explain_config(c, 0), ContainsSubstring("epochs count from 1"));
}
