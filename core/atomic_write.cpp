// write_text_atomic (core/atomic_write.h).
#include "core/atomic_write.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace thaw {

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

}  // namespace thaw
