// The one tolerance helper of thaw's tests: |got - ref| <= atol + rtol * |ref| for every element.
// On failure it reports the worst element (index, both values) and how much of its allowance it used.
#pragma once

#include <string>

#include "core/tensor.h"

namespace thaw::test {

struct CloseReport {
  bool ok = true;
  std::string message;     // empty when ok
  double worst_ratio = 0;  // max over elements of |got - ref| / (atol + rtol |ref|)
  double max_abs_error = 0;
  double max_rel_error = 0;  // |got - ref| / |ref| at the element of max_abs_error (0 if ref is 0)
};

// Compares any two tensors of the same shape (any floating dtype and device; copied to double on the CPU).
CloseReport allclose(const Tensor& got, const Tensor& ref, double rtol, double atol,
                     const std::string& what = "");

}  // namespace thaw::test

// REQUIRE_ALLCLOSE(got, ref, rtol, atol): a Catch2 assertion with the worst element in its message.
#define REQUIRE_ALLCLOSE(got, ref, rtol, atol)                                    \
  do {                                                                            \
    const auto thaw_report_ = ::thaw::test::allclose(got, ref, rtol, atol, #got); \
    INFO(thaw_report_.message);                                                   \
    REQUIRE(thaw_report_.ok);                                                     \
  } while (false)
#define CHECK_ALLCLOSE(got, ref, rtol, atol)                                      \
  do {                                                                            \
    const auto thaw_report_ = ::thaw::test::allclose(got, ref, rtol, atol, #got); \
    INFO(thaw_report_.message);                                                   \
    CHECK(thaw_report_.ok);                                                       \
  } while (false)
