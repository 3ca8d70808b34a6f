// first_non_finite: where a tensor holds a NaN or Inf, for the checks that keep them out of checkpoints,
// optimizer states and reported accuracies.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/tensor.h"

namespace thaw {

// The flat index of t's first NaN or Inf element, or -1 when there is none (integer and undefined tensors
// never have one). Any device: a CUDA tensor is copied to the host first.
inline int64_t first_non_finite(const Tensor& t) {
  if (!t.defined() || (t.dtype() != DType::Float32 && t.dtype() != DType::Float64)) return -1;
  const Tensor host = t.device().is_cpu() ? t : t.to(Device::cpu());
  const auto find = [&](const auto* p) -> int64_t {
    for (int64_t i = 0; i < host.numel(); ++i)
      if (!std::isfinite(p[i])) return i;
    return -1;
  };
  return host.dtype() == DType::Float32 ? find(host.data<float>()) : find(host.data<double>());
}

}  // namespace thaw
