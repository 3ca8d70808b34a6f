// Optimizers, LR schedules and freeze masks (optim/).
//
// - Trajectories against torch.optim (weights_tools/make_optim_golden.py -> THAW_GOLDEN_DIR/optim.h5, made by
//   the ctest fixture golden_optim_generate): SGD (momentum, Nesterov, dampening, weight decay), Adam, AdamW,
//   parameters after every one of 5 steps and the final state, in float32 and in float64.
// - Freezing: a frozen parameter is bit-for-bit unchanged and gets no state (and no weight decay); a mask
//   changed mid-training keeps the state; gradual unfreezing; last_layers / bn_only masks.
// - LR schedules against PyTorch's closed forms; state save/load resumes bit-for-bit.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/hdf5_file.h"
#include "core/name_pattern.h"
#include "core/rng.h"
#include "kernels/ops.h"
#include "optim/freeze.h"
#include "optim/lr_schedule.h"
#include "optim/optimizer.h"
#include "tests/support/allclose.h"
#include "tests/support/catch.h"

using namespace thaw;
using namespace thaw::optim;
namespace fs = std::filesystem;

namespace {

const std::string kGoldenPath = THAW_GOLDEN_DIR "/optim.h5";
const std::string kHowToGenerate =
    "no " + kGoldenPath + ": generate it with `/usr/bin/python3 weights_tools/make_optim_golden.py --out " +
    kGoldenPath + "` (or run ctest, whose fixture golden_optim_generate does)";

fs::path scratch(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / "thaw-test-optim";
  fs::create_directories(dir);
  return dir / name;
}

// Row k of a (K, ...) tensor, as a tensor of shape (...).
Tensor row(const Tensor& t, int64_t k) {
  const Shape shape(t.shape().begin() + 1, t.shape().end());
  Tensor out = Tensor::empty(shape, t.dtype());
  const size_t bytes = out.nbytes();
  std::memcpy(out.raw_data(), static_cast<const char*>(t.raw_data()) + size_t(k) * bytes, bytes);
  return out;
}

bool identical(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

Tensor param(const Shape& shape, Generator& gen, DType dtype = DType::Float32) {
  Tensor p = Tensor::normal(shape, 0, 1, gen, dtype);
  p.set_requires_grad(true);
  return p;
}

// The optimizer a golden case describes, over one group holding params.
std::unique_ptr<Optimizer> make_optimizer(const H5File& file, const std::string& c,
                                          const NamedTensors& params) {
  const std::string kind = file.attr_string("optimizer", c);
  std::vector<ParamGroup> groups = {
      ParamGroup{params, file.attr_double("lr", c), file.attr_double("weight_decay", c), "all"}};
  if (kind == "sgd") {
    return std::make_unique<SGD>(std::move(groups), file.attr_double("momentum", c),
                                 file.attr_int("nesterov", c) != 0, file.attr_double("dampening", c));
  }
  const double beta1 = file.attr_double("beta1", c), beta2 = file.attr_double("beta2", c);
  const double eps = file.attr_double("eps", c);
  if (kind == "adam") return std::make_unique<Adam>(std::move(groups), beta1, beta2, eps);
  REQUIRE(kind == "adamw");
  return std::make_unique<AdamW>(std::move(groups), beta1, beta2, eps);
}

// torchvision ResNet18's parameter names, as 1-element tensors that require grad.
NamedTensors resnet18_like() {
  std::vector<std::string> names = {"conv1.weight", "bn1.weight", "bn1.bias"};
  for (int layer = 1; layer <= 4; ++layer) {
    for (int block = 0; block < 2; ++block) {
      const std::string prefix = "layer" + std::to_string(layer) + "." + std::to_string(block) + ".";
      for (const char* leaf :
           {"conv1.weight", "bn1.weight", "bn1.bias", "conv2.weight", "bn2.weight", "bn2.bias"})
        names.push_back(prefix + leaf);
      if (layer > 1 && block == 0) {
        for (const char* leaf : {"downsample.0.weight", "downsample.1.weight", "downsample.1.bias"})
          names.push_back(prefix + leaf);
      }
    }
  }
  names.push_back("fc.weight");
  names.push_back("fc.bias");
  NamedTensors out;
  for (const std::string& name : names) {
    Tensor t = Tensor::zeros({1});
    t.set_requires_grad(true);
    out.emplace_back(name, t);
  }
  return out;
}

// |got - want| <= rel |want|, with both values in the message.
void check_near(double got, double want, double rel) {
  INFO("got " << got << ", expected " << want << " (relative tolerance " << rel << ")");
  CHECK(std::abs(got - want) <= rel * std::abs(want));
}

std::set<std::string> as_set(const std::vector<std::string>& names) {
  return std::set<std::string>(names.begin(), names.end());
}

}  // namespace

// ---- trajectories against torch.optim ---------------------------------------------------------------------
// float32 tolerance. thaw and torch run the same float32 operations in the same order with the same float32
// constants (kernels/cpu/optimizer.cpp); they differ only where torch's vectorised CPU loops fuse a
// multiply-add into one FMA (one rounding instead of two) and in how sqrt/div round at the last bit. That is
// at most about one ulp (2^-24 relative = 6e-8) per operation, of the largest term involved: |p| <= ~2, and
// the update lr d with |d| up to ~10 (momentum sums of N(0,1) gradients, or Adam's m / sqrt(v) ~ 1). Over 5
// steps: 5 x a few ulps of ~1 = ~1e-6 absolute at worst; relative 2e-6 of |p| covers the parameter's own
// rounding. A formula mistake (bias correction, Nesterov term, coupled vs decoupled decay, dampening) changes
// a parameter by ~lr x O(1) >= 1e-3 x 0.1, far outside this.
// float64: the same argument with 2^-53: 1e-12.
TEST_CASE("SGD, Adam and AdamW follow torch.optim's trajectories step by step", "[optim][torch]") {
  if (!fs::exists(kGoldenPath)) FAIL(kHowToGenerate);
  const H5File file = H5File::open(kGoldenPath);
  const std::vector<std::string> cases = split_patterns(file.attr_string("cases"));
  REQUIRE(cases.size() >= 19);
  struct Worst {
    double ratio = 0, rel = 0, abs = 0;  // rel: max over elements of |got - ref| / |ref|
    std::string where = "-";
  };
  for (const DType dtype : {DType::Float32, DType::Float64}) {
    const bool f64 = dtype == DType::Float64;
    const std::string tag = f64 ? "f64" : "f32";
    const double rtol = f64 ? 1e-12 : 2e-6, atol = f64 ? 1e-12 : 1e-6;
    Worst worst;
    auto check = [&](const Tensor& got, const Tensor& ref, const std::string& where) {
      const test::CloseReport report = test::allclose(got, ref, rtol, atol, where);
      if (report.worst_ratio >= worst.ratio) worst.ratio = report.worst_ratio, worst.where = where;
      const std::vector<double> g = got.to(DType::Float64).to_vector<double>();
      const std::vector<double> r = ref.to(DType::Float64).to_vector<double>();
      for (size_t i = 0; i < g.size() && i < r.size(); ++i)
        if (r[i] != 0) worst.rel = std::max(worst.rel, std::abs(g[i] - r[i]) / std::abs(r[i]));
      worst.abs = std::max(worst.abs, report.max_abs_error);
      INFO(report.message);
      CHECK(report.ok);
    };
    for (const std::string& c : cases) {
      INFO("case " << c << " in " << dtype_name(dtype));
      const std::vector<std::string> names = split_patterns(file.attr_string("params", c));
      const int64_t steps = file.attr_int("steps", c);
      NamedTensors params;
      for (const std::string& name : names) {
        Tensor p = file.read(c + "/init/" + name).to(dtype);
        p.set_requires_grad(true);
        params.emplace_back(name, p);
      }
      std::unique_ptr<Optimizer> optimizer = make_optimizer(file, c, params);
      for (int64_t k = 0; k < steps; ++k) {
        for (auto& [name, p] : params) {
          // Sitting out a step = frozen for it; the gradient stays set, so only the flag can stop the update.
          const bool active = file.read(c + "/active/" + name).to_vector<int64_t>()[size_t(k)] != 0;
          p.set_requires_grad(active);
          p.set_grad(row(file.read(c + "/grads/" + name), k).to(dtype));
        }
        optimizer->step();
        for (const auto& [name, p] : params)
          check(p, row(file.read(c + "/" + tag + "/" + name), k),
                c + " " + name + " step " + std::to_string(k));
      }
      for (const auto& [name, p] : params) {
        const ParamState* state = optimizer->state(name);
        REQUIRE(state != nullptr);
        CHECK(state->step == int64_t(file.read(c + "/state_" + tag + "/step/" + name).item()));
        const std::string prefix = c + "/state_" + tag + "/";
        for (const std::string buffer : {"momentum_buffer", "exp_avg", "exp_avg_sq"}) {
          REQUIRE(file.has(prefix + buffer + "/" + name) == (state->buffers.count(buffer) == 1));
          if (file.has(prefix + buffer + "/" + name))
            check(state->buffers.at(buffer), file.read(prefix + buffer + "/" + name),
                  c + " " + buffer + " " + name);
        }
      }
    }
    std::printf(
        "optim vs torch (%zu cases, %s): worst use of tolerance %.2g%% (%s); max rel error %.2g, max abs "
        "error %.2g\n",
        cases.size(), dtype_name(dtype), 100 * worst.ratio, worst.where.c_str(), worst.rel, worst.abs);
  }
}

// ---- freezing ---------------------------------------------------------------------------------------------

TEST_CASE("a frozen parameter is not updated, not decayed and gets no state", "[optim][freeze]") {
  Generator gen(7);
  for (const std::string kind : {"sgd", "adam", "adamw"}) {
    INFO(kind);
    const Tensor trainable = param({3, 4}, gen), frozen = param({3, 4}, gen), no_grad = param({5}, gen);
    const Tensor zero_grad = param({2}, gen);  // trainable, gradient 0: only weight decay moves it
    Tensor(frozen).set_requires_grad(false);
    const NamedTensors params = {{"fc.weight", trainable},
                                 {"layer1.0.conv1.weight", frozen},
                                 {"fc.bias", no_grad},
                                 {"bn1.weight", zero_grad}};
    std::vector<ParamGroup> groups = {ParamGroup{params, 0.1, 0.05, "all"}};
    std::unique_ptr<Optimizer> optimizer;
    if (kind == "sgd") optimizer = std::make_unique<SGD>(groups, 0.9, true);
    if (kind == "adam") optimizer = std::make_unique<Adam>(groups);
    if (kind == "adamw") optimizer = std::make_unique<AdamW>(groups);

    const Tensor trainable_before = trainable.clone(), frozen_before = frozen.clone();
    const Tensor no_grad_before = no_grad.clone(), zero_grad_before = zero_grad.clone();
    for (int step = 0; step < 3; ++step) {
      trainable.set_grad(Tensor::normal({3, 4}, 0, 1, gen));
      frozen.set_grad(Tensor::normal({3, 4}, 0, 1, gen));  // a stale gradient must not matter
      zero_grad.set_grad(Tensor::zeros({2}));
      optimizer->step();
    }
    CHECK(identical(frozen, frozen_before));
    CHECK(identical(no_grad, no_grad_before));
    CHECK(optimizer->state("layer1.0.conv1.weight") == nullptr);
    CHECK(optimizer->state("fc.bias") == nullptr);
    // The counterparts prove the test can fail: these did move, and have state.
    CHECK(!identical(trainable, trainable_before));
    CHECK(!identical(zero_grad, zero_grad_before));  // weight decay alone moves it
    REQUIRE(optimizer->state("fc.weight") != nullptr);
    CHECK(optimizer->state("fc.weight")->step == 3);

    const std::string path = scratch("frozen_" + kind + ".h5").string();
    optimizer->save_state(path);
    const H5File file = H5File::open(path);
    CHECK(file.datasets("state/step") == std::vector<std::string>{"bn1.weight", "fc.weight"});

    optimizer->zero_grad();
    for (const auto& [name, p] : params)
      CHECK(!p.grad().defined());
  }
}

// By hand, SGD momentum 0.9, lr 0.1, gradient 1 at every step on p = 1:
//   step 1: buf = 1,          p = 1    - 0.1   = 0.9
//   step 2: buf = 0.9 + 1,    p = 0.9  - 0.19  = 0.71
//   step 3: frozen:           p = 0.71, buf = 1.9 (kept)
//   step 4: buf = 1.71 + 1,   p = 0.71 - 0.271 = 0.439   (a reset buffer would give 0.61)
// (The golden cases *_freeze_midway check the same against torch for SGD-Nesterov, Adam and AdamW.)
TEST_CASE("changing the freeze mask mid-training keeps the optimizer state of re-unfrozen parameters",
          "[optim][freeze]") {
  Tensor a = Tensor::full({1}, 1.0, DType::Float64), b = Tensor::full({1}, 1.0, DType::Float64);
  a.set_requires_grad(true);
  b.set_requires_grad(true);
  const NamedTensors params = {{"layer4.0.conv1.weight", a}, {"fc.weight", b}};
  SGD sgd({ParamGroup{params, 0.1, 0, "all"}}, 0.9);
  const std::vector<double> expected_a = {0.9, 0.71, 0.71, 0.439};
  const std::vector<FreezeMask> masks = {FreezeMask::everything(), FreezeMask::everything(),
                                         FreezeMask({"fc"}), FreezeMask::everything()};
  for (size_t step = 0; step < masks.size(); ++step) {
    INFO("step " << step + 1 << ", trainable: " << masks[step].str());
    masks[step].apply(params);
    for (const auto& [_, p] : params)
      p.set_grad(Tensor::full({1}, 1.0, DType::Float64));
    if (step == 2) a.zero_grad();  // as autograd would leave it: no gradient while frozen
    sgd.step();
    check_near(a.item(), expected_a[step], 1e-14);
  }
  CHECK(sgd.state("layer4.0.conv1.weight")->step == 3);
  CHECK(sgd.state("fc.weight")->step == 4);
  check_near(sgd.state("layer4.0.conv1.weight")->buffers.at("momentum_buffer").item(), 2.71, 1e-14);
}

TEST_CASE(
    "gradual unfreezing: stages as groups with their own lr, inactive stages stay bit-for-bit unchanged",
    "[optim][freeze]") {
  Generator gen(11);
  NamedTensors params;
  for (const char* name : {"conv1.weight", "bn1.weight", "layer1.0.conv1.weight", "layer2.0.conv1.weight",
                           "layer3.0.bn2.bias", "layer3.1.conv1.weight", "layer4.0.downsample.1.weight",
                           "layer4.1.conv2.weight", "fc.weight", "fc.bias"})
    params.emplace_back(name, param({2, 3}, gen, DType::Float64));
  const GradualUnfreezing schedule = GradualUnfreezing::report_default(0.5, true);
  std::vector<ParamGroup> groups = schedule.param_groups(params);
  REQUIRE(groups.size() == 5);
  const std::vector<std::pair<std::string, double>> expected_groups = {
      {"fc", 0.5}, {"layer4", 1e-2}, {"layer3", 1e-3}, {"layer2", 1e-4}, {"layer1", 1e-5}};
  for (size_t i = 0; i < groups.size(); ++i) {
    CHECK(groups[i].name == expected_groups[i].first);
    CHECK(groups[i].lr == expected_groups[i].second);
  }
  CHECK(groups[0].params.size() == 2);
  CHECK(groups[1].params.size() == 2);
  CHECK(groups[2].params.size() == 2);
  SGD sgd(groups);  // built once, for all ten epochs

  // The stage each parameter belongs to starts at this epoch (the stem: never).
  auto start_epoch = [](const std::string& name) -> int64_t {
    if (name.starts_with("fc")) return 0;
    for (int layer = 4; layer >= 1; --layer)
      if (name.starts_with("layer" + std::to_string(layer))) return 2 * (5 - layer);
    return 1000;
  };
  auto lr_of = [&](const std::string& name) {
    for (const ParamGroup& g : sgd.groups())
      for (const auto& [n, _] : g.params)
        if (n == name) return g.lr;
    FAIL("no group holds " << name);
    return 0.0;
  };
  for (int64_t epoch = 0; epoch < 10; ++epoch) {
    INFO("epoch " << epoch);
    schedule.apply(params, epoch);
    std::vector<Tensor> before, grads;
    for (const auto& [_, p] : params) {
      before.push_back(p.clone());
      grads.push_back(Tensor::normal(p.shape(), 0, 1, gen, DType::Float64));
      p.set_grad(grads.back());  // every parameter gets a gradient: the flags alone decide
    }
    sgd.step();
    for (size_t i = 0; i < params.size(); ++i) {
      const auto& [name, p] = params[i];
      INFO(name);
      CHECK(p.requires_grad() == (start_epoch(name) <= epoch));
      if (start_epoch(name) <= epoch) {
        // Plain SGD: p = p + (-lr) g, the kernel's own operations in double: exact.
        const double lr = lr_of(name);
        std::vector<double> expected = before[i].to_vector<double>();
        const std::vector<double> g = grads[i].to_vector<double>();
        for (size_t j = 0; j < expected.size(); ++j)
          expected[j] = expected[j] + (-lr) * g[j];
        REQUIRE_ALLCLOSE(p, Tensor::from_data<double>(p.shape(), expected), 0, 0);
        CHECK(!identical(p, before[i]));
      } else {
        CHECK(identical(p, before[i]));
      }
    }
  }
  CHECK(sgd.state("conv1.weight") == nullptr);
  CHECK(sgd.state("layer1.0.conv1.weight")->step == 2);  // epochs 8 and 9
  CHECK(sgd.state("fc.bias")->step == 10);

  // mask_at, and the plain (one lr) variant.
  CHECK(
      as_set(schedule.mask_at(3).trainable_names(params)) ==
      std::set<std::string>{"fc.weight", "fc.bias", "layer4.0.downsample.1.weight", "layer4.1.conv2.weight"});
  CHECK(schedule.mask_at(-1).trainable_names(params).empty());
  for (const ParamGroup& g : GradualUnfreezing::report_default(1e-3).param_groups(params))
    CHECK(g.lr == 1e-3);
  // A stage whose pattern matches nothing is an error naming it.
  const GradualUnfreezing typo({{0, {"fc"}, 0.1, ""}, {2, {"layer5"}, 0.1, ""}});
  CHECK_THROWS_WITH(typo.param_groups(params), ContainsSubstring("'layer5'"));
}

TEST_CASE("last_layers(l) trains the report's last l layers of a ResNet", "[optim][freeze]") {
  const NamedTensors params = resnet18_like();
  REQUIRE(params.size() == 62);
  struct Expectation {
    int l;
    size_t trainable;
    std::vector<std::string> in, out;
  };
  // Per block 6 parameters, +3 for a downsample block; layer1: 12, layer2..4: 15 each; fc: 2.
  const std::vector<Expectation> table = {
      {0, 2, {"fc.weight", "fc.bias"}, {"layer4.1.conv2.weight", "conv1.weight"}},
      {1, 2, {"fc.weight", "fc.bias"}, {"layer4.1.bn2.bias", "bn1.weight"}},
      {2, 17, {"layer4.0.conv1.weight", "layer4.0.downsample.1.bias", "fc.bias"}, {"layer3.1.conv2.weight"}},
      {3, 32, {"layer3.0.downsample.0.weight", "layer4.1.bn1.weight"}, {"layer2.1.conv1.weight", "bn1.bias"}},
      {4, 47, {"layer2.0.bn1.weight", "layer3.1.conv1.weight"}, {"layer1.0.conv1.weight", "conv1.weight"}},
      {5,
       59,
       {"layer1.1.bn2.bias", "layer2.0.downsample.1.weight"},
       {"conv1.weight", "bn1.weight", "bn1.bias"}},
  };
  for (const Expectation& e : table) {
    INFO("l = " << e.l);
    const FreezeMask mask = last_layers(e.l);
    const std::set<std::string> names = as_set(mask.trainable_names(params));
    CHECK(names.size() == e.trainable);
    for (const std::string& name : e.in)
      CHECK(names.count(name) == 1);
    for (const std::string& name : e.out)
      CHECK(names.count(name) == 0);

    for (const auto& [_, p] : params)
      p.set_grad(Tensor::ones({1}));
    mask.apply(params);
    for (const auto& [name, p] : params) {
      INFO(name);
      CHECK(p.requires_grad() == (names.count(name) == 1));
      CHECK(p.grad().defined() == (names.count(name) == 1));  // frozen ones lose their gradient
    }
  }
  for (const int l : {-1, 6}) {
    CHECK_THROWS_WITH(last_layers(l),
                      ContainsSubstring("0, 1, 2, 3, 4, 5") && ContainsSubstring(std::to_string(l)));
  }
}

TEST_CASE("bn_only selects every BatchNorm affine parameter (and fc with the head)", "[optim][freeze]") {
  const NamedTensors params = resnet18_like();
  const std::set<std::string> bn = as_set(bn_only(false).trainable_names(params));
  // stem bn1 (2) + 8 blocks x 2 BatchNorms x 2 + 3 downsample BatchNorms x 2 = 40.
  CHECK(bn.size() == 40);
  for (const char* name : {"bn1.weight", "layer1.0.bn1.bias", "layer4.1.bn2.weight",
                           "layer2.0.downsample.1.weight", "layer3.0.downsample.1.bias"})
    CHECK(bn.count(name) == 1);
  for (const char* name :
       {"conv1.weight", "layer2.0.downsample.0.weight", "layer1.0.conv2.weight", "fc.weight"})
    CHECK(bn.count(name) == 0);
  const std::set<std::string> with_head = as_set(bn_only(true).trainable_names(params));
  CHECK(with_head.size() == 42);
  CHECK(with_head.count("fc.bias") == 1);
}

TEST_CASE("a freeze pattern that matches no parameter is an error naming it, and changes nothing",
          "[optim][freeze]") {
  const NamedTensors params = resnet18_like();
  CHECK_THROWS_WITH(FreezeMask::parse("layer4, fcc").apply(params), ContainsSubstring("'fcc'"));
  for (const auto& [_, p] : params)
    CHECK(p.requires_grad());  // nothing was frozen before the error
  CHECK_THROWS_WITH(FreezeMask({"layer4.2"}).trainable_names(params), ContainsSubstring("'layer4.2'"));
  // "fc" is a dotted prefix, not a substring: it must not select a hypothetical fc2.
  CHECK(!FreezeMask({"fc"}).is_trainable("fc2.weight"));
  CHECK(FreezeMask::parse("layer3, layer4,fc").patterns() ==
        std::vector<std::string>{"layer3", "layer4", "fc"});
  FreezeMask().apply(params);  // the empty mask freezes everything
  for (const auto& [_, p] : params)
    CHECK(!p.requires_grad());
}

// ---- LR schedules -----------------------------------------------------------------------------------------
// Expectations from PyTorch's closed forms (torch.optim.lr_scheduler *._get_closed_form_lr), by hand; torch
// 1.13's stateful StepLR, CosineAnnealingLR and SequentialLR([LinearLR, StepLR]) give the same values.
TEST_CASE("LR schedules follow PyTorch's closed forms", "[optim][lr]") {
  const StepLR step(7, 0.1);  // the report's StepLR(7, 0.1)
  const std::vector<std::pair<int64_t, double>> step_table = {{0, 1e-3},  {6, 1e-3},  {7, 1e-4},
                                                              {13, 1e-4}, {14, 1e-5}, {20, 1e-5}};
  for (const auto& [epoch, lr] : step_table)
    check_near(step.lr(1e-3, epoch), lr, 1e-12);

  // eta_min + (base - eta_min) (1 + cos(pi e / T)) / 2 with base 0.1, eta_min 1e-5, T 10;
  // cos(0.3 pi) = 0.58778525229247314, cos(0.7 pi) = -cos(0.3 pi).
  const CosineAnnealingLR cosine(10, 1e-5);
  const std::vector<std::pair<int64_t, double>> cosine_table = {
      {0, 0.1},
      {3, 1e-5 + 0.09999 * (1 + 0.58778525229247314) / 2},
      {5, 0.050005},
      {7, 1e-5 + 0.09999 * (1 - 0.58778525229247314) / 2},
      {10, 1e-5}};
  for (const auto& [epoch, lr] : cosine_table)
    check_near(cosine.lr(0.1, epoch), lr, 1e-12);

  // Warm-up over 3 epochs from 0.1 x base, then StepLR(7, 0.1) counted from epoch 3.
  const LinearWarmupLR warmup(3, 0.1, std::make_shared<StepLR>(7, 0.1));
  const std::vector<std::pair<int64_t, double>> warmup_table = {{0, 1e-4}, {1, 4e-4}, {2, 7e-4},
                                                                {3, 1e-3}, {9, 1e-3}, {10, 1e-4}};
  for (const auto& [epoch, lr] : warmup_table)
    check_near(warmup.lr(1e-3, epoch), lr, 1e-12);
  CHECK(LinearWarmupLR(0, 0.5).lr(0.2, 0) == 0.2);

  // Applied per group from each group's base rate.
  Generator gen(3);
  SGD sgd({ParamGroup{{{"fc.weight", param({2}, gen)}}, 0.1, 0, "head"},
           ParamGroup{{{"layer4.0.conv1.weight", param({2}, gen)}}, 0.01, 0, "layer4"}},
          0.9, true);
  const std::vector<double> base = base_lrs(sgd);
  apply_lr_schedule(sgd, step, base, 7);
  check_near(sgd.groups()[0].lr, 0.01, 1e-12);
  check_near(sgd.groups()[1].lr, 0.001, 1e-12);
  apply_lr_schedule(sgd, step, base, 0);
  CHECK(sgd.groups()[0].lr == 0.1);
  CHECK_THROWS_WITH(apply_lr_schedule(sgd, step, {0.1}, 0), ContainsSubstring("1 base rates for 2"));
  CHECK_THROWS(StepLR(0, 0.1));
  CHECK_THROWS(CosineAnnealingLR(0));
  CHECK_THROWS(LinearWarmupLR(2, 0));
}

// ---- state save / load ------------------------------------------------------------------------------------

namespace {

struct Run {
  NamedTensors params;
  std::unique_ptr<Optimizer> optimizer;
};

// Three parameters (one frozen, so it has no state), one group each with its own lr.
Run make_run(const std::string& kind, uint64_t seed) {
  Generator gen(seed);
  Run run;
  run.params = {{"fc.weight", param({4, 3}, gen)},
                {"fc.bias", param({4}, gen)},
                {"layer1.0.conv1.weight", param({2, 2, 3, 3}, gen)}};
  run.params[2].second.set_requires_grad(false);
  std::vector<ParamGroup> groups = {ParamGroup{{run.params[0], run.params[1]}, 0.05, 0.01, "head"},
                                    ParamGroup{{run.params[2]}, 0.01, 0.01, "layer1"}};
  if (kind == "sgd") run.optimizer = std::make_unique<SGD>(std::move(groups), 0.9, true);
  if (kind == "adamw") run.optimizer = std::make_unique<AdamW>(std::move(groups));
  return run;
}

// Steps first..last-1 with gradients that depend only on the step number.
void train(Run& run, int first, int last) {
  for (int step = first; step < last; ++step) {
    Generator gen(1000 + uint64_t(step));
    for (const auto& [_, p] : run.params)
      p.set_grad(Tensor::normal(p.shape(), 0, 1, gen));
    run.optimizer->step();
  }
}

}  // namespace

TEST_CASE("optimizer state save/load resumes bit-for-bit", "[optim][state]") {
  for (const std::string kind : {"sgd", "adamw"}) {
    INFO(kind);
    const std::string path = scratch("resume_" + kind + ".h5").string();
    Run original = make_run(kind, 5);
    train(original, 0, 3);
    original.optimizer->save_state(path);
    std::vector<Tensor> after3;
    for (const auto& [_, p] : original.params)
      after3.push_back(p.clone());
    train(original, 3, 5);

    Run resumed = make_run(kind, 5);
    for (size_t i = 0; i < after3.size(); ++i)
      resumed.params[i].second.copy_(after3[i]);
    resumed.optimizer->groups()[0].lr = 123;  // restored from the file
    resumed.optimizer->load_state(path);
    CHECK(resumed.optimizer->groups()[0].lr == 0.05);
    REQUIRE(resumed.optimizer->state("fc.weight") != nullptr);
    CHECK(resumed.optimizer->state("fc.weight")->step == 3);
    CHECK(resumed.optimizer->state("layer1.0.conv1.weight") == nullptr);
    train(resumed, 3, 5);
    for (size_t i = 0; i < after3.size(); ++i) {
      INFO(original.params[i].first);
      CHECK(identical(resumed.params[i].second, original.params[i].second));
    }

    // Without the state the same two steps end elsewhere: the comparison above can fail.
    Run fresh = make_run(kind, 5);
    for (size_t i = 0; i < after3.size(); ++i)
      fresh.params[i].second.copy_(after3[i]);
    train(fresh, 3, 5);
    CHECK(!identical(fresh.params[0].second, original.params[0].second));
  }
}

TEST_CASE("loading optimizer state checks kind, groups, names and shapes, naming the file and parameter",
          "[optim][state]") {
  const std::string path = scratch("errors_adamw.h5").string();
  Run saved = make_run("adamw", 9);
  train(saved, 0, 2);
  saved.optimizer->save_state(path);

  Generator gen(1);
  {  // wrong shape
    std::vector<ParamGroup> groups = {
        ParamGroup{{{"fc.weight", param({3, 4}, gen)}, {"fc.bias", param({4}, gen)}}, 0.05, 0.01, "head"},
        ParamGroup{{}, 0.01, 0.01, "layer1"}};
    AdamW adamw(groups);
    CHECK_THROWS_WITH(adamw.load_state(path), ContainsSubstring(path) && ContainsSubstring("'fc.weight'") &&
                                                  ContainsSubstring("[4, 3]"));
    CHECK(adamw.states().empty());  // nothing loaded
  }
  {  // the file has state for a parameter the optimizer lacks
    std::vector<ParamGroup> groups = {ParamGroup{{{"fc.weight", param({4, 3}, gen)}}, 0.05, 0.01, "head"},
                                      ParamGroup{{}, 0.01, 0.01, "layer1"}};
    AdamW adamw(groups);
    CHECK_THROWS_WITH(adamw.load_state(path), ContainsSubstring(path) && ContainsSubstring("'fc.bias'") &&
                                                  ContainsSubstring("does not have"));
  }
  {  // other groups
    AdamW adamw({ParamGroup{saved.params, 0.05, 0.01, "all"}});
    CHECK_THROWS_WITH(adamw.load_state(path), ContainsSubstring("head,layer1"));
  }
  {  // another kind, other hyper-parameters
    Run sgd = make_run("sgd", 9);
    CHECK_THROWS_WITH(sgd.optimizer->load_state(path), ContainsSubstring("'adamw'"));
    AdamW other_betas({ParamGroup{{saved.params[0], saved.params[1]}, 0.05, 0.01, "head"},
                       ParamGroup{{saved.params[2]}, 0.01, 0.01, "layer1"}},
                      0.8);
    CHECK_THROWS_WITH(other_betas.load_state(path), ContainsSubstring("beta1"));
  }
  CHECK_THROWS_WITH(saved.optimizer->load_state(scratch("missing.h5").string()),
                    ContainsSubstring("missing.h5"));
}

// ---- construction and kernel checks -----------------------------------------------------------------------

TEST_CASE("optimizers reject duplicate names and bad hyper-parameters, update kernels check their arguments",
          "[optim][errors]") {
  Generator gen(2);
  const Tensor a = param({2}, gen), b = param({2}, gen);
  CHECK_THROWS_WITH(
      SGD({ParamGroup{{{"fc.weight", a}}, 0.1, 0, "x"}, ParamGroup{{{"fc.weight", b}}, 0.1, 0, "y"}}),
      ContainsSubstring("'fc.weight' appears twice"));
  CHECK_THROWS_WITH(SGD({ParamGroup{{{"w", a}}, 0.1, 0, "x"}, ParamGroup{{{"v", b}}, 0.1, 0, "x"}}),
                    ContainsSubstring("two parameter groups are named 'x'"));
  CHECK_THROWS_WITH(SGD({ParamGroup{{{"w", a}}, -1, 0, "x"}}), ContainsSubstring("lr"));
  CHECK_THROWS_WITH(SGD({ParamGroup{{{"w", a}}, 0.1, 0, "x"}}, 0, true), ContainsSubstring("Nesterov"));
  CHECK_THROWS_WITH(Adam({ParamGroup{{{"w", a}}, 0.1, 0, "x"}}, 1.0), ContainsSubstring("betas"));
  SGD sgd({ParamGroup{{{"w", a}}, 0.1, 0, ""}});
  CHECK(sgd.groups()[0].name == "group0");

  const ops::SgdHyper momentum{0.1, 0.9};
  CHECK_THROWS_WITH(ops::sgd_update_(a, Tensor::zeros({3}), Tensor::zeros({2}), momentum, true),
                    ContainsSubstring("grad must have shape [2]"));
  CHECK_THROWS_WITH(ops::sgd_update_(a, Tensor::zeros({2}), Tensor(), momentum, true),
                    ContainsSubstring("momentum_buffer is undefined"));
  CHECK_THROWS_WITH(
      ops::sgd_update_(a, Tensor::zeros({2}, DType::Float64), Tensor::zeros({2}), momentum, true),
      ContainsSubstring("grad is float64"));
  CHECK_THROWS_WITH(ops::adam_update_(a, Tensor::zeros({2}), Tensor::zeros({2}), Tensor::zeros({2}), {}, 0),
                    ContainsSubstring("step"));
  CHECK_THROWS_WITH(ops::adam_update_(a, Tensor::zeros({2}), Tensor::zeros({2}), Tensor::zeros({1}), {}, 1),
                    ContainsSubstring("exp_avg_sq"));
}
