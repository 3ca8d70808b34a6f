// The autograd engine: reverse topological order, accumulation, shared subexpressions, frozen branches
// that record nothing, no-grad scopes, released graphs.
#include "core/autograd.h"
#include "core/error.h"
#include "core/rng.h"
#include "nn/functional.h"
#include "tests/support/allclose.h"
#include "tests/support/catch.h"

using namespace thaw;
namespace F = nn::functional;

namespace {
Tensor leaf(std::initializer_list<double> values, bool requires_grad = true) {
  Tensor t = Tensor::from_data<double>({int64_t(values.size())}, values);
  t.set_requires_grad(requires_grad);
  return t;
}
}  // namespace

TEST_CASE("shared subexpressions get the sum of their gradients and a frozen branch records nothing") {
  const int64_t baseline = Node::live_count();
  {
    Tensor a = leaf({1.5, -2.0, 0.5}), b = leaf({0.25, 3.0, -1.0});
    Tensor c = leaf({2.0, 1.0, -3.0}, /*requires_grad=*/false);

    // out = sum(s + a) + sum(s * s) + sum(z),  s = a * b (used three times),  z = c * c (frozen branch)
    Tensor s = F::mul(a, b);
    const int64_t before_frozen = Node::live_count();
    Tensor z = F::mul(c, c);
    REQUIRE(Node::live_count() == before_frozen);  // the frozen branch recorded no node
    REQUIRE_FALSE(z.requires_grad());
    REQUIRE(z.grad_fn() == nullptr);

    Tensor out = F::add(F::add(F::sum(F::add(s, a)), F::sum(F::mul(s, s))), F::sum(z));
    out.backward();

    // d/da = b + 1 + 2 (ab) b,  d/db = a + 2 (ab) a
    const auto av = a.to_vector<double>(), bv = b.to_vector<double>();
    std::vector<double> da, db;
    for (size_t i = 0; i < 3; ++i) {
      da.push_back(bv[i] + 1 + 2 * av[i] * bv[i] * bv[i]);
      db.push_back(av[i] + 2 * av[i] * bv[i] * av[i]);
    }
    REQUIRE_ALLCLOSE(a.grad(), Tensor::from_data<double>({3}, da), 1e-12, 0);
    REQUIRE_ALLCLOSE(b.grad(), Tensor::from_data<double>({3}, db), 1e-12, 0);
    REQUIRE_FALSE(c.grad().defined());
  }
  REQUIRE(Node::live_count() == baseline);  // nothing leaked: no reference cycles
}

TEST_CASE("gradients accumulate across backward calls until zero_grad") {
  Tensor w = leaf({1.0, 2.0});
  Tensor x = leaf({3.0, 4.0}, false);
  F::sum(F::mul(w, x)).backward();
  F::sum(F::mul(w, x)).backward();
  REQUIRE_ALLCLOSE(w.grad(), Tensor::from_data<double>({2}, {6.0, 8.0}), 0, 0);
  w.zero_grad();
  REQUIRE_FALSE(w.grad().defined());
  F::sum(F::scale(w, 3.0)).backward();
  REQUIRE_ALLCLOSE(w.grad(), Tensor::from_data<double>({2}, {3.0, 3.0}), 0, 0);
}

TEST_CASE("a leaf used by several ops shares one gradient sink") {
  Tensor w = leaf({2.0});
  Tensor y = F::add(F::mul(w, w), F::scale(w, 5.0));  // w^2 + 5w: dy/dw = 2w + 5 = 9
  REQUIRE(w.grad_accumulator() != nullptr);
  y.backward(Tensor::ones({1}, DType::Float64));
  REQUIRE(w.grad().item() == 9.0);
}

TEST_CASE("NoGradGuard records nothing and restores the mode") {
  Tensor w = leaf({1.0, 2.0});
  const int64_t before = Node::live_count();
  {
    NoGradGuard guard;
    REQUIRE_FALSE(grad_mode_enabled());
    Tensor y = F::mul(w, w);
    REQUIRE_FALSE(y.requires_grad());
    REQUIRE(Node::live_count() == before);
  }
  REQUIRE(grad_mode_enabled());
}

TEST_CASE("a frozen conv prefix keeps no graph: only the trainable part records nodes") {
  Generator gen(3);
  const Tensor x = Tensor::uniform({2, 3, 8, 8}, -1, 1, gen);
  const Tensor frozen_w = Tensor::uniform({4, 3, 3, 3}, -0.2, 0.2, gen);
  Tensor head_w = Tensor::uniform({2, 4}, -0.5, 0.5, gen);
  head_w.set_requires_grad(true);
  const int64_t before = Node::live_count();
  Tensor features = F::flatten(F::global_avg_pool2d(F::relu(F::conv2d(x, frozen_w, Tensor(), {1, 1, 1, 1}))));
  REQUIRE(Node::live_count() == before);
  REQUIRE_FALSE(features.requires_grad());
  Tensor loss =
      F::cross_entropy(F::linear(features, head_w, Tensor()), Tensor::from_data<int64_t>({2}, {0, 1}));
  REQUIRE(Node::live_count() == before + 3);  // LinearBackward, CrossEntropyBackward, AccumulateGrad(head_w)
  loss.backward();
  REQUIRE(head_w.grad().defined());
  REQUIRE(head_w.grad().shape() == Shape{2, 4});
}

TEST_CASE("backward twice through a released graph is an error that says what to do unless retain_graph") {
  Tensor w = leaf({1.0, -1.0});
  Tensor y = F::sum(F::mul(w, w));
  y.backward(Tensor(), /*retain_graph=*/true);
  y.backward();
  REQUIRE_ALLCLOSE(w.grad(), Tensor::from_data<double>({2}, {4.0, -4.0}), 0, 0);
  REQUIRE_THROWS_WITH(y.backward(), ContainsSubstring("a second time") && ContainsSubstring("retain_graph"));
}

TEST_CASE("backward errors: nothing requires grad, non-scalar root without a gradient, mismatched gradient") {
  Tensor x = leaf({1.0, 2.0}, false);
  REQUIRE_THROWS_WITH(F::sum(x).backward(), ContainsSubstring("does not require grad"));
  Tensor w = leaf({1.0, 2.0});
  Tensor y = F::mul(w, w);
  REQUIRE_THROWS_WITH(y.backward(), ContainsSubstring("needs an explicit gradient"));
  REQUIRE_THROWS_WITH(y.backward(Tensor::ones({3}, DType::Float64)), ContainsSubstring("does not match"));
  REQUIRE_THROWS_WITH(w.backward(Tensor::ones({2}, DType::Float64)), ContainsSubstring("leaf"));
}

TEST_CASE("requires_grad is for floating leaves only") {
  Tensor labels = Tensor::zeros({3}, DType::Int64);
  REQUIRE_THROWS_WITH(labels.set_requires_grad(true), ContainsSubstring("only floating"));
  Tensor w = leaf({1.0});
  Tensor y = F::scale(w, 2.0);
  REQUIRE_THROWS_WITH(y.set_requires_grad(false), ContainsSubstring("only leaves"));
}
