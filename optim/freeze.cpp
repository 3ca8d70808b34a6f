// Freeze masks and the report's freezing strategies (optim/freeze.h).
#include "optim/freeze.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "core/error.h"
#include "core/name_pattern.h"

namespace thaw::optim {

// ---- FreezeMask -------------------------------------------------------------------------------------------

FreezeMask::FreezeMask(std::vector<std::string> trainable_patterns)
    : patterns_(std::move(trainable_patterns)) {
  for (const std::string& p : patterns_)
    THAW_CHECK(!p.empty(), "FreezeMask: empty pattern");
}

FreezeMask FreezeMask::parse(std::string_view comma_separated) {
  return FreezeMask(split_patterns(comma_separated));
}

FreezeMask FreezeMask::everything() {
  return FreezeMask({"*"});
}

bool FreezeMask::is_trainable(std::string_view name) const {
  return name_matches_any(patterns_, name);
}

FreezeMask FreezeMask::unite(const FreezeMask& other) const {
  std::vector<std::string> patterns = patterns_;
  for (const std::string& p : other.patterns_)
    if (std::find(patterns.begin(), patterns.end(), p) == patterns.end()) patterns.push_back(p);
  return FreezeMask(std::move(patterns));
}

std::string FreezeMask::str() const {
  if (patterns_.empty()) return "(nothing)";
  std::string out;
  for (const std::string& p : patterns_)
    out += (out.empty() ? "" : ", ") + p;
  return out;
}

void FreezeMask::check_patterns(const NamedTensors& named_params) const {
  for (const std::string& pattern : patterns_) {
    const bool used = std::any_of(named_params.begin(), named_params.end(),
                                  [&](const auto& named) { return name_matches(pattern, named.first); });
    THAW_CHECK(used, "freeze mask: trainable pattern '{}' matches none of the {} parameters (first: '{}')",
               pattern, named_params.size(),
               named_params.empty() ? std::string("none") : named_params.front().first);
  }
}

std::vector<std::string> FreezeMask::trainable_names(const NamedTensors& named_params) const {
  check_patterns(named_params);
  std::vector<std::string> names;
  for (const auto& [name, _] : named_params)
    if (is_trainable(name)) names.push_back(name);
  return names;
}

void FreezeMask::apply(const NamedTensors& named_params) const {
  check_patterns(named_params);
  for (const auto& [name, param] : named_params) {
    THAW_CHECK(param.defined() && param.is_leaf(),
               "freeze mask: parameter '{}' must be a defined leaf tensor", name);
  }
  for (const auto& [name, param] : named_params) {
    const bool trainable = is_trainable(name);
    Tensor handle = param;  // set_requires_grad is non-const on the handle; the flag lives in the shared impl
    handle.set_requires_grad(trainable);
    if (!trainable) param.zero_grad();
  }
}

// ---- the report's strategies ------------------------------------------------------------------------------

FreezeMask last_layers(int l) {
  THAW_CHECK(
      l >= 0 && l <= 5,
      "last_layers: l = {} is not one of 0, 1, 2, 3, 4, 5 (1 = fc only, 2 = layer4 + fc, 3 = layer3-4 + fc, "
      "4 = layer2-4 + fc, 5 = layer1-4 + fc; 0 = fc only, as the report's ResNet50 depth 0)",
      l);
  std::vector<std::string> patterns;
  for (int layer = 4; layer >= 6 - l; --layer)
    patterns.push_back("layer" + std::to_string(layer));
  patterns.push_back("fc");
  return FreezeMask(std::move(patterns));
}

FreezeMask bn_only(bool with_head) {
  // torchvision names BatchNorm "bn1" (stem), "layerX.Y.bnZ" (blocks) and "layerX.Y.downsample.1".
  std::vector<std::string> patterns = {"*bn*.weight", "*bn*.bias", "*.downsample.1.weight",
                                       "*.downsample.1.bias"};
  if (with_head) patterns.push_back("fc");
  return FreezeMask(std::move(patterns));
}

// ---- GradualUnfreezing ------------------------------------------------------------------------------------

GradualUnfreezing::GradualUnfreezing(std::vector<UnfreezeStage> stages) : stages_(std::move(stages)) {
  std::stable_sort(stages_.begin(), stages_.end(),
                   [](const UnfreezeStage& a, const UnfreezeStage& b) { return a.epoch < b.epoch; });
  std::set<std::string> names;
  for (UnfreezeStage& stage : stages_) {
    THAW_CHECK(!stage.patterns.empty(), "GradualUnfreezing: the stage at epoch {} has no patterns",
               stage.epoch);
    if (stage.name.empty()) {
      for (const std::string& p : stage.patterns)
        stage.name += (stage.name.empty() ? "" : "+") + p;
    }
    THAW_CHECK(stage.epoch >= 0, "GradualUnfreezing: stage '{}' starts at epoch {}; epochs are >= 0",
               stage.name, stage.epoch);
    THAW_CHECK(std::isfinite(stage.lr) && stage.lr >= 0, "GradualUnfreezing: stage '{}' has lr {}",
               stage.name, stage.lr);
    THAW_CHECK(names.insert(stage.name).second, "GradualUnfreezing: two stages are named '{}'", stage.name);
  }
}

GradualUnfreezing GradualUnfreezing::report_default(double lr, bool layerwise_lr) {
  return GradualUnfreezing({
      {0, {"fc"}, lr, "fc"},
      {2, {"layer4"}, layerwise_lr ? 1e-2 : lr, "layer4"},
      {4, {"layer3"}, layerwise_lr ? 1e-3 : lr, "layer3"},
      {6, {"layer2"}, layerwise_lr ? 1e-4 : lr, "layer2"},
      {8, {"layer1"}, layerwise_lr ? 1e-5 : lr, "layer1"},
  });
}

FreezeMask GradualUnfreezing::mask_at(int64_t epoch) const {
  FreezeMask mask;
  for (const UnfreezeStage& stage : stages_)
    if (stage.epoch <= epoch) mask = mask.unite(FreezeMask(stage.patterns));
  return mask;
}

void GradualUnfreezing::apply(const NamedTensors& named_params, int64_t epoch) const {
  mask_at(epoch).apply(named_params);
}

std::vector<ParamGroup> GradualUnfreezing::param_groups(const NamedTensors& named_params,
                                                        double weight_decay) const {
  std::vector<ParamGroup> groups;
  for (const UnfreezeStage& stage : stages_) {
    FreezeMask(stage.patterns).check_patterns(named_params);
    groups.push_back(ParamGroup{{}, stage.lr, weight_decay, stage.name});
  }
  for (const auto& named : named_params) {
    for (size_t i = 0; i < stages_.size(); ++i) {
      if (name_matches_any(stages_[i].patterns, named.first)) {
        groups[i].params.push_back(named);
        break;
      }
    }
  }
  for (const ParamGroup& group : groups)
    THAW_CHECK(!group.params.empty(),
               "GradualUnfreezing: stage '{}' gets no parameter (earlier stages took them all)", group.name);
  return groups;
}

}  // namespace thaw::optim
