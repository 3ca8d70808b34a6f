// Scratch space for tests, where pets-mini is (THAW_PETS_MINI, set by tests/CMakeLists.txt), the skip for
// when it is not there, and error_of for tests of error messages.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <functional>
#include <string>
#include <system_error>

#include "core/error.h"
#include "tests/support/catch.h"

namespace thaw::test {

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() /
           ("thaw_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

inline const std::filesystem::path& pets_mini_dir() {
  static const std::filesystem::path dir = THAW_PETS_MINI;
  return dir;
}

// pets-mini is there: its annotations (with the full official split lists) and its images.
inline bool have_pets_mini() {
  return std::filesystem::is_regular_file(pets_mini_dir() / "annotations" / "full_trainval.txt") &&
         std::filesystem::exists(pets_mini_dir() / "images" / "Abyssinian_1.jpg");
}

// The message of the thaw::Error that f throws, or "(no error)" when it throws none.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace thaw::test

// Skips the test case, visibly, when pets-mini is not there (scripts/check_test_run.py allows this reason).
#define REQUIRE_PETS_MINI()                                                                                \
  do {                                                                                                     \
    if (!thaw::test::have_pets_mini())                                                                     \
      THAW_SKIP("pets-mini not found at " << thaw::test::pets_mini_dir().string() << " (THAW_PETS_MINI)"); \
  } while (false)
