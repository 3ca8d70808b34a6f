// pets_golden_file: a golden file that a weights_tools script writes from pets-mini with Debian's Python
// (THAW_TORCH_PYTHON), made at test time and kept in THAW_GOLDEN_DIR between runs.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "core/error.h"
#include "core/hdf5_file.h"
#include "tests/support/scratch.h"

namespace thaw::test {

// Runs `THAW_TORCH_PYTHON weights_tools/<script> --pets-mini DIR --out <golden dir>/<out_name>` (log beside
// it, <out_name>.log) unless that file exists, is newer than the script and its root attribute pets_mini
// says it was made with pets-mini present exactly when it is now. Returns its path. When the script fails
// (most often a missing package: Pillow, torchvision), throws an Error with the script's log, which names the
// package and the install command: the test fails, it is never skipped.
inline std::string pets_golden_file(const std::string& script_name, const std::string& out_name) {
  namespace fs = std::filesystem;
  const fs::path script = fs::path(THAW_SOURCE_DIR) / "weights_tools" / script_name;
  const fs::path out = fs::path(THAW_GOLDEN_DIR) / out_name;
  if (fs::exists(out) && fs::last_write_time(out) >= fs::last_write_time(script)) {
    try {
      if (H5File::open(out.string()).attr_int("pets_mini") == int64_t(have_pets_mini())) return out.string();
    } catch (const Error&) {  // unreadable: make it again
    }
  }
  fs::create_directories(out.parent_path());
  const std::string command = std::string(THAW_TORCH_PYTHON) + " " + script.string() + " --pets-mini " +
                              pets_mini_dir().string() + " --out " + out.string() + " > " + out.string() +
                              ".log 2>&1";
  const int status = std::system(command.c_str());
  if (status != 0) {
    std::ifstream log(out.string() + ".log");
    const std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
    fail("{} failed (status {}): {}", command, status, text);
  }
  return out.string();
}

}  // namespace thaw::test
