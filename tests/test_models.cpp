// Modules, layers and ResNet18/50: torchvision's names, shapes and parameter counts; train/eval and
// BatchNorm modes; head replacement; a frozen backbone that records no graph; weights files, strict.
#include <cmath>
#include <filesystem>
#include <functional>
#include <set>

#include "core/autograd.h"
#include "core/error.h"
#include "core/hdf5_file.h"
#include "models/resnet.h"
#include "models/weights.h"
#include "nn/losses.h"
#include "tests/support/allclose.h"
#include "tests/support/catch.h"

using namespace thaw;
namespace fs = std::filesystem;

namespace {

std::map<std::string, Tensor> names_and_shapes(const nn::NamedTensors& list) {
  return std::map<std::string, Tensor>(list.begin(), list.end());
}

std::string scratch(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / "thaw-test-models";
  fs::create_directories(dir);
  return (dir / name).string();
}

}  // namespace

TEST_CASE("resnet18 and resnet50 have torchvision's parameter names, shapes and counts") {
  Generator gen(0);
  auto r18 = models::resnet18(1000, gen);
  auto r50 = models::resnet50(1000, gen);
  // torchvision: sum(p.numel() for p in resnet18().parameters()) and the same for resnet50.
  REQUIRE(r18->num_parameters() == 11689512);
  REQUIRE(r50->num_parameters() == 25557032);
  const auto p18 = names_and_shapes(r18->named_parameters());
  REQUIRE(p18.size() == 62);
  REQUIRE(p18.at("conv1.weight").shape() == Shape{64, 3, 7, 7});
  REQUIRE(p18.at("layer2.0.downsample.0.weight").shape() == Shape{128, 64, 1, 1});
  REQUIRE(p18.at("layer2.0.downsample.1.bias").shape() == Shape{128});
  REQUIRE(p18.at("layer4.1.conv2.weight").shape() == Shape{512, 512, 3, 3});
  REQUIRE(p18.at("fc.weight").shape() == Shape{1000, 512});
  REQUIRE(p18.count("layer1.0.downsample.0.weight") == 0);  // layer1 keeps 64 channels at stride 1
  const auto p50 = names_and_shapes(r50->named_parameters());
  REQUIRE(p50.size() == 161);
  REQUIRE(p50.at("layer1.0.downsample.0.weight").shape() == Shape{256, 64, 1, 1});  // expansion 4
  REQUIRE(p50.at("layer3.5.conv3.weight").shape() == Shape{1024, 256, 1, 1});
  REQUIRE(p50.at("fc.weight").shape() == Shape{1000, 2048});
  const auto b18 = names_and_shapes(r18->named_buffers());
  REQUIRE(b18.size() == 40);  // running_mean + running_var of 20 BatchNorm layers
  REQUIRE(b18.at("layer3.1.bn2.running_var").shape() == Shape{256});
}

TEST_CASE("resnet forward shapes, and torchvision's initialisation statistics") {
  Generator gen(1);
  auto model = models::resnet18(10, gen);
  const Tensor x = Tensor::normal({2, 3, 64, 64}, 0, 1, gen);
  NoGradGuard no_grad;
  REQUIRE(model->forward(x).shape() == Shape{2, 10});
  REQUIRE(model->features(x).shape() == Shape{2, 512});
  // kaiming_normal_(fan_out, relu): std sqrt(2 / (64 * 3 * 3)) for layer1 convs
  const auto w = model->parameter("layer1.0.conv1.weight").to_vector<float>();
  double sq = 0;
  for (float v : w)
    sq += double(v) * v;
  REQUIRE(std::abs(std::sqrt(sq / double(w.size())) - std::sqrt(2.0 / 576)) < 0.003);
  REQUIRE(model->parameter("bn1.weight").to_vector<float>() == std::vector<float>(64, 1.0f));
  const auto fc = model->parameter("fc.weight").to_vector<float>();
  const float bound = 1.0f / std::sqrt(512.0f);
  for (float v : fc)
    REQUIRE(std::abs(v) <= bound);
  REQUIRE_THROWS_WITH(model->forward(Tensor::zeros({2, 1, 64, 64})), ContainsSubstring("(N, 3, H, W)"));
}

