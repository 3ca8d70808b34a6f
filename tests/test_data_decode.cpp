// JPEG decoding (data/image.h, data/jpeg_decode.h) against Pillow's, which is what torchvision's loader
// gives: Image.open(f).convert("RGB"). The references come from weights_tools/make_decode_golden.py
// (regenerated when missing or older than the script). With libjpeg-turbo (THAW_JPEG found it) thaw's pixels
// must equal Pillow's exactly, on pets-mini JPEGs of every kind, on checksums of all of them, and on made
// files (grayscale, CMYK, odd 4:2:2, damaged files libjpeg only warns about). With the stb_image fallback
// they must be close (another IDCT and chroma upsampling). Also the error paths: libjpeg's fatal errors must
// come back as thaw::Error naming the file (its default handler would exit the process).
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string_view>

#include "core/error.h"
#include "core/hdf5_file.h"
#include "core/name_pattern.h"
#include "data/image.h"
#include "tests/support/catch.h"
#include "tests/support/pets_golden.h"
#include "tests/support/scratch.h"

namespace fs = std::filesystem;
using namespace thaw;
using namespace thaw::data;

namespace {

using test::have_pets_mini;
const fs::path kPetsMini = test::pets_mini_dir();

bool libjpeg_turbo() {
  return std::string_view(jpeg_decoder_name()).starts_with("libjpeg-turbo");
}

// The golden file, regenerated when missing or older than its generator. Empty when it cannot be made.
std::string golden_file() {
  return test::pets_golden_file("make_decode_golden.py", "decode.h5");
}

std::vector<uint8_t> pixels_of(const Tensor& t) {  // int32 (H, W, 3) -> HWC bytes
  const std::vector<int32_t> v = t.to_vector<int32_t>();
  return std::vector<uint8_t>(v.begin(), v.end());
}

// Requires got == ref exactly with libjpeg-turbo. With stb_image, max |diff| <= 32 and mean <= 0.2 (measured
// on the pets-mini kinds: max 2-3, mean <= 0.08, except 4:2:2 chroma: yorkshire_terrier_113, max 22, mean
// 0.15).
void check_like_pil(const Image& got, const Tensor& ref, const std::string& what) {
  INFO(what << " (decoder: " << jpeg_decoder_name() << ")");
  REQUIRE(ref.dim() == 3);
  REQUIRE(got.height == ref.size(0));
  REQUIRE(got.width == ref.size(1));
  const std::vector<uint8_t> want = pixels_of(ref);
  REQUIRE(got.pixels.size() == want.size());
  int max = 0;
  int64_t sum = 0, off = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const int e = std::abs(int(got.pixels[i]) - int(want[i]));
    max = std::max(max, e), sum += e, off += e != 0;
  }
  const double mean = double(sum) / double(want.size());
  INFO("max |diff| " << max << ", mean " << mean << ", " << off << " of " << want.size() << " values differ");
  if (libjpeg_turbo()) {
    CHECK(off == 0);
  } else {
    CHECK(max <= 32);
    CHECK(mean <= 0.2);
  }
}

