// The precision policy (core/precision.h) where it runs without a GPU: the host rounding the CUDA kernels
// are checked against (tests/test_cuda_parity.cpp), the names, the config key and the command-line flag,
// and the CPU backend computing float32 whatever precision is asked for.
#include <cfloat>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/precision.h"
#include "core/rng.h"
#include "kernels/ops.h"
#include "models/resnet.h"
#include "nn/functional.h"
#include "nn/layers.h"
#include "nn/precision.h"
#include "tests/support/allclose.h"
#include "tests/support/catch.h"
#include "train/config.h"

using namespace thaw;

namespace {

uint32_t bits_of(float x) {
  uint32_t b;
  std::memcpy(&b, &x, sizeof b);
  return b;
}

}  // namespace

TEST_CASE("round_to: TF32 keeps 10 mantissa bits, ties away from zero") {
  const float one = 1.0f, ulp = std::ldexp(1.0f, -10);           // TF32's spacing just above 1
  CHECK(round_to(Precision::TF32, one + ulp / 2) == one + ulp);  // a tie goes away from zero
  CHECK(round_to(Precision::TF32, -(one + ulp / 2)) == -(one + ulp));
  CHECK(round_to(Precision::TF32, one + ulp / 4) == one);
  CHECK(round_to(Precision::TF32, one + 3 * ulp / 4) == one + ulp);
  CHECK(round_to(Precision::TF32, one + ulp + ulp / 2) == one + 2 * ulp);  // away, not to even
  CHECK(round_to(Precision::TF32, 2047.0f) == 2047.0f);                    // integers to 2^11 are exact
  CHECK(round_to(Precision::TF32, 4097.0f) == 4096.0f);  // spacing 4 in [4096, 8192): below the tie
  CHECK(round_to(Precision::TF32, 4098.0f) == 4100.0f);  // the tie goes away from zero
  // Every result has its 13 low bits clear.
  Generator gen(7);
  for (int i = 0; i < 1000; ++i) {
    const float x = float(gen.next_normal() * 100);
    const float r = round_to(Precision::TF32, x);
    CHECK((bits_of(r) & 0x1FFFu) == 0);
    CHECK(std::abs(r - x) <= std::abs(x) * unit_roundoff(Precision::TF32));
  }
}

TEST_CASE("round_to: bf16 keeps 7 mantissa bits, ties to even") {
  const float one = 1.0f, ulp = std::ldexp(1.0f, -7);
  CHECK(round_to(Precision::BF16, one + ulp / 2) == one);                  // tie: 1 is even
  CHECK(round_to(Precision::BF16, one + ulp + ulp / 2) == one + 2 * ulp);  // tie: 1 + ulp is odd
  CHECK(round_to(Precision::BF16, -(one + ulp + ulp / 2)) == -(one + 2 * ulp));
  CHECK(round_to(Precision::BF16, 256.0f) == 256.0f);  // integers to 2^8 are exact
  CHECK(round_to(Precision::BF16, 257.0f) == 256.0f);  // a tie, to even
  CHECK(round_to(Precision::BF16, 259.0f) == 260.0f);
  Generator gen(8);
  for (int i = 0; i < 1000; ++i) {
    const float x = float(gen.next_normal() * 1e-3);
    const float r = round_to(Precision::BF16, x);
    CHECK((bits_of(r) & 0xFFFFu) == 0);
    CHECK(std::abs(r - x) <= std::abs(x) * unit_roundoff(Precision::BF16));
  }
}

TEST_CASE("round_to: fp32 is the identity and NaN, infinities and overflow stay what they are") {
  for (const float x : {0.1f, -3.75f, FLT_MIN, 1e30f})
    CHECK(bits_of(round_to(Precision::FP32, x)) == bits_of(x));
  for (const Precision p : {Precision::TF32, Precision::BF16}) {
    INFO(precision_name(p));
    CHECK(std::isnan(round_to(p, NAN)));
    CHECK(round_to(p, INFINITY) == INFINITY);
    CHECK(round_to(p, -INFINITY) == -INFINITY);
    CHECK(round_to(p, FLT_MAX) == INFINITY);  // rounds past the largest finite value of the format
    CHECK(round_to(p, 0.0f) == 0.0f);
    CHECK(std::signbit(round_to(p, -0.0f)));
  }
}

