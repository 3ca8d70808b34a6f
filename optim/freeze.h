// Freeze masks: which parameters train, as data (docs/design.md, "Freezing is data").
//
// A FreezeMask is the set of trainable names, given as name patterns (core/name_pattern.h: '*' and '?' globs
// that match a whole name or a dotted prefix of it, so "layer4" means every parameter under layer4).
// apply() sets requires_grad on each parameter from the mask; the optimizer skips every parameter that
// does not require grad, and autograd records nothing for a frozen prefix. A pattern that matches no
// parameter at all is an error naming it (a typo would otherwise freeze silently).
//
// The report's strategies (docs/the-report.md), on torchvision's ResNet names:
//   last_layers(l)        "the last l layers": the last l+1 children of the ResNet (conv1, bn1, relu,
//   maxpool,
//                         layer1..4, avgpool, fc) plus fc; relu/maxpool/avgpool have no parameters, so
//                         l = 1: fc;  2: layer4, fc;  3: layer3-4, fc;  4: layer2-4, fc;  5: layer1-4, fc.
//                         l = 0 is fc only as well: the report's ResNet50 "depth 0" and "depth 1" both train
//                         fc only. conv1/bn1 (the stem) train in none of them.
//   bn_only(with_head)    every BatchNorm affine parameter (bn1, layerX.Y.bnZ and layerX.Y.downsample.1,
//                         which is the BatchNorm of a downsample branch), plus fc when with_head.
//   GradualUnfreezing     stages {epoch, patterns, lr}: the mask at epoch e is the union of the stages that
//                         started at or before e; each stage is its own optimizer group with its own lr.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "optim/optimizer.h"

namespace thaw::optim {

class FreezeMask {
 public:
  FreezeMask() = default;  // nothing trainable
  explicit FreezeMask(std::vector<std::string> trainable_patterns);
  static FreezeMask parse(std::string_view comma_separated);  // "layer3, layer4, fc"
  static FreezeMask everything();                             // {"*"}: full fine-tuning

  const std::vector<std::string>& patterns() const { return patterns_; }
  bool is_trainable(std::string_view name) const;
  FreezeMask unite(const FreezeMask& other) const;  // trainable in either
  std::string str() const;                          // "layer4, fc"; "(nothing)" when empty

  // Throws when a pattern matches none of the names (naming the pattern).
  void check_patterns(const NamedTensors& named_params) const;
  // The trainable names, in the order of named_params (checks the patterns).
  std::vector<std::string> trainable_names(const NamedTensors& named_params) const;
  // Checks the patterns, then sets requires_grad(is_trainable(name)) on every parameter (leaves) and drops
  // the gradient of every frozen one. Nothing changes when it throws.
  void apply(const NamedTensors& named_params) const;

 private:
  std::vector<std::string> patterns_;
};

// The report's "last l layers" (file comment); l in 0..5, otherwise an error listing the allowed values.
FreezeMask last_layers(int l);
// All BatchNorm affine parameters (+ fc when with_head).
FreezeMask bn_only(bool with_head);

struct UnfreezeStage {
  int64_t epoch = 0;                  // first epoch (0-based) in which these parameters train
  std::vector<std::string> patterns;  // what becomes trainable
  double lr = 1e-3;                   // the lr of this stage's parameter group
  std::string name;                   // group name; the patterns joined by '+' when empty
};

class GradualUnfreezing {
 public:
  // Stages in any order (kept sorted by epoch, stably); epochs >= 0, patterns non-empty, names unique.
  explicit GradualUnfreezing(std::vector<UnfreezeStage> stages);
  // The report's schedule: fc at epoch 0, then layer4, layer3, layer2, layer1 at epochs 2, 4, 6, 8 (the stem,
  // conv1/bn1, never trains). All groups at lr, or with layerwise_lr the rates the report meant: fc lr,
  // layer4 1e-2, layer3 1e-3, layer2 1e-4, layer1 1e-5.
  static GradualUnfreezing report_default(double lr = 1e-3, bool layerwise_lr = false);

  const std::vector<UnfreezeStage>& stages() const { return stages_; }
  // Union of the stages with epoch <= e.
  FreezeMask mask_at(int64_t epoch) const;
  // mask_at(epoch).apply(named_params).
  void apply(const NamedTensors& named_params, int64_t epoch) const;
  // One group per stage (its name and lr, the given weight_decay) holding the parameters that stage
  // unfreezes; a parameter matched by several stages goes to the earliest. Parameters in no stage go
  // nowhere (they stay frozen). Build the optimizer from these once: it keeps its state across stages.
  // Errors when a pattern matches no parameter or a stage gets no parameter.
  std::vector<ParamGroup> param_groups(const NamedTensors& named_params, double weight_decay = 0) const;

 private:
  std::vector<UnfreezeStage> stages_;
};

}  // namespace thaw::optim