TEST_CASE("train/eval reach every layer and BatchNorm mode is set by name pattern independently") {
  Generator gen(2);
  auto model = models::resnet18(10, gen);
  model->eval();
  for (const auto& [name, m] : model->named_modules())
    REQUIRE_FALSE(m->is_training());
  model->train();
  auto& bn = dynamic_cast<nn::BatchNorm2d&>(model->submodule("layer3.1.bn2"));
  REQUIRE(bn.uses_batch_stats());
  REQUIRE(nn::set_batch_norm_mode(*model, {"layer3", "layer4"}, nn::BatchNormMode::Frozen) == 10);
  REQUIRE_FALSE(bn.uses_batch_stats());
  REQUIRE(dynamic_cast<nn::BatchNorm2d&>(model->submodule("layer2.0.bn1")).uses_batch_stats());
  REQUIRE(bn.weight.requires_grad());  // frozen statistics, trainable affine parameters
  REQUIRE_THROWS_WITH(nn::set_batch_norm_mode(*model, {"layer9"}, nn::BatchNormMode::Frozen),
                      ContainsSubstring("match no BatchNorm layer"));
  REQUIRE_THROWS_WITH(nn::parse_batch_norm_mode("eval"), ContainsSubstring("expected 'train' or 'frozen'"));
}

TEST_CASE("frozen BatchNorm uses and keeps its running statistics in train mode") {
  Generator gen(3);
  nn::BatchNorm2d bn(4);
  bn.running_mean.copy_(Tensor::from_data<float>({4}, {1, -1, 0.5f, 2}));
  const Tensor x = Tensor::normal({3, 4, 5, 5}, 0, 2, gen);
  bn.train();
  bn.forward(x);
  REQUIRE(bn.running_mean.to_vector<float>() != std::vector<float>{1, -1, 0.5f, 2});  // updated
  const std::vector<float> before = bn.running_mean.to_vector<float>();
  bn.set_mode(nn::BatchNormMode::Frozen);
  const Tensor y = bn.forward(x);
  REQUIRE(bn.running_mean.to_vector<float>() == before);
  bn.eval();
  REQUIRE_ALLCLOSE(bn.forward(x), y, 0, 0);  // frozen in train() == eval()
}

TEST_CASE("a frozen backbone records no graph: head-only training keeps nothing of the backbone alive") {
  Generator gen(4);
  auto model = models::resnet18(5, gen);
  for (auto& [name, p] : model->named_parameters())
    p.set_requires_grad(name.rfind("fc.", 0) == 0);
  const Tensor x = Tensor::normal({2, 3, 32, 32}, 0, 1, gen);
  const int64_t before = Node::live_count();
  Tensor loss = nn::CrossEntropyLoss()(model->forward(x), Tensor::from_data<int64_t>({2}, {1, 3}));
  // LinearBackward, CrossEntropyBackward and the gradient sinks of fc.weight and fc.bias
  REQUIRE(Node::live_count() - before == 4);
  loss.backward();
  REQUIRE(model->parameter("fc.weight").grad().defined());
  REQUIRE_FALSE(model->parameter("layer4.1.conv2.weight").grad().defined());
}

TEST_CASE("replace_head gives a new fc and leaves the backbone untouched") {
  Generator gen(5);
  auto model = models::resnet18(1000, gen);
  const std::vector<float> conv = model->parameter("layer4.1.conv2.weight").to_vector<float>();
  model->replace_head(37, gen);
  REQUIRE(model->num_classes() == 37);
  REQUIRE(model->parameter("fc.weight").shape() == Shape{37, 512});
  REQUIRE(model->parameter("fc.bias").shape() == Shape{37});
  REQUIRE(model->parameter("layer4.1.conv2.weight").to_vector<float>() == conv);
  NoGradGuard no_grad;
  model->eval();  // (in train mode one 32x32 image leaves one value per channel in layer4: an error)
  REQUIRE(model->forward(Tensor::zeros({1, 3, 32, 32})).shape() == Shape{1, 37});
}

TEST_CASE("load_state_dict is strict and lists every problem at once") {
  Generator gen(6);
  nn::Linear a(3, 2, true, gen), b(3, 2, true, gen);
  std::map<std::string, Tensor> state = names_and_shapes(a.state_dict());
  b.load_state_dict(state);
  REQUIRE(b.weight.to_vector<float>() == a.weight.to_vector<float>());
  state.erase("bias");
  state["weight"] = Tensor::zeros({2, 4});
  state["extra"] = Tensor::zeros({1});
  REQUIRE_THROWS_WITH(b.load_state_dict(state),
                      ContainsSubstring("missing 'bias'") &&
                          ContainsSubstring("'weight' has shape [2, 4], expected [2, 3]") &&
                          ContainsSubstring("unexpected 'extra'"));
}

