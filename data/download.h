// Fetching the Oxford-IIIT Pet dataset: the two official archives, downloaded with curl (resumable), checked
// against a digest, and unpacked with tar into the official layout (DIR/images, DIR/annotations).
//
// Digests: the official archives are checked against the MD5s that torchvision's OxfordIIITPet dataset
// checks (torchvision/datasets/oxford_iiit_pet.py). thaw knows no official SHA-256; it prints the SHA-256 it
// computes, and a user who has one can require it with `sha256` (which then replaces the MD5 check).
// Archives under other names (e.g. a test's) must come with a SHA-256.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace thaw::data {

struct PetsArchive {
  std::string file;               // name of the archive: "images.tar.gz", "annotations.tar.gz"
  std::vector<std::string> urls;  // tried in order
  std::string md5;                // the official archive's MD5 (lower-case hex)
};

// The two official archives, images first.
const std::vector<PetsArchive>& pets_archives();

// Lower-case hex MD5 and SHA-256 of a file, computed by coreutils' md5sum and sha256sum (throws naming an
// unreadable file).
struct FileDigests {
  std::string md5, sha256;
};
FileDigests file_digests(const std::string& path);

// Unpacks a .tar.gz into dir (created if missing) with `tar -xzf`; throws with tar's own message and what
// to do when tar fails (a truncated or corrupt archive).
void unpack_archive(const std::string& archive, const std::string& dir);

// Verifies `archive` and unpacks it into dir. expected_sha256 (hex, any case) when not empty; else the
// official MD5 when the file is named like an official archive; else an error (nothing to verify against).
// A mismatch is an error naming the file, both digests, and what to do. Returns the computed digests.
FileDigests verify_and_unpack(const std::string& archive, const std::string& dir,
                              const std::string& expected_sha256);

struct DownloadOptions {
  std::string dir;                         // where DIR/images and DIR/annotations end up
  std::vector<std::string> from_archives;  // local archives to verify and unpack instead of downloading
  std::vector<std::string> sha256;         // expected SHA-256 per archive (same order), optional
  bool keep_archives = false;  // keep downloaded archives after unpacking (local ones always stay)
  std::vector<PetsArchive> archives = pets_archives();  // what to download (tests point this elsewhere)
  std::function<void(const std::string&)> log = [](const std::string&) {};  // progress lines
};

// Downloads (curl -L -C - into FILE.part, renamed when complete; an archive already complete in DIR is not
// fetched again) or takes the local archives, verifies, unpacks, and checks that DIR has the official layout
// (images/ and annotations/list.txt, trainval.txt, test.txt). A curl failure (no network) throws a message
// that says how to get the data onto this machine instead.
void download_pets(const DownloadOptions& options);

}  // namespace thaw::data
