// thaw bench kernels: one row's inputs and thaw's side of it. The kernel called is the ops:: function that
// training calls (kernels/ops.h), so the row measures what a training step runs: argument checks, output
// allocation from the caching allocator and the launch. Pure C++ (device-agnostic): the same case built on
// the CPU is the CPU reference.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "bench/kernels/problems.h"
#include "core/precision.h"
#include "core/tensor.h"

namespace thaw::bench {

struct Case {
  // Inputs by role, on the case's device: "x", "w", "dy", "gamma", "beta", "running_mean", "running_var",
  // "mean", "invstd", "y", "argmax", "a", "b", "logits", "labels", "probs", "dloss" (those the op needs).
  std::map<std::string, Tensor> in;
  std::vector<std::string> outputs;          // the names of what run() returns, in order ("y", "mean", ...)
  std::function<std::vector<Tensor>()> run;  // one call of thaw's kernel on `in`; returns fresh outputs
  double tolerance = 0;                      // max |thaw - ref| / max |ref| allowed per output
};

// Builds the inputs of p from seed (the same values on every device: drawn on the CPU, then copied), and
// the inputs a backward needs from thaw's own forward on that device (BN's mean and invstd, max-pool's
// argmax, relu's y, softmax's probs). batch_norm_forward updates running_mean/var in place at every call.
// Convolutions run in precision (core/precision.h; the CPU computes fp32 whatever it is), and their tolerance
// widens with it.
Case make_case(const Problem& p, Device device, uint64_t seed, Precision precision = Precision::FP32);

struct Comparison {
  double error = 0;    // max over outputs of max |got - ref| / max |ref|
  std::string worst;   // "dx: max |got - ref| 3.1e-05, max |ref| 2.0" for the worst output
  bool finite = true;  // false when got has a NaN or an infinity
};
// Compares got with ref output by output (same count and shapes; any devices; float32).
Comparison compare_outputs(const std::vector<std::string>& names, const std::vector<Tensor>& got,
                           const std::vector<Tensor>& ref);

}  // namespace thaw::bench
