#include "nn/precision.h"

#include "nn/layers.h"

namespace thaw::nn {

int64_t set_precision(Module& root, Precision precision) {
  int64_t count = 0;
  for (const auto& [name, module] : root.named_modules()) {
    if (auto* conv = dynamic_cast<Conv2d*>(module)) {
      conv->params.precision = precision;
      ++count;
    }
  }
  return count;
}

}  // namespace thaw::nn