TEST_CASE("weights files: save and load round trip exactly and the head is replaced only when asked") {
  Generator gen(7);
  auto source = models::resnet18(37, gen);
  const std::string path = scratch("r18.h5");
  models::save_weights(*source, path, "test");
  auto target = models::resnet18(37, gen);
  const models::WeightsFile info = models::load_weights(*target, path);
  REQUIRE(info.arch == "resnet18");
  REQUIRE(info.num_classes == 37);
  const auto loaded = names_and_shapes(target->state_dict());
  for (const auto& [name, t] : source->state_dict())
    REQUIRE(loaded.at(name).to_vector<float>() == t.to_vector<float>());

  auto binary = models::resnet18(1, gen);
  REQUIRE_THROWS_WITH(
      models::load_weights(*binary, path),
      ContainsSubstring("'fc.weight' has shape [37, 512] in the file, the model expects [1, 512]") &&
          ContainsSubstring("ask to replace it"));
  const std::vector<float> new_head = binary->parameter("fc.weight").to_vector<float>();
  models::load_weights(*binary, path, {.replace_head = true});
  REQUIRE(binary->parameter("fc.weight").to_vector<float>() == new_head);
  REQUIRE(binary->parameter("layer1.0.conv1.weight").to_vector<float>() ==
          source->parameter("layer1.0.conv1.weight").to_vector<float>());

  auto r50 = models::resnet50(37, gen);
  REQUIRE_THROWS_WITH(models::load_weights(*r50, path), ContainsSubstring("weights are for 'resnet18'"));
}

namespace {
// Writes the state of `model` with one edit: drop a name, change a tensor, add one, or set attributes.
void write_variant(const models::ResNet& model, const std::string& path,
                   const std::function<void(std::map<std::string, Tensor>&)>& edit,
                   const std::string& format = "thaw-weights-1") {
  std::map<std::string, Tensor> state = names_and_shapes(model.state_dict());
  edit(state);
  H5File f = H5File::create(path);
  for (const auto& [name, t] : state)
    f.write(name, t);
  f.write("bn1.num_batches_tracked",
          Tensor::full({}, 3.0, DType::Int64));  // present in torchvision files: ignored
  f.set_attr("format", format);
  f.set_attr("arch", std::string("resnet18"));
  f.set_attr("num_classes", int64_t(10));
  f.commit();
}
}  // namespace

TEST_CASE("corrupted weights files fail with the file and every offending name in the message") {
  Generator gen(8);
  auto model = models::resnet18(10, gen);
  const std::string path = scratch("variant.h5");

  write_variant(*model, path, [](auto&) {});
  REQUIRE_NOTHROW(models::load_weights(*model, path));

  write_variant(*model, path, [](auto& s) {
    s.erase("layer2.1.bn1.running_var");
    s.erase("conv1.weight");
    s["layer9.0.conv1.weight"] = Tensor::zeros({1});
    s["layer1.0.conv2.weight"] = Tensor::zeros({64, 64, 1, 1});
  });
  REQUIRE_THROWS_WITH(models::load_weights(*model, path),
                      ContainsSubstring("variant.h5") &&
                          ContainsSubstring("missing 'layer2.1.bn1.running_var'") &&
                          ContainsSubstring("missing 'conv1.weight'") &&
                          ContainsSubstring("unexpected 'layer9.0.conv1.weight'") &&
                          ContainsSubstring("'layer1.0.conv2.weight' has shape [64, 64, 1, 1]"));

  write_variant(*model, path, [](auto& s) {
    Tensor t = s.at("layer3.0.bn2.weight").clone();
    t.data<float>()[5] = std::nanf("");
    s["layer3.0.bn2.weight"] = t;
    s["fc.bias"] = s.at("fc.bias").to(DType::Float64);
  });
  REQUIRE_THROWS_WITH(models::load_weights(*model, path),
                      ContainsSubstring("dataset 'layer3.0.bn2.weight' has a non-finite value") &&
                          ContainsSubstring("dataset 'fc.bias' is float64, expected float32"));

  write_variant(
      *model, path, [](auto&) {}, "something-else");
  REQUIRE_THROWS_WITH(models::load_weights(*model, path), ContainsSubstring("format 'something-else'"));

  write_variant(*model, path, [](auto&) {});
  fs::resize_file(path, fs::file_size(path) / 3);
  REQUIRE_THROWS_WITH(models::load_weights(*model, path), ContainsSubstring("variant.h5"));
  REQUIRE_THROWS_WITH(models::load_weights(*model, scratch("absent.h5")),
                      ContainsSubstring("absent.h5: no such file"));
}

TEST_CASE("Module::to(cpu) keeps parameter identity and parameter lookups name what is missing") {
  Generator gen(9);
  auto model = models::resnet18(10, gen);
  const Tensor w = model->parameter("fc.weight");
  model->to(Device::cpu());
  REQUIRE(model->parameter("fc.weight").is_same(w));
  REQUIRE_THROWS_WITH(model->parameter("fc.gamma"), ContainsSubstring("no parameter 'fc.gamma'"));
  REQUIRE_THROWS_WITH(model->submodule("layer5"), ContainsSubstring("no submodule 'layer5'"));
  REQUIRE_THROWS_WITH(models::parse_arch("vgg16"), ContainsSubstring("expected 'resnet18' or 'resnet50'"));
}
