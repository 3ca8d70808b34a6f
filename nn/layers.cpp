#include "nn/layers.h"

#include "core/error.h"
#include "core/name_pattern.h"
#include "nn/functional.h"
#include "nn/init.h"

namespace thaw::nn {

namespace F = functional;

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride, int64_t padding,
               bool has_bias, Generator& gen)
    : Module("Conv2d"), params{stride, stride, padding, padding} {
  weight = register_parameter("weight", Tensor::empty({out_channels, in_channels, kernel, kernel}));
  init::default_weight(weight, gen);
  if (has_bias) {
    bias = register_parameter("bias", Tensor::empty({out_channels}));
    init::default_bias(bias, init::fan_in(weight.shape()), gen);
  }
}

Tensor Conv2d::forward(const Tensor& x) {
  return F::conv2d(x, weight, bias, params);
}

const char* batch_norm_mode_name(BatchNormMode mode) {
  return mode == BatchNormMode::Train ? "train" : "frozen";
}

BatchNormMode parse_batch_norm_mode(const std::string& name) {
  if (name == "train") return BatchNormMode::Train;
  if (name == "frozen") return BatchNormMode::Frozen;
  fail("unknown BatchNorm mode '{}': expected 'train' or 'frozen'", name);
}

BatchNorm2d::BatchNorm2d(int64_t channels, double momentum, double eps)
    : Module("BatchNorm2d"), momentum_(momentum), eps_(eps) {
  weight = register_parameter("weight", Tensor::ones({channels}));
  bias = register_parameter("bias", Tensor::zeros({channels}));
  running_mean = register_buffer("running_mean", Tensor::zeros({channels}));
  running_var = register_buffer("running_var", Tensor::ones({channels}));
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  return F::batch_norm(x, weight, bias, running_mean, running_var, uses_batch_stats(), momentum_, eps_);
}

Tensor BatchNorm2d::forward_relu(const Tensor& x) {
  return F::batch_norm_relu(x, weight, bias, running_mean, running_var, uses_batch_stats(), momentum_, eps_);
}

int64_t set_batch_norm_mode(Module& root, const std::vector<std::string>& patterns, BatchNormMode mode) {
  int64_t count = 0;
  for (const auto& [name, module] : root.named_modules()) {
    auto* bn = dynamic_cast<BatchNorm2d*>(module);
    if (bn && name_matches_any(patterns, name)) {
      bn->set_mode(mode);
      ++count;
    }
  }
  THAW_CHECK(count > 0, "BatchNorm mode '{}': the patterns [{}] match no BatchNorm layer",
             batch_norm_mode_name(mode), fmt::join(patterns, ", "));
  return count;
}

Linear::Linear(int64_t in_features, int64_t out_features, bool has_bias, Generator& gen) : Module("Linear") {
  weight = register_parameter("weight", Tensor::empty({out_features, in_features}));
  init::default_weight(weight, gen);
  if (has_bias) {
    bias = register_parameter("bias", Tensor::empty({out_features}));
    init::default_bias(bias, in_features, gen);
  }
}

Tensor Linear::forward(const Tensor& x) {
  return F::linear(x, weight, bias);
}

Tensor ReLU::forward(const Tensor& x) {
  return F::relu(x);
}

MaxPool2d::MaxPool2d(int64_t kernel, int64_t stride, int64_t padding)
    : Module("MaxPool2d"), params{kernel, kernel, stride, stride, padding, padding} {}

Tensor MaxPool2d::forward(const Tensor& x) {
  return F::max_pool2d(x, params);
}

Tensor AdaptiveAvgPool2d::forward(const Tensor& x) {
  return F::global_avg_pool2d(x);
}

Tensor Flatten::forward(const Tensor& x) {
  return F::flatten(x);
}

Sequential::Sequential(std::vector<std::shared_ptr<Module>> modules) : Module("Sequential") {
  for (size_t i = 0; i < modules.size(); ++i)
    register_module(std::to_string(i), std::move(modules[i]));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (const auto& [_, child] : children())
    h = child->forward(h);
  return h;
}

}  // namespace thaw::nn