TEST_CASE("precision names: parse_precision and precision_name round trip, an unknown name is refused") {
  for (const Precision p : {Precision::FP32, Precision::TF32, Precision::BF16})
    CHECK(parse_precision(precision_name(p)) == p);
  CHECK_THROWS_WITH(parse_precision("fp16"),
                    ContainsSubstring("precision 'fp16' is not known: expected fp32, tf32 or bf16"));
}

TEST_CASE("train config: precision defaults to fp32, takes tf32 and bf16, refuses anything else") {
  const train::Overrides base = {{"name", "n"}, {"data", "d"}, {"weights", "none"}};
  CHECK(train::load_train_config("", base).precision == "fp32");
  for (const char* p : {"tf32", "bf16", "fp32"}) {
    train::Overrides o = base;
    o.push_back({"precision", p});
    const train::TrainConfig c = train::load_train_config("", o);
    CHECK(c.precision == p);
    // It survives the run directory's config.toml.
    CHECK(train::train_config_from_toml(train::train_config_toml(c)).precision == p);
  }
  train::Overrides bad = base;
  bad.push_back({"precision", "fp16"});
  CHECK_THROWS_WITH(train::load_train_config("", bad), ContainsSubstring("--precision") &&
                                                           ContainsSubstring("fp16") &&
                                                           ContainsSubstring("fp32|tf32|bf16"));
}

TEST_CASE("the CPU backend computes float32 in every precision, and says so") {
  for (const Precision p : {Precision::FP32, Precision::TF32, Precision::BF16})
    CHECK(ops::conv2d_precision(p, Device::cpu()) == Precision::FP32);
  Generator gen(3);
  const Tensor x = Tensor::normal({2, 5, 9, 9}, 0, 1, gen), w = Tensor::normal({4, 5, 3, 3}, 0, 1, gen);
  const Tensor dy = Tensor::normal({2, 4, 5, 5}, 0, 1, gen);
  ops::Conv2dParams fp32{2, 2, 1, 1};
  for (const Precision p : {Precision::TF32, Precision::BF16}) {
    ops::Conv2dParams pp = fp32;
    pp.precision = p;
    REQUIRE_ALLCLOSE(ops::conv2d_forward(x, w, Tensor(), pp), ops::conv2d_forward(x, w, Tensor(), fp32), 0,
                     0);
    REQUIRE_ALLCLOSE(ops::conv2d_backward_data(dy, w, x.shape(), pp),
                     ops::conv2d_backward_data(dy, w, x.shape(), fp32), 0, 0);
    REQUIRE_ALLCLOSE(ops::conv2d_backward_weight(dy, x, w.shape(), pp),
                     ops::conv2d_backward_weight(dy, x, w.shape(), fp32), 0, 0);
  }
}

TEST_CASE("nn::set_precision reaches every convolution of a ResNet, and the backward pass keeps it") {
  Generator gen(1);
  auto model = models::resnet18(10, gen);
  // conv1, 16 convs in the 8 BasicBlocks, 3 downsample convs.
  CHECK(nn::set_precision(*model, Precision::TF32) == 20);
  int64_t convs = 0;
  for (const auto& [name, module] : model->named_modules()) {
    if (auto* conv = dynamic_cast<nn::Conv2d*>(module)) {
      INFO(name);
      CHECK(conv->params.precision == Precision::TF32);
      ++convs;
    }
  }
  CHECK(convs == 20);
  auto resnet50 = models::resnet50(10, gen);
  CHECK(nn::set_precision(*resnet50, Precision::BF16) == 53);  // conv1, 16 x 3 block convs, 4 downsamples
}
