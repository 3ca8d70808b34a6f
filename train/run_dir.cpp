// The run directory's pre-flight check, its lock and the cleanup of temporary files (train/run_dir.h).
#include "train/run_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <regex>

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

std::string run_dir_lock_path(const std::string& dir) {
  return dir + "/.thaw-lock";
}

RunDirLock::RunDirLock(const std::string& dir) {
  const std::string path = run_dir_lock_path(dir);
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  THAW_CHECK(fd_ >= 0, "run directory '{}': cannot open its lock file {}: {}", dir, path,
             std::strerror(errno));
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    char owner[32] = {};
    const ssize_t n = ::pread(fd_, owner, sizeof(owner) - 1, 0);
    std::string pid = n > 0 ? std::string(owner, size_t(n)) : "";
    pid.erase(std::remove_if(pid.begin(), pid.end(), [](char c) { return c < '0' || c > '9'; }), pid.end());
    ::close(fd_);
    fd_ = -1;
    if (error == EWOULDBLOCK) {
      fail("run directory '{}' is in use by another run ({}); wait for it to end, or choose another --name",
           dir, pid.empty() ? "its lock file is held" : "process " + pid);
    }
    fail("run directory '{}': cannot lock {}: {}", dir, path, std::strerror(error));
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  // The owner's id is for messages only: a failure to write it does not matter.
  [[maybe_unused]] const bool noted =
      ::ftruncate(fd_, 0) == 0 && ::pwrite(fd_, pid.data(), pid.size(), 0) == ssize_t(pid.size());
}

RunDirLock::~RunDirLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}

RunDirLock::RunDirLock(RunDirLock&& other) noexcept : fd_(other.fd_) {
  other.fd_ = -1;
}

RunDirLock& RunDirLock::operator=(RunDirLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

std::vector<std::string> remove_stale_temp_files(const std::string& dir) {
  static const std::regex temp_name(R"(.+\.tmp(-[0-9]+)?)");
  std::vector<std::string> removed;
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file(ec) || !std::regex_match(name, temp_name)) continue;
    if (fs::remove(entry.path(), ec)) removed.push_back(name);
  }
  std::sort(removed.begin(), removed.end());
  return removed;
}

}  // namespace thaw::train
