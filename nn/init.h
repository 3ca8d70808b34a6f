// Parameter initialisations, as PyTorch defines them (so that a thaw model starts from the same
// distribution as its torchvision twin; the values differ, the generators being different).
#pragma once

#include "core/rng.h"
#include "core/tensor.h"

namespace thaw::nn::init {

// fan_in = size(1) * receptive field, fan_out = size(0) * receptive field (receptive field = R*S for convs)
int64_t fan_in(const Shape& weight_shape);
int64_t fan_out(const Shape& weight_shape);

// torch.nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu"): N(0, sqrt(2 / fan_out)).
// torchvision's ResNet initialises every conv this way.
void kaiming_normal_fan_out(const Tensor& w, Generator& gen);
// nn.Conv2d / nn.Linear defaults: kaiming_uniform_(a = sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the
// weight, and the same bound for the bias.
void default_weight(const Tensor& w, Generator& gen);
void default_bias(const Tensor& b, int64_t fan_in, Generator& gen);

}  // namespace thaw::nn::init
