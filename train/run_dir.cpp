// The run directory's pre-flight check (train/run_dir.h).
#include "train/run_dir.h"

#include <filesystem>

#include "core/atomic_write.h"
#include "core/error.h"

namespace thaw::train {

namespace fs = std::filesystem;

void prepare_run_dir(const std::string& dir, int64_t bytes_needed) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  THAW_CHECK(!ec, "run directory '{}' cannot be created: {} (choose another runs_dir)", dir, ec.message());
  const std::string probe = dir + "/.thaw-write-probe";
  try {
    write_text_atomic(probe, "thaw checks that this directory is writable\n");
  } catch (const Error& e) {
    fail("run directory '{}' is not writable ({}); choose another runs_dir", dir, e.what());
  }
  fs::remove(probe, ec);
  const fs::space_info space = fs::space(dir, ec);
  THAW_CHECK(ec || space.available >= uintmax_t(bytes_needed),
             "run directory '{}': only {:.1f} MB free on its file system; the run needs about {:.1f} MB "
             "(weights, checkpoint, optimizer state)",
             dir, double(space.available) / 1e6, double(bytes_needed) / 1e6);
}

}  // namespace thaw::train
