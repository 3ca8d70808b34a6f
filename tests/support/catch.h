// One include for Catch2 v2 (Debian 12: catch2/catch.hpp) and v3 (Ubuntu 24.04:
// catch2/catch_test_macros.hpp). ContainsSubstring(text): the string matcher under its v3 name.
// THAW_SKIP(message): a visible skip (v3: SKIP, reported as skipped; v2 has no skip, so a WARN and return).
#pragma once

#if __has_include(<catch2/catch_test_macros.hpp>)
#include <catch2/catch_approx.hpp>
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>
#define THAW_SKIP(...) SKIP(__VA_ARGS__)
using Catch::Matchers::ContainsSubstring;
#else
#include <catch2/catch.hpp>
#define THAW_SKIP(...)                \
  do {                                \
    WARN("SKIPPED: " << __VA_ARGS__); \
    return;                           \
  } while (false)
// v3's name for v2's string matcher Contains.
inline auto ContainsSubstring(const std::string& s) {
  return Catch::Matchers::Contains(s);
}
#endif
