// thaw data download (data/download.h): curl and tar as subprocesses, MD5 and SHA-256 computed here.
#include "data/download.h"

#include <fmt/format.h>

#include <sys/wait.h>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace thaw::data {

namespace fs = std::filesystem;

namespace {

constexpr const char* kDatasetPage = "https://www.robots.ox.ac.uk/~vgg/data/pets/";

std::string shell_quote(const std::string& arg) {
  std::string out = "'";
  for (char c : arg)
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs a shell command line; returns its exit status (-1 when it could not run) and its combined output.
int run_capture(const std::string& command, std::string& output) {
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0)
    output.append(buf, n);
  const int status = ::pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string lower(std::string s) {
  for (char& c : s)
    c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// What to do when this machine cannot download: the same text for every way the download can fail.
std::string offline_advice(const std::string& dir) {
  return fmt::format(
      "If this machine has no network access, get the data another way:\n"
      "  1. on a machine with network access, download {0}data/images.tar.gz and annotations.tar.gz\n"
      "     (links on {0}), and copy them here;\n"
      "  2. then either run `thaw data download {1} --from-archives images.tar.gz annotations.tar.gz`\n"
      "     (verifies the official MD5s and unpacks), or unpack them yourself:\n"
      "     `tar -xzf images.tar.gz -C {1} && tar -xzf annotations.tar.gz -C {1}`, so that {1}/images and\n"
      "     {1}/annotations exist (the official layout), and check with `thaw data check {1}`.",
      kDatasetPage, dir);
}

const PetsArchive* official_archive_named(const std::string& file_name) {
  for (const PetsArchive& a : pets_archives())
    if (a.file == file_name) return &a;
  return nullptr;
}

}  // namespace

const std::vector<PetsArchive>& pets_archives() {
  // URLs: the dataset page's links (www.robots.ox.ac.uk, which torchvision uses and which redirects) and the
  // VGG file server they moved to (thor.robots.ox.ac.uk). MD5s: torchvision 0.14,
  // datasets/oxford_iiit_pet.py.
  static const std::vector<PetsArchive> archives = {
      {"images.tar.gz",
       {"https://thor.robots.ox.ac.uk/~vgg/data/pets/images.tar.gz",
        "https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz"},
       "5c4f3ee8e5d25df40f4fd59a7f44e54c"},
      {"annotations.tar.gz",
       {"https://thor.robots.ox.ac.uk/~vgg/data/pets/annotations.tar.gz",
        "https://www.robots.ox.ac.uk/~vgg/data/pets/data/annotations.tar.gz"},
       "95a8c909bbe2e81eed6a22bccdf3f68f"},
  };
  return archives;
}

// Digests come from coreutils (md5sum, sha256sum), as the archives come from curl and tar: no hash code of
// thaw's own to get wrong.
FileDigests file_digests(const std::string& path) {
  THAW_CHECK(fs::is_regular_file(path), "cannot read {}: not a file", path);
  const auto digest = [&](const char* tool, size_t hex_length) {
    std::string output;
    const int status = run_capture(fmt::format("{} -b -- {}", tool, shell_quote(path)), output);
    THAW_CHECK(status == 0 && output.size() >= hex_length, "cannot compute the {} of {}: {}", tool, path,
               trim(output));
    return lower(output.substr(0, hex_length));
  };
  return {digest("md5sum", 32), digest("sha256sum", 64)};
}

void unpack_archive(const std::string& archive, const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  THAW_CHECK(!ec, "cannot create {}: {}", dir, ec.message());
  std::string output;
  const int status =
      run_capture(fmt::format("tar -xzf {} -C {}", shell_quote(archive), shell_quote(dir)), output);
  THAW_CHECK(
      status == 0,
      "could not unpack {} into {} (tar exit status {}): {}\nThe archive is truncated or corrupt (an "
      "interrupted download?): delete it and download it again. Files unpacked before the error may be "
      "left in {}.",
      archive, dir, status, trim(output), dir);
}

FileDigests verify_and_unpack(const std::string& archive, const std::string& dir,
                              const std::string& expected_sha256) {
  THAW_CHECK(fs::is_regular_file(archive), "{}: no such archive", archive);
  const FileDigests got = file_digests(archive);
  if (!expected_sha256.empty()) {
    THAW_CHECK(lower(trim(expected_sha256)) == got.sha256,
               "{}: SHA-256 mismatch: expected {}, got {}. The file is corrupt or incomplete, or not the "
               "archive you meant: delete it and download it again.",
               archive, lower(trim(expected_sha256)), got.sha256);
  } else {
    const PetsArchive* official = official_archive_named(fs::path(archive).filename().string());
    THAW_CHECK(official != nullptr,
               "{}: cannot verify it: it is not named like an official archive (images.tar.gz, "
               "annotations.tar.gz) and no SHA-256 was given (--sha256)",
               archive);
    THAW_CHECK(
        official->md5 == got.md5,
        "{}: MD5 mismatch with the official {}: expected {}, got {}. The file is corrupt or incomplete "
        "(an interrupted download?), or not the official archive: delete it and download it again.",
        archive, official->file, official->md5, got.md5);
  }
  unpack_archive(archive, dir);
  return got;
}

void download_pets(const DownloadOptions& opt) {
  THAW_CHECK(!opt.dir.empty(), "thaw data download: no target directory given");
  const bool local = !opt.from_archives.empty();
  const size_t n = local ? opt.from_archives.size() : opt.archives.size();
  THAW_CHECK(
      opt.sha256.empty() || opt.sha256.size() == n,
      "thaw data download: {} SHA-256 value(s) given for {} archive(s); give one per archive, in order",
      opt.sha256.size(), n);
  std::error_code ec;
  fs::create_directories(opt.dir, ec);
  THAW_CHECK(!ec, "cannot create {}: {}", opt.dir, ec.message());

  // 1. The archives: the local ones, or downloaded into DIR.
  std::vector<std::string> paths = opt.from_archives;
  if (!local) {
    for (const PetsArchive& a : opt.archives) {
      const std::string target = (fs::path(opt.dir) / a.file).string(), part = target + ".part";
      paths.push_back(target);
      if (fs::exists(target)) {
        opt.log(fmt::format("{} is already here (delete it to download it again)", target));
        continue;
      }
      bool done = false;
      std::string failures;
      for (const std::string& url : a.urls) {
        opt.log(fmt::format("downloading {} -> {}", url, part));
        // -f: an HTTP error is a failure, -L: follow redirects, -C -: resume a partial .part file.
        const std::string command =
            fmt::format("curl -f -L --progress-bar --retry 2 --connect-timeout 20 -C - -o {} {}",
                        shell_quote(part), shell_quote(url));
        const int status = std::system(command.c_str());
        const int code = status == -1 ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (code == 0) {
          fs::rename(part, target, ec);
          THAW_CHECK(!ec, "cannot rename {} to {}: {}", part, target, ec.message());
          done = true;
          break;
        }
        failures += code == 127 ? fmt::format("\n  {}: curl is not installed", url)
                                : fmt::format("\n  {}: curl failed with exit status {}{}", url, code,
                                              code == 6 || code == 7 || code == 28
                                                  ? " (could not resolve or reach the host: no network?)"
                                                  : "");
      }
      const std::string partial =
          fs::exists(part) ? fmt::format("\nThe partial download {} is resumed next time.", part) : "";
      THAW_CHECK(done, "could not download {}:{}{}\n{}", a.file, failures, partial, offline_advice(opt.dir));
    }
  }

  // 2. Verify and unpack.
  for (size_t i = 0; i < paths.size(); ++i) {
    opt.log(fmt::format("verifying and unpacking {} into {}", paths[i], opt.dir));
    const FileDigests d = verify_and_unpack(paths[i], opt.dir, opt.sha256.empty() ? "" : opt.sha256[i]);
    opt.log(fmt::format("  {}: MD5 {}, SHA-256 {}{}", fs::path(paths[i]).filename().string(), d.md5, d.sha256,
                        opt.sha256.empty() ? " (checked: MD5)" : " (checked: SHA-256)"));
  }

  // 3. The official layout.
  const fs::path root(opt.dir);
  std::vector<std::string> missing;
  for (const char* p : {"images", "annotations/list.txt", "annotations/trainval.txt", "annotations/test.txt"})
    if (!fs::exists(root / p)) missing.push_back((root / p).string());
  if (!missing.empty()) {
    std::string list;
    for (const std::string& m : missing)
      list += "\n  " + m;
    fail(
        "{} does not have the official layout after unpacking; missing:{}\nWere both archives "
        "(images.tar.gz and annotations.tar.gz) given?",
        opt.dir, list);
  }
  if (!local && !opt.keep_archives) {
    for (const std::string& p : paths)
      fs::remove(p, ec);
  }
  opt.log(fmt::format("the Oxford-IIIT Pet dataset is in {} ({}/images, {}/annotations)", opt.dir, opt.dir,
                      opt.dir));
}

}  // namespace thaw::data
