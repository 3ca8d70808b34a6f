// Finite-difference gradient checks, in double on the CPU, of every differentiable op in nn/functional.h.
#include "nn/autograd_nodes.h"
#include "nn/functional.h"
#include "tests/support/catch.h"
#include "tests/support/gradcheck.h"

using namespace thaw;
using test::random_double;
namespace F = nn::functional;

TEST_CASE("conv2d gradients: 3x3 stride 1 pad 1, with bias") {
  std::vector<Tensor> in{random_double({2, 3, 5, 6}, 1), random_double({4, 3, 3, 3}, 2),
                         random_double({4}, 3)};
  REQUIRE_GRADCHECK(
      [](const std::vector<Tensor>& t) {
        return F::conv2d(t[0], t[1], t[2], {1, 1, 1, 1});
      },
      in);
}

TEST_CASE("conv2d gradients: stride 2, odd sizes, asymmetric padding, no bias") {
  std::vector<Tensor> in{random_double({1, 2, 7, 5}, 4), random_double({3, 2, 3, 2}, 5)};
  REQUIRE_GRADCHECK(
      [](const std::vector<Tensor>& t) {
        return F::conv2d(t[0], t[1], Tensor(), {2, 1, 1, 0});
      },
      in);
}

TEST_CASE("conv2d gradients: 1x1 stride 2 (downsample) and 1x1 stride 1 over a batch") {
  std::vector<Tensor> in{random_double({3, 4, 5, 5}, 6), random_double({2, 4, 1, 1}, 7)};
  REQUIRE_GRADCHECK(
      [](const std::vector<Tensor>& t) {
        return F::conv2d(t[0], t[1], Tensor(), {2, 2, 0, 0});
      },
      in);
  REQUIRE_GRADCHECK(
      [](const std::vector<Tensor>& t) {
        return F::conv2d(t[0], t[1], Tensor(), {1, 1, 0, 0});
      },
      in);
}

TEST_CASE("batch_norm gradients with batch statistics (train) and running statistics (eval/frozen)") {
  const Tensor running_mean = random_double({3}, 8, -0.5, 0.5, false);
  const Tensor running_var = random_double({3}, 9, 0.5, 2.0, false);
  std::vector<Tensor> in{random_double({4, 3, 3, 2}, 10, -2, 3), random_double({3}, 11, 0.5, 1.5),
                         random_double({3}, 12)};
  SECTION("train") {
    REQUIRE_GRADCHECK(
        [&](const std::vector<Tensor>& t) {
          return F::batch_norm(t[0], t[1], t[2], Tensor(), Tensor(), /*use_batch_stats=*/true);
        },
        in);
  }
  SECTION("eval") {
    REQUIRE_GRADCHECK(
        [&](const std::vector<Tensor>& t) {
          return F::batch_norm(t[0], t[1], t[2], running_mean, running_var, /*use_batch_stats=*/false);
        },
        in);
  }
}

TEST_CASE("batch_norm_relu gradients (train and eval), and the same as relu(batch_norm)") {
  const Tensor running_mean = random_double({3}, 8, -0.5, 0.5, false);
  const Tensor running_var = random_double({3}, 9, 0.5, 2.0, false);
  std::vector<Tensor> in{random_double({4, 3, 3, 2}, 10, -2, 3), random_double({3}, 11, 0.5, 1.5),
                         random_double({3}, 12)};
  for (const bool train : {true, false}) {
    INFO("use_batch_stats " << train);
    const Tensor rm = train ? Tensor() : running_mean, rv = train ? Tensor() : running_var;
    REQUIRE_GRADCHECK(
        [&](const std::vector<Tensor>& t) { return F::batch_norm_relu(t[0], t[1], t[2], rm, rv, train); },
        in);
    // Fused against the two ops: the same values and the same gradients, bit for bit.
    const Tensor r = random_double(in[0].shape(), 40, -1, 1, false);
    std::vector<Tensor> grads[2];
    Tensor outputs[2];
    for (int fused = 0; fused < 2; ++fused) {
      std::vector<Tensor> leaves;
      for (const Tensor& t : in) {
        Tensor leaf = t.detach().clone();
        leaf.set_requires_grad(true);
        leaves.push_back(leaf);
      }
      outputs[fused] = fused ? F::batch_norm_relu(leaves[0], leaves[1], leaves[2], rm, rv, train)
                             : F::relu(F::batch_norm(leaves[0], leaves[1], leaves[2], rm, rv, train));
      F::sum(F::mul(outputs[fused], r)).backward();
      for (const Tensor& leaf : leaves)
        grads[fused].push_back(leaf.grad());
    }
    REQUIRE(outputs[0].to_vector<double>() == outputs[1].to_vector<double>());
    for (size_t i = 0; i < in.size(); ++i)
      REQUIRE(grads[0][i].to_vector<double>() == grads[1][i].to_vector<double>());
  }
}

TEST_CASE("relu gradients, with the kink at 0 skipped") {
  std::vector<Tensor> in{random_double({2, 3, 4, 4}, 13)};
  const auto r = test::gradcheck([](const std::vector<Tensor>& t) { return F::relu(t[0]); }, in);
  INFO(r.message);
  REQUIRE(r.ok);
  REQUIRE(r.checked == 96);  // uniform values: none within 1e-6 of the kink
}

