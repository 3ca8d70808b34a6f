// nn/conv_bn.h: a Conv2d and the BatchNorm2d after it (then, optionally, a ReLU), as every convolution of a
// ResNet runs; folded into one convolution with a bias when both are frozen.
//
// With running statistics BatchNorm is a fixed affine map per output channel k, so it moves into the conv's
// weights (a ResNet's convs have no bias; one that has is folded too):
//   bn(conv(x; w, b))[k] = (conv(x; w)[k] + b[k] - mean[k]) s[k] + beta[k]
//                        = conv(x; w')[k] + b'[k]
//   s = gamma / sqrt(running_var + eps),   w'[k] = w[k] s[k],   b' = beta + (b - mean) s
// One pass over the activation instead of two (no BatchNorm kernel reads the conv's output again).
//
// When it folds (can_fold): the conv's weight (and bias) and the BatchNorm's weight and bias do not require
// grad, and the BatchNorm uses running statistics (!uses_batch_stats(): mode Frozen, or eval()). Then w' and
// b' are constants of the step. (Grad mode is not enough: an optimizer may update a trainable tensor between
// two no-grad passes without a training pass of this pair in between to drop the fold. Commands that only
// run a model, thaw eval and predict, load it with nothing trainable, so it folds.) Backward: the folded conv
// is the same function of x, so its backward-data is the gradient a trainable layer before it needs; w' and
// b' need none, so autograd records no weight gradient (nn/functional/conv2d.cpp keeps w', not x). Otherwise
// the two ops run as they are, bit for bit.
//
// Error: w' and b' are computed in float64 from the module's values and rounded once to its dtype. For a
// float32 conv over n = C R S terms, |folded - exact| <= gamma_{n+3} (sum |x w s| + |b'|) per output element
// (gamma_m = m u / (1 - m u), u = 2^-24): the n-term dot product (gamma_n, any summation order), w' rounded
// (u per term), b' rounded and added (2 u). The unfolded pair is within gamma_{n+2} of the same value; both
// are float32 evaluations of the same real number (tests/test_conv_bn_fold.cpp checks both). In the CUDA
// backend this holds for fp32 convolutions (tf32 and bf16 round the inputs of each product too).
//
// The cache. w' and b' are computed when first needed and kept until something they depend on changes.
// thaw's Tensor has no version counter, so the cache is keyed on
//   - the fold conditions, checked at every call; a call that does not fold drops the cache (in such a call
//     the BatchNorm may update its running statistics, or the optimizer the parameters that train);
//   - each input's storage, dtype and device (Module::to moves a tensor to new storage);
//   - nn::parameter_writes() (nn/module.h). THE RULE: whoever writes the values of a parameter or a buffer in
//     place calls nn::note_parameter_writes() afterwards; Module::load_state_dict (a checkpoint resume),
//     Module::to, nn/init.h and models/weights.h assign_weights (a weights file) do. Exempt: the optimizer
//     (it updates only tensors that require grad, and a trainable tensor stops the fold) and BatchNorm's
//     forward (it updates running statistics only with batch statistics: no fold).
// Recomputing reads the five tensors to the host (on CUDA: a copy each way, which waits for the queue) and
// makes one pass over the weights. The cache is a second copy of the frozen conv weights (ResNet18: 43 MiB).
#pragma once

#include <cstdint>
#include <memory>

#include "core/tensor.h"
#include "nn/layers.h"

namespace thaw::nn {

// Whether conv then bn fold: nothing of either trains and bn uses running statistics.
bool can_fold(const Conv2d& conv, const BatchNorm2d& bn);

// Not a Module: the conv and the BatchNorm stay registered where their parent names them ("layer1.0.conv1",
// "layer1.0.bn1"); this object runs them, and holds the folded weights.
class ConvBatchNorm {
 public:
  ConvBatchNorm(std::shared_ptr<Conv2d> conv, std::shared_ptr<BatchNorm2d> bn);

  // bn(conv(x)), or relu(bn(conv(x))) when relu: folded when enabled() and can_fold(), else conv->forward
  // then bn->forward (forward_relu). x (N, C, H, W) -> (N, K, P, Q). x is taken by value and released before
  // the BatchNorm or ReLU runs: pass std::move(h) where the caller no longer needs it, so that its memory
  // goes as early as in `h = conv(h); h = bn(h);`.
  Tensor forward(Tensor x, bool relu);

  // Whether the next forward folds.
  bool folds() const { return enabled_ && can_fold(*conv_, *bn_); }
  // Folding on (the default) or off; off drops the cached weights.
  void set_enabled(bool on);
  bool enabled() const { return enabled_; }

  // How many times w' and b' have been computed (tests: only when what they read changed).
  int64_t folds_computed() const { return folds_computed_; }
  // The cached w' (K, C, R, S) and b' (K,); undefined when no fold is cached.
  const Tensor& folded_weight() const { return weight_; }
  const Tensor& folded_bias() const { return bias_; }

  const Conv2d& conv() const { return *conv_; }
  const BatchNorm2d& bn() const { return *bn_; }

 private:
  struct Key {
    const void* data[6] = {};  // conv.weight, conv.bias, bn.weight, bn.bias, bn.running_mean, bn.running_var
    DType dtype = DType::Float32;
    Device device = Device::cpu();
    uint64_t writes = 0;  // nn::parameter_writes()
    bool operator==(const Key& other) const;
  };
  Key key() const;
  void refresh();  // makes weight_ and bias_ those of the current values
  void drop();

  std::shared_ptr<Conv2d> conv_;
  std::shared_ptr<BatchNorm2d> bn_;
  bool enabled_ = true;
  bool cached_ = false;
  Key cached_key_;
  Tensor weight_, bias_;
  int64_t folds_computed_ = 0;
};

}  // namespace thaw::nn
