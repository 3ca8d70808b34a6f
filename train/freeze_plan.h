// What a config trains (train/config.h's `trainable` family of keys): the freeze mask of a fixed plan, or
// the stages of gradual unfreezing. thaw train (train/trainer.cpp) builds its parameter groups from these,
// and thaw explain (train/explain.cpp) applies the same masks epoch by epoch, so the two cannot disagree.
#pragma once

#include <cstdint>

#include "optim/freeze.h"
#include "train/config.h"

namespace thaw::train {

// trainable = "gradual": fc from epoch 0, then layer4, layer3, layer2, layer1 every unfreeze_every epochs,
// each at its layer_lrs entry (lr when layer_lrs is empty). The stem (conv1, bn1) never trains.
optim::GradualUnfreezing gradual_schedule(const TrainConfig& c);

// The mask of epoch `epoch` (1-based): last_layers, patterns, bn_only or all as the keys say (the same every
// epoch), or gradual's mask at that epoch. An unknown `trainable` is an Error naming the key.
optim::FreezeMask freeze_mask(const TrainConfig& c, int64_t epoch = 1);

}  // namespace thaw::train
