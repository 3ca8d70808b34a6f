// Finite-difference gradient checks in double on the CPU (docs/style.md: Caffe's check with a kink margin).
//
// For f(inputs) -> y and a fixed random projection r of y's shape, L = sum(y * r). The analytic gradient
// is what autograd gives from y.backward(r); the numeric one is the central difference
//   (L(x + h e_j) - L(x - h e_j)) / 2h
// for every element j of every input that requires grad. An element where the one-sided differences
// disagree sits on a kink (relu at 0, a max-pool tie) within h: it is skipped and counted, since no
// finite difference says anything there.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace thaw::test {

struct GradcheckOptions {
  double step = 1e-6;
  double rtol = 1e-6;
  double atol = 1e-7;
  double kink_threshold = 1e-3;        // one-sided differences further apart than this (relative) mark a kink
  double max_skipped_fraction = 0.05;  // more kinks than this fails the check
};

struct GradcheckResult {
  bool ok = true;
  std::string message;
  int64_t checked = 0, skipped = 0;
  double worst_ratio = 0;  // max |analytic - numeric| / (atol + rtol |numeric|)
};

// inputs: float64 CPU tensors; those with requires_grad() are checked. f must be deterministic.
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          std::vector<Tensor> inputs, const GradcheckOptions& options = {});

// A float64 CPU tensor of uniform values in [low, high), optionally requiring grad.
Tensor random_double(const Shape& shape, uint64_t seed, double low = -1, double high = 1,
                     bool requires_grad = true);

}  // namespace thaw::test

#define REQUIRE_GRADCHECK(f, inputs, ...)                                    \
  do {                                                                       \
    const auto thaw_gc_ = ::thaw::test::gradcheck(f, inputs, ##__VA_ARGS__); \
    INFO(thaw_gc_.message);                                                  \
    REQUIRE(thaw_gc_.ok);                                                    \
  } while (false)
