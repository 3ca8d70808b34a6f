// THAW_SKIP_WITHOUT_CUDA(what): skips a [cuda] test case (THAW_SKIP, reported as skipped by ctest) when this
// thaw was built without CUDA or no device is visible, saying which, e.g. "no CUDA device: CUDA parity tests
// skipped". The only skips the README's test command allows besides a missing pets-mini.
#pragma once

#include <algorithm>

#include "core/cuda_runtime.h"
#include "core/tensor.h"
#include "tests/support/catch.h"

// Whether "the CUDA device" is the CPU emulation of a build configured with -DTHAW_CUDA=EMULATE
// (tests/cuda_emulation/, scripts/test-emulated-cuda.sh), where every GPU thread is a fiber on one core. The
// CUDA tests keep every case there but run the full-size shapes smaller (cuda_test_shape, and the ResNet
// table at a 32-pixel image).
inline constexpr bool kEmulatedCuda = THAW_CUDA_EMULATION != 0;

// shape as a CUDA test runs it: as it is on a GPU; in the emulation, an N x C x H x W shape with H and W
// capped at 16 (the kernels' edges and tiles still show, at a fraction of the work).
inline ::thaw::Shape cuda_test_shape(::thaw::Shape shape) {
  if (kEmulatedCuda && shape.size() == 4)
    for (size_t d = 2; d < 4; ++d)
      shape[d] = std::min<int64_t>(shape[d], 16);
  return shape;
}

#define THAW_SKIP_WITHOUT_CUDA(what)                                                                       \
  do {                                                                                                     \
    if (!::thaw::cuda_runtime::built_with_cuda()) THAW_SKIP("built without CUDA: " << what << " skipped"); \
    if (::thaw::cuda_runtime::device_count() == 0) THAW_SKIP("no CUDA device: " << what << " skipped");    \
  } while (false)
