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

std::string to_hex(const uint8_t* bytes, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i)
    out += fmt::format("{:02x}", bytes[i]);
  return out;
}

uint32_t rotl(uint32_t x, int s) {
  return (x << s) | (x >> (32 - s));
}
uint32_t rotr(uint32_t x, int s) {
  return (x >> s) | (x << (32 - s));
}

// The framing MD5 and SHA-256 share (Merkle-Damgard): 64-byte blocks; the message is padded with 0x80, zeros
// and its length in bits as 8 bytes (little-endian for MD5, big-endian for SHA-256). Hash::block(p) mixes in
// one block.
template <typename Hash, bool kBigEndianLength>
class BlockHash {
 public:
  void update(const uint8_t* data, size_t n) {
    length_ += n;
    while (n > 0) {
      const size_t take = std::min(n, size_t(64) - fill_);
      std::memcpy(buffer_.data() + fill_, data, take);
      fill_ += take, data += take, n -= take;
      if (fill_ == 64) static_cast<Hash*>(this)->block(buffer_.data()), fill_ = 0;
    }
  }

 protected:
  void finish() {
    const uint64_t bits = length_ * 8;
    const uint8_t pad = 0x80, zero = 0;
    update(&pad, 1);
    while (fill_ != 56)
      update(&zero, 1);
    uint8_t len[8];
    for (int i = 0; i < 8; ++i)
      len[i] = uint8_t(bits >> (kBigEndianLength ? 56 - 8 * i : 8 * i));
    update(len, 8);
  }

 private:
  std::array<uint8_t, 64> buffer_{};
  size_t fill_ = 0;
  uint64_t length_ = 0;
};

// MD5 (RFC 1321): little-endian words.
class Md5 : public BlockHash<Md5, false> {
 public:
  std::string hex() {
    finish();
    uint8_t out[16];
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j)
        out[4 * i + j] = uint8_t(h_[size_t(i)] >> (8 * j));
    return to_hex(out, 16);
  }

  void block(const uint8_t* p) {
    static constexpr uint32_t K[64] = {
        0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
        0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
        0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
        0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
        0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
        0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
        0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
        0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391};
    static constexpr int S[64] = {7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
                                  5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20,
                                  4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                                  6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21};
    uint32_t m[16];
    for (int i = 0; i < 16; ++i)
      m[i] = uint32_t(p[4 * i]) | uint32_t(p[4 * i + 1]) << 8 | uint32_t(p[4 * i + 2]) << 16 |
             uint32_t(p[4 * i + 3]) << 24;
    uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3];
    for (int i = 0; i < 64; ++i) {
      uint32_t f;
      int g;
      if (i < 16) {
        f = (b & c) | (~b & d), g = i;
      } else if (i < 32) {
        f = (d & b) | (~d & c), g = (5 * i + 1) % 16;
      } else if (i < 48) {
        f = b ^ c ^ d, g = (3 * i + 5) % 16;
      } else {
        f = c ^ (b | ~d), g = (7 * i) % 16;
      }
      const uint32_t t = d;
      d = c;
      c = b;
      b = b + rotl(a + f + K[i] + m[g], S[i]);
      a = t;
    }
    h_[0] += a, h_[1] += b, h_[2] += c, h_[3] += d;
  }

 private:
  std::array<uint32_t, 4> h_ = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
};

// SHA-256 (FIPS 180-4): big-endian words.
class Sha256 : public BlockHash<Sha256, true> {
 public:
  std::string hex() {
    finish();
    uint8_t out[32];
    for (int i = 0; i < 8; ++i)
      for (int j = 0; j < 4; ++j)
        out[4 * i + j] = uint8_t(h_[size_t(i)] >> (24 - 8 * j));
    return to_hex(out, 32);
  }

  void block(const uint8_t* p) {
    static constexpr uint32_t K[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
    uint32_t w[64];
    for (int i = 0; i < 16; ++i)
      w[i] = uint32_t(p[4 * i]) << 24 | uint32_t(p[4 * i + 1]) << 16 | uint32_t(p[4 * i + 2]) << 8 |
             uint32_t(p[4 * i + 3]);
    for (int i = 16; i < 64; ++i) {
      const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6], h = h_[7];
    for (int i = 0; i < 64; ++i) {
      const uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
      const uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      h = g, g = f, f = e, e = d + t1, d = c, c = b, b = a, a = t1 + t2;
    }
    h_[0] += a, h_[1] += b, h_[2] += c, h_[3] += d, h_[4] += e, h_[5] += f, h_[6] += g, h_[7] += h;
  }

 private:
  std::array<uint32_t, 8> h_ = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
};

// One argument quoted for /bin/sh.
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

std::string md5_hex(const void* data, size_t size) {
  Md5 md5;
  md5.update(static_cast<const uint8_t*>(data), size);
  return md5.hex();
}

std::string sha256_hex(const void* data, size_t size) {
  Sha256 sha;
  sha.update(static_cast<const uint8_t*>(data), size);
  return sha.hex();
}

FileDigests file_digests(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  THAW_CHECK(in.good(), "cannot read {}", path);
  Md5 md5;
  Sha256 sha;
  std::vector<char> buf(size_t(1) << 20);
  while (in) {
    in.read(buf.data(), std::streamsize(buf.size()));
    const size_t n = size_t(in.gcount());
    md5.update(reinterpret_cast<const uint8_t*>(buf.data()), n);
    sha.update(reinterpret_cast<const uint8_t*>(buf.data()), n);
  }
  THAW_CHECK(in.eof(), "error reading {}", path);
  return {md5.hex(), sha.hex()};
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
