// thaw explain (train/explain.h) against reality: the CPU memory counters of core/storage.h; the nodes and
// bytes an explanation predicts against those one real forward pass records and keeps, for many masks and
// both BatchNorm modes; counts worked out by hand; the conv FLOPs against thaw bench kernels' tables.
#include <map>
#include <memory>

#include "bench/kernels/problems.h"
#include "core/autograd.h"
#include "core/rng.h"
#include "core/storage.h"
#include "nn/losses.h"
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

// What one real forward pass (model and loss, grad mode on) leaves alive besides its outputs, and the
// autograd nodes it created; then checks that backward frees all of it and reaches exactly the trainable
// parameters.
struct RealForward {
  int64_t kept_bytes = 0, nodes = 0;
};

RealForward run_real_forward(models::ResNet& model, const train::TrainConfig& c) {
  Generator gen(7);
  const Tensor images = Tensor::normal({c.batch_size, 3, c.image_size, c.image_size}, 0, 1, gen);
  std::vector<int64_t> y(size_t(c.batch_size));
  for (int64_t& label : y)
    label = gen.next_int(0, c.loss == "bce" ? 2 : c.num_outputs());
  const Tensor labels = Tensor::from_data<int64_t>({c.batch_size}, y);

  const int64_t bytes_before = in_use(), nodes_before = Node::live_count();
  RealForward real;
  {
    const Tensor logits = model.forward(images);
    const Tensor loss =
        c.loss == "bce" ? nn::BCEWithLogitsLoss()(logits, labels) : nn::CrossEntropyLoss()(logits, labels);
    real.kept_bytes = in_use() - bytes_before - int64_t(logits.nbytes() + loss.nbytes());
    real.nodes = Node::live_count() - nodes_before;
    loss.backward();
  }
  REQUIRE(Node::live_count() == nodes_before);  // the graph is gone with the outputs
  for (const auto& [name, p] : model.named_parameters()) {
    INFO(name);
    REQUIRE(p.grad().defined() == p.requires_grad());
    p.zero_grad();
  }
  REQUIRE(in_use() == bytes_before);  // and so is everything it kept
  return real;
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

TEST_CASE("explain's nodes and bytes kept equal what a real forward pass records and keeps") {
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
      const RealForward real = run_real_forward(*model, k.config);
      CHECK(real.nodes == e.nodes());
      CHECK(real.kept_bytes == e.kept_bytes());
      CHECK(e.trainable_params == model->num_parameters(/*trainable_only=*/true));
      CHECK(e.gradient_sinks() == e.trainable_tensors);  // every trainable tensor is read by one recorded op
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
  // Ops: the stem 3 (conv1, bn1 + relu, maxpool); 8 blocks of conv, bn + relu, conv, bn, add, relu (6) and
  // 3 downsample branches (conv, bn); avgpool, flatten, fc, loss (4). Sinks: the 62 parameter tensors.
  REQUIRE(all.recorded_nodes() == 3 + 8 * 6 + 3 * 2 + 4);
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