// make_decode_golden.py's checksum: sum of v[i] * (2 i + 1) modulo 2^64.
int64_t checksum(const std::vector<uint8_t>& v) {
  uint64_t sum = 0;
  for (size_t i = 0; i < v.size(); ++i)
    sum += uint64_t(v[i]) * (2 * uint64_t(i) + 1);
  return int64_t(sum);
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// Offset of the first marker FF <code> in the segments before the first scan (walked by their lengths).
size_t find_marker(const std::string& jpeg, uint8_t code) {
  size_t pos = 2;
  while (pos + 4 <= jpeg.size() && uint8_t(jpeg[pos]) == 0xFF) {
    if (uint8_t(jpeg[pos + 1]) == code) return pos;
    pos += 2 + ((size_t(uint8_t(jpeg[pos + 2])) << 8) | uint8_t(jpeg[pos + 3]));
  }
  FAIL("marker FF " << int(code) << " not found");
  return 0;
}

void put_u16(std::string& bytes, size_t at, unsigned value) {
  bytes[at] = char(value >> 8);
  bytes[at + 1] = char(value & 0xFF);
}

std::string error_of(const fs::path& path) {
  try {
    decode_image_file(path.string());
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("decode: pets-mini JPEGs of every kind equal PIL's pixels (libjpeg-turbo)") {
  WARN("JPEG decoder: " << jpeg_decoder_name());
  if (!have_pets_mini()) THAW_SKIP("pets-mini not found at " << kPetsMini << ": decode test skipped");
  const std::string golden = golden_file();
  const H5File file = H5File::open(golden);
  INFO("Pillow " << file.attr_string("pil_version") << " with " << file.attr_string("pil_libjpeg"));
  for (const std::string& name : split_patterns(file.attr_string("pets"))) {
    const std::string rel = file.attr_string("file", "pets/" + name);
    check_like_pil(decode_image_file((kPetsMini / rel).string()), file.read("pets/" + name + "/src"), rel);
  }
}

TEST_CASE("decode: every pets-mini JPEG equals PIL's pixels (checksums, libjpeg-turbo only)") {
  if (!libjpeg_turbo())
    THAW_SKIP("JPEG decoder is " << jpeg_decoder_name() << ", not libjpeg-turbo: skipped");
  if (!have_pets_mini()) THAW_SKIP("pets-mini not found at " << kPetsMini << ": decode test skipped");
  const std::string golden = golden_file();
  const H5File file = H5File::open(golden);
  const std::vector<std::string> names = split_patterns(file.attr_string("checksum_files"));
  const std::vector<int64_t> rows = file.read("checksums").to_vector<int64_t>();
  REQUIRE(rows.size() == 3 * names.size());
  CHECK(names.size() == 938);  // 940 files, less the GIF and the PNG
  int64_t equal = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    const Image image = decode_image_file((kPetsMini / "images" / names[i]).string());
    const bool same = image.height == rows[3 * i + 1] && image.width == rows[3 * i + 2] &&
                      checksum(image.pixels) == rows[3 * i];
    if (!same) UNSCOPED_INFO(names[i] << " differs from PIL's decode");
    equal += same;
  }
  CHECK(equal == int64_t(names.size()));
}

TEST_CASE("decode: grayscale, CMYK, odd 4:2:2 and JPEGs libjpeg warns about decode like PIL") {
  const std::string golden = golden_file();
  const H5File file = H5File::open(golden);
  for (const std::string& name : split_patterns(file.attr_string("files"))) {
    const std::string path = file.attr_string("path", "files/" + name);
    // stb_image differs from Pillow on these beyond a small tolerance (measured on odd_422.jpg: 12% of the
    // values differ, by up to 112) or handles CMYK and damaged data its own way: only grayscale is held to
    // it.
    if (!libjpeg_turbo() && name != "gray.jpg") {
      WARN(name << ": checked with libjpeg-turbo only (decoder: " << jpeg_decoder_name() << ")");
      continue;
    }
    check_like_pil(decode_image_file(path), file.read("files/" + name + "/src"), name);
  }
}

TEST_CASE("decode: libjpeg's fatal errors are thaw::Errors naming the file") {
  const std::string golden = golden_file();
  const std::string jpeg = read_bytes(H5File::open(golden).attr_string("path", "files/odd_422.jpg"));
  const test::TempDir dir;
  const size_t sof = find_marker(jpeg, 0xC0);  // FF C0, length, precision, height, width, components...
  const bool turbo = libjpeg_turbo();

  std::string bad = jpeg;
  put_u16(bad, sof + 2, ((uint8_t(jpeg[sof + 2]) << 8) | uint8_t(jpeg[sof + 3])) + 3);
  const fs::path bad_length = dir.path / "bad_length.jpg";
  write_bytes(bad_length, bad);
  CHECK_THAT(error_of(bad_length), ContainsSubstring(bad_length.string()) && ContainsSubstring("(jpeg)"));
  if (turbo) CHECK_THAT(error_of(bad_length), ContainsSubstring("Bogus marker length"));

  bad = jpeg;
  bad[sof + 1] = char(0xC3);  // lossless: a process libjpeg-turbo 2 does not decode
  const fs::path lossless = dir.path / "lossless.jpg";
  write_bytes(lossless, bad);
  CHECK_THAT(error_of(lossless), ContainsSubstring(lossless.string()) && ContainsSubstring("(jpeg)"));
  if (turbo) CHECK_THAT(error_of(lossless), ContainsSubstring("Unsupported JPEG process"));

  bad = jpeg;
  put_u16(bad, sof + 7, 0);  // width 0
  const fs::path empty = dir.path / "zero_width.jpg";
  write_bytes(empty, bad);
  CHECK_THAT(error_of(empty), ContainsSubstring(empty.string()) && ContainsSubstring("(jpeg)"));
  if (turbo) CHECK_THAT(error_of(empty), ContainsSubstring("Empty JPEG image"));

  if (turbo) {
    // 65000 x 65000 in the header: refused before any pixel buffer is allocated, as Pillow refuses it.
    bad = jpeg;
    put_u16(bad, sof + 5, 65000);
    put_u16(bad, sof + 7, 65000);
    const fs::path huge = dir.path / "huge.jpg";
    write_bytes(huge, bad);
    CHECK_THAT(error_of(huge), ContainsSubstring(huge.string()) && ContainsSubstring("more than the"));

    // A file whose end-of-image check passes (a junk byte after the first segment makes the check fall back
    // to "any FF D9 in the file", and an APP15 segment holds one) but whose scan is cut: libjpeg's "premature
    // end of JPEG file" warning is an error here, where libjpeg alone would pad the image with gray.
    const size_t app0 = find_marker(jpeg, 0xE0);
    const size_t after_app0 = app0 + 2 + ((size_t(uint8_t(jpeg[app0 + 2])) << 8) | uint8_t(jpeg[app0 + 3]));
    const std::string junk_and_app15("\x00\xFF\xEF\x00\x04\xFF\xD9", 7);
    const std::string cut =
        jpeg.substr(0, after_app0) + junk_and_app15 + jpeg.substr(after_app0, jpeg.size() / 2);
    const fs::path truncated = dir.path / "cut_after_junk.jpg";
    write_bytes(truncated, cut);
    CHECK_THAT(error_of(truncated),
               ContainsSubstring(truncated.string()) &&
                   ContainsSubstring("truncated (the data ends before the image is complete)"));
    // The same junk and segment in a complete file: only warnings, and the same pixels as the clean file.
    const fs::path whole = dir.path / "whole_after_junk.jpg";
    write_bytes(whole, jpeg.substr(0, after_app0) + junk_and_app15 + jpeg.substr(after_app0));
    const fs::path clean = dir.path / "clean.jpg";
    write_bytes(clean, jpeg);
    CHECK(decode_image_file(whole.string()).pixels == decode_image_file(clean.string()).pixels);
  }
}
