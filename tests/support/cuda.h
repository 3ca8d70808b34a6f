// THAW_SKIP_WITHOUT_CUDA(what): skips a [cuda] test case (THAW_SKIP, reported as skipped by ctest) when this
// thaw was built without CUDA or no device is visible, saying which, e.g. "no CUDA device: CUDA parity tests
// skipped". The only skips the README's test command allows besides a missing pets-mini.
#pragma once

#include "core/cuda_runtime.h"
#include "tests/support/catch.h"

#define THAW_SKIP_WITHOUT_CUDA(what)                                                                       \
  do {                                                                                                     \
    if (!::thaw::cuda_runtime::built_with_cuda()) THAW_SKIP("built without CUDA: " << what << " skipped"); \
    if (::thaw::cuda_runtime::device_count() == 0) THAW_SKIP("no CUDA device: " << what << " skipped");    \
  } while (false)
