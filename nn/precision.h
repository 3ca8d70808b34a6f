// Choosing the precision of a model's convolutions (core/precision.h).
#pragma once

#include "core/precision.h"
#include "nn/module.h"

namespace thaw::nn {

// Sets Conv2dParams::precision of every Conv2d below root (root included); returns how many it set. The
// autograd nodes keep the params they were recorded with, so a backward pass runs in the precision of its
// forward.
int64_t set_precision(Module& root, Precision precision);

}  // namespace thaw::nn