TEST_CASE("add_relu gradients for both inputs (the residual join)") {
  std::vector<Tensor> in{random_double({2, 3, 4, 4}, 14), random_double({2, 3, 4, 4}, 15)};
  const auto r = test::gradcheck([](const std::vector<Tensor>& t) { return F::add_relu(t[0], t[1]); }, in);
  INFO(r.message);
  REQUIRE(r.ok);
  REQUIRE(r.checked == 192);  // both inputs, every element: no sum within 1e-6 of the kink
}

TEST_CASE("max_pool2d gradients: ResNet's 3x3 stride 2 pad 1, and 2x2 stride 2") {
  std::vector<Tensor> in{random_double({2, 2, 7, 6}, 14)};
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& t) { return F::max_pool2d(t[0], {3, 3, 2, 2, 1, 1}); }, in);
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& t) { return F::max_pool2d(t[0], {2, 2, 2, 2, 0, 0}); }, in);
}

TEST_CASE("global_avg_pool2d and flatten gradients") {
  std::vector<Tensor> in{random_double({2, 3, 3, 5}, 15)};
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& t) { return F::flatten(F::global_avg_pool2d(t[0])); }, in);
}

TEST_CASE("linear gradients, with and without bias") {
  std::vector<Tensor> in{random_double({3, 5}, 16), random_double({4, 5}, 17), random_double({4}, 18)};
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& t) { return F::linear(t[0], t[1], t[2]); }, in);
  in.pop_back();
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& t) { return F::linear(t[0], t[1], Tensor()); }, in);
}

TEST_CASE("add, mul, scale, sum and reshape gradients") {
  std::vector<Tensor> in{random_double({2, 3}, 19), random_double({2, 3}, 20)};
  REQUIRE_GRADCHECK(
      [](const std::vector<Tensor>& t) {
        Tensor y = F::add(F::mul(t[0], t[1]), F::scale(t[0], -2.5));
        return F::reshape(F::add(y, F::mul(y, y)), {3, 2});
      },
      in);
  REQUIRE_GRADCHECK([](const std::vector<Tensor>& t) { return F::sum(F::mul(t[0], t[1])); }, in);
}

TEST_CASE("cross_entropy gradients, plain and with class weights") {
  const Tensor labels = Tensor::from_data<int64_t>({4}, {2, 0, 2, 1});
  const Tensor weights = Tensor::from_data<double>({3}, {0.2, 0.5, 0.3});
  std::vector<Tensor> in{random_double({4, 3}, 21, -3, 3)};
  REQUIRE_GRADCHECK([&](const std::vector<Tensor>& t) { return F::cross_entropy(t[0], labels); }, in);
  REQUIRE_GRADCHECK([&](const std::vector<Tensor>& t) { return F::cross_entropy(t[0], labels, weights); },
                    in);
}

TEST_CASE("bce_with_logits gradients") {
  const Tensor targets = Tensor::from_data<double>({5, 1}, {1, 0, 0, 1, 1});
  std::vector<Tensor> in{random_double({5, 1}, 22, -4, 4)};
  REQUIRE_GRADCHECK([&](const std::vector<Tensor>& t) { return F::bce_with_logits(t[0], targets); }, in);
}

TEST_CASE("a small ConvNet end to end: conv, batch norm, relu, pools, linear, cross-entropy") {
  const Tensor labels = Tensor::from_data<int64_t>({2}, {1, 0});
  std::vector<Tensor> in{random_double({2, 2, 6, 6}, 23, -1, 1, false),
                         random_double({3, 2, 3, 3}, 24),
                         random_double({3}, 25, 0.5, 1.5),
                         random_double({3}, 26),
                         random_double({2, 3}, 27),
                         random_double({2}, 28)};
  REQUIRE_GRADCHECK(
      [&](const std::vector<Tensor>& t) {
        Tensor h = F::conv2d(t[0], t[1], Tensor(), {1, 1, 1, 1});
        h = F::relu(F::batch_norm(h, t[2], t[3], Tensor(), Tensor(), true));
        h = F::flatten(F::global_avg_pool2d(F::max_pool2d(h, {3, 3, 2, 2, 1, 1})));
        return F::cross_entropy(F::linear(h, t[4], t[5]), labels);
      },
      in);
}

namespace {
// A deliberately wrong backward (claims dy/dx = 2 for y = x) to show that the checker can fail.
class WrongIdentityBackward : public nn::FunctionNode {
 public:
  WrongIdentityBackward() : nn::FunctionNode("WrongIdentityBackward") {}

 protected:
  std::vector<Tensor> backward(const Tensor& dy) override { return {ops::scale(dy, 2.0)}; }
  void release() override {}
};
}  // namespace

TEST_CASE("the gradient checker catches a wrong backward") {
  std::vector<Tensor> in{random_double({3}, 29)};
  const auto r = test::gradcheck(
      [](const std::vector<Tensor>& t) {
        Tensor y = ops::scale(t[0], 1.0);
        if (nn::should_record({&t[0]})) nn::record(y, std::make_shared<WrongIdentityBackward>(), {&t[0]});
        return y;
      },
      in);
  REQUIRE_FALSE(r.ok);
  REQUIRE_THAT(r.message, ContainsSubstring("FAILED"));
}
