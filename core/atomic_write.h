// Atomic text files: checkpoints' companions, metrics, summaries, reports and benchmark results.
#pragma once

#include <string>

namespace thaw {

// Writes text to path.tmp, flushes and closes it, then renames it over path: a reader sees the old file or
// the new one, never half of one. Errors (disk full, no permission) name the file.
void write_text_atomic(const std::string& path, const std::string& text);

}  // namespace thaw
