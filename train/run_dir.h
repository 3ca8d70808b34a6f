// The run directory (runs/<name>/): the pre-flight check that it can be written before any training starts.
// Its text files are written with core/atomic_write.h.
#pragma once

#include <cstdint>
#include <string>

namespace thaw::train {

// Creates dir (and parents), writes and removes a probe file in it, and checks that the file system has at
// least bytes_needed free. Each failure is an Error naming the directory and what to do.
void prepare_run_dir(const std::string& dir, int64_t bytes_needed);

}  // namespace thaw::train
