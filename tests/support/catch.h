// One include for Catch2 v2 (Debian 12: catch2/catch.hpp) and v3 (Ubuntu 24.04:
// catch2/catch_test_macros.hpp). ContainsSubstring(text): the string matcher under its v3 name.
//
// THAW_SKIP(message): a visible skip, for what a machine may lack without anything being wrong: a CUDA device
// (or a CUDA build), or the pets-mini images. A missing package or reference file is never a skip: the test
// fails and names the install command. The skip prints "THAW-SKIPPED: message" on stdout, which
// tests/CMakeLists.txt gives ctest as SKIP_REGULAR_EXPRESSION, so ctest reports the test as skipped (not
// passed) on Catch2 v2 and v3 alike; then v3's SKIP, or v2's return (v2 has no skip). Use it before the
// first assertion of a test case.
#pragma once

#include <iostream>
#include <sstream>

#if __has_include(<catch2/catch_test_macros.hpp>)
#include <catch2/catch_approx.hpp>
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>
#define THAW_SKIP_END_(reason) SKIP(reason)
using Catch::Matchers::ContainsSubstring;
#else
#include <catch2/catch.hpp>
#define THAW_SKIP_END_(reason) \
  WARN(reason);                \
  return
// v3's name for v2's string matcher Contains.
inline auto ContainsSubstring(const std::string& s) {
  return Catch::Matchers::Contains(s);
}
#endif

#define THAW_SKIP(...)                                                     \
  do {                                                                     \
    std::ostringstream thaw_skip_reason_;                                  \
    thaw_skip_reason_ << __VA_ARGS__;                                      \
    std::cout << "THAW-SKIPPED: " << thaw_skip_reason_.str() << std::endl; \
    THAW_SKIP_END_(thaw_skip_reason_.str());                               \
  } while (false)
