// What a config trains (train/freeze_plan.h).
#include "train/freeze_plan.h"

#include "core/error.h"

namespace thaw::train {

optim::GradualUnfreezing gradual_schedule(const TrainConfig& c) {
  const char* layers[4] = {"layer4", "layer3", "layer2", "layer1"};
  std::vector<optim::UnfreezeStage> stages = {{0, {"fc"}, c.lr, "fc"}};
  for (int64_t k = 0; k < 4; ++k)
    stages.push_back({(k + 1) * c.unfreeze_every,
                      {layers[k]},
                      c.layer_lrs.empty() ? c.lr : c.layer_lrs[size_t(k)],
                      layers[k]});
  return optim::GradualUnfreezing(stages);
}

optim::FreezeMask freeze_mask(const TrainConfig& c, int64_t epoch) {
  THAW_CHECK(epoch >= 1, "freeze_mask: epoch {} is not allowed; epochs count from 1", epoch);
  if (c.trainable == "gradual") return gradual_schedule(c).mask_at(epoch - 1);
  if (c.trainable == "last_layers") return optim::last_layers(int(c.layers));
  if (c.trainable == "patterns") return optim::FreezeMask(c.patterns);
  if (c.trainable == "bn_only") return optim::bn_only(c.bn_with_head);
  THAW_CHECK(c.trainable == "all", "trainable: '{}' is not last_layers, patterns, bn_only, gradual or all",
             c.trainable);
  return optim::FreezeMask::everything();
}

}  // namespace thaw::train
