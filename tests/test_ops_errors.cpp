// Bad input to the ops: each is a thaw::Error whose message names the op, the argument and what is wrong.
#include "core/error.h"
#include "kernels/ops.h"
#include "nn/functional.h"
#include "tests/support/catch.h"

using namespace thaw;

TEST_CASE("conv2d: rank, channels, kernel size, stride, dtype, bias shape, empty input") {
  const Tensor x = Tensor::zeros({1, 3, 8, 8}), w = Tensor::zeros({4, 3, 3, 3});
  REQUIRE_THROWS_WITH(ops::conv2d_forward(Tensor::zeros({3, 8, 8}), w, Tensor(), {}),
                      ContainsSubstring("conv2d_forward: x must be 4-D"));
  REQUIRE_THROWS_WITH(ops::conv2d_forward(Tensor::zeros({1, 2, 8, 8}), w, Tensor(), {}),
                      ContainsSubstring("x has 2 channels but w [4, 3, 3, 3] expects 3"));
  REQUIRE_THROWS_WITH(ops::conv2d_forward(Tensor::zeros({1, 3, 2, 2}), w, Tensor(), {}),
                      ContainsSubstring("larger than the padded input"));
  REQUIRE_THROWS_WITH(ops::conv2d_forward(x, w, Tensor(), {0, 1, 0, 0}),
                      ContainsSubstring("stride must be >= 1"));
  REQUIRE_THROWS_WITH(ops::conv2d_forward(Tensor::zeros({1, 3, 8, 8}, DType::Int32), w, Tensor(), {}),
                      ContainsSubstring("x must be float32"));
  REQUIRE_THROWS_WITH(ops::conv2d_forward(x, w, Tensor::zeros({5}), {}),
                      ContainsSubstring("b must have shape [4]"));
  REQUIRE_THROWS_WITH(ops::conv2d_forward(x, Tensor::zeros({4, 3, 3, 3}, DType::Float64), Tensor(), {}),
                      ContainsSubstring("w is float64 but x is float32"));
  REQUIRE_THROWS_WITH(ops::conv2d_forward(Tensor::zeros({0, 3, 8, 8}), w, Tensor(), {}),
                      ContainsSubstring("x is empty"));
  REQUIRE_THROWS_WITH(ops::conv2d_backward_data(Tensor::zeros({1, 4, 5, 5}), w, {1, 3, 8, 8}, {}),
                      ContainsSubstring("dy must have shape [1, 4, 6, 6]"));
}

TEST_CASE("batch_norm: parameter shapes, one value per channel in train mode, missing running stats") {
  const Tensor x = Tensor::zeros({2, 3, 4, 4}), c3 = Tensor::ones({3});
  REQUIRE_THROWS_WITH(ops::batch_norm_forward(x, Tensor::ones({4}), c3, c3, c3, true, 0.1, 1e-5),
                      ContainsSubstring("gamma must have shape [3]"));
  REQUIRE_THROWS_WITH(ops::batch_norm_forward(Tensor::zeros({1, 3, 1, 1}), c3, c3, c3, c3, true, 0.1, 1e-5),
                      ContainsSubstring("more than one value per channel"));
  REQUIRE_THROWS_WITH(ops::batch_norm_forward(x, c3, c3, Tensor(), Tensor(), false, 0.1, 1e-5),
                      ContainsSubstring("needs them"));
  REQUIRE_THROWS_WITH(ops::batch_norm_forward(x, c3, c3, c3, c3, true, 0.1, 0.0),
                      ContainsSubstring("eps > 0"));
  // eval mode with a single value per channel is fine (it does not use batch statistics)
  REQUIRE_NOTHROW(ops::batch_norm_forward(Tensor::zeros({1, 3, 1, 1}), c3, c3, c3, c3, false, 0.1, 1e-5));
}

TEST_CASE(
    "cross_entropy and bce_with_logits: labels out of range, wrong label dtype, shapes, zero total weight") {
  const Tensor logits = Tensor::zeros({2, 3});
  REQUIRE_THROWS_WITH(ops::cross_entropy_forward(logits, Tensor::from_data<int64_t>({2}, {0, 3}), Tensor()),
                      ContainsSubstring("label 3 of sample 1 is out of range [0, 3)"));
  REQUIRE_THROWS_WITH(ops::cross_entropy_forward(logits, Tensor::from_data<int64_t>({2}, {-1, 0}), Tensor()),
                      ContainsSubstring("label -1 of sample 0"));
  REQUIRE_THROWS_WITH(ops::cross_entropy_forward(logits, Tensor::zeros({2}, DType::Int32), Tensor()),
                      ContainsSubstring("labels must be int64"));
  REQUIRE_THROWS_WITH(ops::cross_entropy_forward(logits, Tensor::zeros({3}, DType::Int64), Tensor()),
                      ContainsSubstring("labels must have shape [2]"));
  REQUIRE_THROWS_WITH(ops::cross_entropy_forward(logits, Tensor::zeros({2}, DType::Int64), Tensor::ones({4})),
                      ContainsSubstring("class_weights must have shape [3]"));
  REQUIRE_THROWS_WITH(ops::cross_entropy_forward(logits, Tensor::zeros({2}, DType::Int64),
                                                 Tensor::from_data<float>({3}, {0, 1, 1})),
                      ContainsSubstring("sum to 0"));
  REQUIRE_THROWS_WITH(
      ops::cross_entropy_forward(Tensor::zeros({0, 3}), Tensor::zeros({0}, DType::Int64), Tensor()),
      ContainsSubstring("logits is empty"));
  REQUIRE_THROWS_WITH(ops::bce_with_logits_forward(Tensor::zeros({4, 1}), Tensor::zeros({4})),
                      ContainsSubstring("targets must have shape [4, 1]"));
}

TEST_CASE("max_pool2d, global_avg_pool2d, linear and elementwise: shape and parameter errors") {
  REQUIRE_THROWS_WITH(ops::max_pool2d_forward(Tensor::zeros({1, 1, 4, 4}), {3, 3, 2, 2, 2, 2}),
                      ContainsSubstring("padding 2x2 must be between 0 and half the kernel 3x3"));
  REQUIRE_THROWS_WITH(ops::max_pool2d_forward(Tensor::zeros({1, 1, 2, 2}), {3, 3, 1, 1, 0, 0}),
                      ContainsSubstring("larger than the padded input"));
  REQUIRE_THROWS_WITH(ops::global_avg_pool2d_forward(Tensor::zeros({2, 3})),
                      ContainsSubstring("x must be 4-D"));
  REQUIRE_THROWS_WITH(ops::linear_forward(Tensor::zeros({2, 5}), Tensor::zeros({3, 4}), Tensor()),
                      ContainsSubstring("has 5 features but w"));
  REQUIRE_THROWS_WITH(ops::add(Tensor::zeros({2, 3}), Tensor::zeros({3, 2})),
                      ContainsSubstring("add: shapes differ"));
  REQUIRE_THROWS_WITH(ops::relu_backward(Tensor::zeros({4}), Tensor::zeros({5})),
                      ContainsSubstring("relu_backward: y must have shape [4]"));
  REQUIRE_THROWS_WITH(nn::functional::flatten(Tensor::full({}, 1.0)),
                      ContainsSubstring("at least one dimension"));
}

TEST_CASE("CPU threads can be set, and zero threads is an error") {
  const int before = ops::cpu_threads();
  ops::set_cpu_threads(1);
  REQUIRE(ops::cpu_threads() == 1);
  ops::set_cpu_threads(before);
  REQUIRE_THROWS_WITH(ops::set_cpu_threads(0), ContainsSubstring("at least one thread"));
}
