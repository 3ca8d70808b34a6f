// The run directory (runs/<name>/): the pre-flight check that it can be written before any training starts,
// the lock that makes one run its only writer, and the cleanup of what a killed run left half-written. Its
// text files are written with core/atomic_write.h.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace thaw::train {

// Creates dir (and parents), writes and removes a probe file in it, and checks that the file system has at
// least bytes_needed free. Each failure is an Error naming the directory and what to do.
void prepare_run_dir(const std::string& dir, int64_t bytes_needed);

// The lock file inside a run directory: dir/.thaw-lock.
std::string run_dir_lock_path(const std::string& dir);

// Ownership of a run directory for as long as the object lives: an exclusive flock(2) on dir/.thaw-lock
// (created if missing; it holds the owner's process id, for the message another run gets). The kernel
// releases the lock when its process ends however it ends (kill -9 included), so a lock file a crashed run
// left behind does not wedge the directory: only a live owner blocks. Two RunDirLocks on one directory
// exclude each other in one process too.
class RunDirLock {
 public:
  // requires: dir exists. Throws Error naming dir (and the owner's process id) when another run holds it.
  explicit RunDirLock(const std::string& dir);
  ~RunDirLock();
  RunDirLock(RunDirLock&& other) noexcept;
  RunDirLock& operator=(RunDirLock&& other) noexcept;
  RunDirLock(const RunDirLock&) = delete;
  RunDirLock& operator=(const RunDirLock&) = delete;

 private:
  int fd_ = -1;
};

// Removes the temporary files a killed writer left in dir (not its subdirectories): `<file>.tmp` (core/
// atomic_write.h) and `<file>.tmp-<pid>` (H5File::create). Call it only while holding the directory's lock:
// then no live writer owns them. Returns the names removed, sorted.
std::vector<std::string> remove_stale_temp_files(const std::string& dir);

}  // namespace thaw::train
