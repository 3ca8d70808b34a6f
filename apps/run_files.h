// Files of a run directory (runs/<name>/): text files written atomically, and the pre-flight check that the
// directory can be written before any training starts.
#pragma once

#include <cstdint>
#include <string>

namespace thaw::apps {

// Writes text to path.tmp, flushes and closes it, then renames it over path: a reader sees the old file or
// the new one, never half of one. Errors (disk full, no permission) name the file.
void write_text_atomic(const std::string& path, const std::string& text);

// Creates dir (and parents), writes and removes a probe file in it, and checks that the file system has at
// least bytes_needed free. Each failure is an Error naming the directory and what to do.
void prepare_run_dir(const std::string& dir, int64_t bytes_needed);

}  // namespace thaw::apps
