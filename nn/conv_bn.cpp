// ConvBatchNorm (nn/conv_bn.h): a conv and its BatchNorm, one conv with a bias when both are frozen.
#include "nn/conv_bn.h"

#include <cmath>
#include <vector>

#include "core/error.h"
#include "nn/functional.h"

namespace thaw::nn {

namespace F = functional;

namespace {

bool trains(const Tensor& t) {
  return t.defined() && t.requires_grad();
}

// A tensor's values as doubles on the host (one device-to-host copy on CUDA, which waits for the queue).
std::vector<double> host_values(const Tensor& t) {
  if (t.dtype() == DType::Float64) return t.to_vector<double>();
  const std::vector<float> v = t.to_vector<float>();
  return {v.begin(), v.end()};
}

// values rounded once to dtype, as a tensor of shape on device.
Tensor from_doubles(const Shape& shape, const std::vector<double>& values, DType dtype, Device device) {
  if (dtype == DType::Float64) return Tensor::from_data<double>(shape, values, device);
  return Tensor::from_data<float>(shape, std::vector<float>(values.begin(), values.end()), device);
}

}  // namespace

bool can_fold(const Conv2d& conv, const BatchNorm2d& bn) {
  return !trains(conv.weight) && !trains(conv.bias) && !trains(bn.weight) && !trains(bn.bias) &&
         !bn.uses_batch_stats();
}

ConvBatchNorm::ConvBatchNorm(std::shared_ptr<Conv2d> conv, std::shared_ptr<BatchNorm2d> bn)
    : conv_(std::move(conv)), bn_(std::move(bn)) {
  THAW_CHECK(conv_ && bn_, "ConvBatchNorm: conv and BatchNorm must both be given");
  THAW_CHECK(conv_->weight.size(0) == bn_->weight.numel(),
             "ConvBatchNorm: the conv has {} output channels, the BatchNorm {}", conv_->weight.size(0),
             bn_->weight.numel());
}

bool ConvBatchNorm::Key::operator==(const Key& other) const {
  for (int i = 0; i < 6; ++i)
    if (data[i] != other.data[i]) return false;
  return dtype == other.dtype && device == other.device && writes == other.writes;
}

ConvBatchNorm::Key ConvBatchNorm::key() const {
  Key k;
  const Tensor* inputs[6] = {&conv_->weight, &conv_->bias,       &bn_->weight,
                             &bn_->bias,     &bn_->running_mean, &bn_->running_var};
  for (int i = 0; i < 6; ++i)
    k.data[i] = inputs[i]->defined() ? inputs[i]->raw_data() : nullptr;
  k.dtype = conv_->weight.dtype();
  k.device = conv_->weight.device();
  k.writes = parameter_writes();
  return k;
}

void ConvBatchNorm::set_enabled(bool on) {
  enabled_ = on;
  if (!on) drop();
}

void ConvBatchNorm::drop() {
  cached_ = false;
  weight_ = bias_ = Tensor();
}

// In double: w'[k] = w[k] s[k], b'[k] = beta[k] + (b[k] - mean[k]) s[k], s = gamma / sqrt(running_var + eps).
void ConvBatchNorm::refresh() {
  const Key now = key();
  if (cached_ && cached_key_ == now) return;
  drop();  // the old w' and b' go before the new ones are made
  const Tensor& w = conv_->weight;
  const std::vector<double> gamma = host_values(bn_->weight), beta = host_values(bn_->bias);
  const std::vector<double> mean = host_values(bn_->running_mean), var = host_values(bn_->running_var);
  const std::vector<double> b = conv_->bias.defined() ? host_values(conv_->bias) : std::vector<double>();
  std::vector<double> weight = host_values(w), bias(gamma.size());
  const size_t per_channel = weight.size() / gamma.size();  // C R S
  for (size_t k = 0; k < gamma.size(); ++k) {
    const double s = gamma[k] / std::sqrt(var[k] + bn_->eps());
    bias[k] = beta[k] + ((b.empty() ? 0.0 : b[k]) - mean[k]) * s;
    for (size_t i = k * per_channel; i < (k + 1) * per_channel; ++i)
      weight[i] *= s;
  }
  weight_ = from_doubles(w.shape(), weight, w.dtype(), w.device());
  bias_ = from_doubles({int64_t(bias.size())}, bias, w.dtype(), w.device());
  cached_ = true;
  cached_key_ = now;
  ++folds_computed_;
}

Tensor ConvBatchNorm::forward(Tensor x, bool relu) {
  if (!folds()) {
    drop();
    Tensor h = conv_->forward(x);
    x = Tensor();
    return relu ? bn_->forward_relu(h) : bn_->forward(h);
  }
  refresh();
  Tensor y = F::conv2d(x, weight_, bias_, conv_->params);
  x = Tensor();
  return relu ? F::relu(y) : y;
}

}  // namespace thaw::nn
