// thaw::Error and the THAW_CHECK macro: every user-facing failure in thaw is an Error whose message names
// what went wrong (the tensor, file, key or op) in words a user can act on.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace thaw {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Throws thaw::Error with a fmt-formatted message.
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace thaw

// THAW_CHECK(condition, "format {}", args...): throws thaw::Error with the message when condition is false.
#define THAW_CHECK(condition, ...) \
  do {                             \
    if (!(condition)) {            \
      ::thaw::fail(__VA_ARGS__);   \
    }                              \
  } while (false)
