// Run directory files (run_files.h).
#include "apps/run_files.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace thaw::apps {

namespace fs = std::filesystem;

void write_text_atomic(const std::string& path, const std::string& text) {
  const std::string temp = path + ".tmp";
  std::FILE* f = std::fopen(temp.c_str(), "wb");
  THAW_CHECK(f, "cannot write '{}': {}", temp, std::strerror(errno));
  const bool written = std::fwrite(text.data(), 1, text.size(), f) == text.size() && std::fflush(f) == 0;
  const int saved_errno = errno;
  const bool closed = std::fclose(f) == 0;
  if (!written || !closed) {
    std::remove(temp.c_str());
    fail("cannot write '{}': {}", path, std::strerror(written ? errno : saved_errno));
  }
  std::error_code ec;
  fs::rename(temp, path, ec);
  THAW_CHECK(!ec, "cannot rename '{}' to '{}': {}", temp, path, ec.message());
}

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

}  // namespace thaw::apps
