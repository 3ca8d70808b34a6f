// thaw data check DIR: is a copy of the Oxford-IIIT Pet dataset usable? The check as a function (tests call
// it) and the printed report. data/check.cpp; docs/data.md "The dataset layout and `thaw data check`".
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace thaw::data {

struct DataCheckOptions {
  bool decode = true;  // decode every listed image (the slow part: ~1 ms per image and thread)
  int threads = 0;     // decoding threads; 0: the hardware's count, at most 8
};

struct BreedRow {
  int64_t class_id = 0;  // 0-based
  std::string name;      // "" when no file uses the class id
  int64_t species = 0;   // 0 cat, 1 dog
  int64_t trainval = 0, test = 0;
};

struct DataCheckResult {
  using Files = std::vector<std::pair<std::string, std::string>>;  // (file name in images/, a note)

  std::string root;
  // Non-empty: the annotation files could not be read (the first error); nothing below is set then.
  std::string annotation_error;
  int64_t listed = 0, trainval = 0, test = 0;  // lines of list.txt, trainval.txt, test.txt
  std::vector<BreedRow> breeds;                // 37 rows, by class id
  bool images_dir_missing = false;             // root/images is not a directory
  int64_t image_files = 0;                     // files in images/
  std::vector<std::string> missing_images;     // listed names whose images/<name>.jpg does not exist
  Files unlisted;                              // files in images/ that no list mentions, with their format
  Files odd_formats;                           // .jpg files in images/ that are not JPEG, with their format
  bool decode_skipped = false;                 // DataCheckOptions::decode was false
  int64_t decoded = 0;                         // listed images decoded without error
  Files unreadable;                            // listed images that cannot be decoded, with the error

  // Why the dataset cannot be used as it is: annotation errors, no images/, missing or undecodable listed
  // images, a breed that is annotated but has no trainval images. Empty: usable. (Class ids that no line uses
  // are reported, not a problem: a subset of the breeds is a usable dataset.)
  std::vector<std::string> problems() const;
  bool usable() const { return problems().empty(); }
};

// Never throws for a problem of the dataset: those end up in the result.
DataCheckResult check_pets_dir(const std::string& root, const DataCheckOptions& options = {});

// The report: counts, the per-breed table, unlisted files, odd formats, missing and unreadable images, and a
// last line "verdict: usable ..." or "verdict: NOT usable: ...".
void print_data_check(const DataCheckResult& result, std::FILE* out = stdout);

}  // namespace thaw::data
