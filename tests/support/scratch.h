// Scratch space for tests, and where pets-mini is (THAW_PETS_MINI, set by tests/CMakeLists.txt).
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>

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

}  // namespace thaw::test
