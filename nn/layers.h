// The layers ResNet is built from, named and initialised as in PyTorch.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/rng.h"
#include "kernels/ops.h"
#include "nn/module.h"

namespace thaw::nn {

// weight: (out, in, k, k), bias: (out,) when bias. Initialised like nn.Conv2d (kaiming uniform, a = sqrt 5).
class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride, int64_t padding,
         bool bias, Generator& gen);
  Tensor forward(const Tensor& x) override;  // (N, in, H, W) -> (N, out, P, Q)
  Tensor weight, bias;
  ops::Conv2dParams params;
};

// How a BatchNorm layer normalises, independent of train()/eval() and of whether its affine
// parameters train:
//   Train:  batch statistics in train(), running statistics in eval() (PyTorch's behaviour);
//   Frozen: running statistics always, never updated (a pretrained BN kept as it is while fine-tuning).
enum class BatchNormMode { Train, Frozen };
const char* batch_norm_mode_name(BatchNormMode mode);
BatchNormMode parse_batch_norm_mode(const std::string& name);  // "train" | "frozen"

// weight (gamma) = 1, bias (beta) = 0, running_mean = 0, running_var = 1; momentum 0.1, eps 1e-5.
class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t channels, double momentum = 0.1, double eps = 1e-5);
  Tensor forward(const Tensor& x) override;
  // relu(forward(x)), fused (F::batch_norm_relu): what a ResNet block does after most of its BatchNorms.
  Tensor forward_relu(const Tensor& x);
  void set_mode(BatchNormMode mode) { mode_ = mode; }
  BatchNormMode mode() const { return mode_; }
  bool uses_batch_stats() const { return is_training() && mode_ == BatchNormMode::Train; }
  double eps() const { return eps_; }
  Tensor weight, bias, running_mean, running_var;

 private:
  double momentum_, eps_;
  BatchNormMode mode_ = BatchNormMode::Train;
};

// Sets the mode of every BatchNorm2d whose module name matches one of the patterns (core/name_pattern.h);
// returns how many it set. A pattern list that matches no BatchNorm layer is an error naming the patterns.
int64_t set_batch_norm_mode(Module& root, const std::vector<std::string>& patterns, BatchNormMode mode);

// weight: (out, in), bias: (out,). Initialised like nn.Linear.
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias, Generator& gen);
  Tensor forward(const Tensor& x) override;  // (N, in) -> (N, out)
  Tensor weight, bias;
};

class ReLU : public Module {
 public:
  ReLU() : Module("ReLU") {}
  Tensor forward(const Tensor& x) override;
};

class MaxPool2d : public Module {
 public:
  MaxPool2d(int64_t kernel, int64_t stride, int64_t padding);
  Tensor forward(const Tensor& x) override;
  ops::Pool2dParams params;
};

// AdaptiveAvgPool2d((1, 1)): (N, C, H, W) -> (N, C, 1, 1).
class AdaptiveAvgPool2d : public Module {
 public:
  AdaptiveAvgPool2d() : Module("AdaptiveAvgPool2d") {}
  Tensor forward(const Tensor& x) override;
};

class Flatten : public Module {
 public:
  Flatten() : Module("Flatten") {}
  Tensor forward(const Tensor& x) override;  // (N, ...) -> (N, -1)
};

// Children named "0", "1", ... applied in order.
class Sequential : public Module {
 public:
  explicit Sequential(std::vector<std::shared_ptr<Module>> modules);
  Tensor forward(const Tensor& x) override;
};

}  // namespace thaw::nn
