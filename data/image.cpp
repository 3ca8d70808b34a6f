// Decoding: JPEG with libjpeg-turbo when built with it (THAW_WITH_LIBJPEG, data/jpeg_decode.cpp), everything
// else, and JPEG without it, with stb_image (Debian's libstb-dev). The format is sniffed from the magic bytes
// first, so that a file stb would misread (stb also accepts TGA, which has no magic number, so any text file
// could pass as one) is rejected with a clear message; and a JPEG cut short is recognised as truncated by
// looking for its end-of-image marker before decoding, whichever decoder runs: stb 2.27 reports it only as
// "Corrupt JPEG" (it pads missing entropy-coded data with zeros and fails later when the closing marker is
// not there), libjpeg only warns and pads with gray (jpeg_decode.cpp turns that warning into an error too).
#include "data/image.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <new>

#include "core/error.h"
#if THAW_WITH_LIBJPEG
#include "data/jpeg_decode.h"
#endif

#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_GIF
#define STBI_ONLY_BMP
#define STBI_NO_STDIO
#define STBI_FAILURE_USERMSG
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-but-set-variable"
#endif
#include <stb/stb_image.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace thaw::data {
namespace {

ImageFormat sniff_bytes(const uint8_t* b, size_t n) {
  if (n >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) return ImageFormat::Jpeg;
  if (n >= 8 && std::memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0) return ImageFormat::Png;
  if (n >= 6 && (std::memcmp(b, "GIF87a", 6) == 0 || std::memcmp(b, "GIF89a", 6) == 0))
    return ImageFormat::Gif;
  if (n >= 2 && b[0] == 'B' && b[1] == 'M') return ImageFormat::Bmp;
  return ImageFormat::Unknown;
}

// False when the JPEG ends before its end-of-image marker (FF D9). The marker segments before the first
// scan (SOS, FF DA) are walked by their lengths, so an EXIF thumbnail's own FF D9 is not mistaken for the
// image's; after the first scan, FF D9 cannot occur inside entropy-coded data (an FF there is followed by 00
// or a restart marker), so any FF D9 found is the end of the image. When the segments do not parse (junk
// between them, which libjpeg tolerates), any FF D9 in the file will do and stb judges the rest.
bool jpeg_has_end_marker(const uint8_t* b, size_t n) {
  const auto find_end_from = [&](size_t from) {
    for (size_t i = from; i + 1 < n; ++i) {
      if (b[i] == 0xFF && b[i + 1] == 0xD9) return true;
    }
    return false;
  };
  size_t pos = 2;  // after SOI
  while (pos + 4 <= n) {
    if (b[pos] != 0xFF) return find_end_from(2);
    const uint8_t marker = b[pos + 1];
    if (marker == 0xFF) {  // fill byte
      ++pos;
      continue;
    }
    if (marker == 0xD9) return true;
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {  // markers without a length
      pos += 2;
      continue;
    }
    const size_t length = (size_t(b[pos + 2]) << 8) | b[pos + 3];
    if (marker == 0xDA) return find_end_from(pos + 2 + length);
    pos += 2 + length;
  }
  return false;  // the file ends inside the headers
}

}  // namespace

const char* image_format_name(ImageFormat format) {
  switch (format) {
    case ImageFormat::Jpeg:
      return "jpeg";
    case ImageFormat::Png:
      return "png";
    case ImageFormat::Gif:
      return "gif";
    case ImageFormat::Bmp:
      return "bmp";
    case ImageFormat::Unknown:
      break;
  }
  return "unknown";
}

ImageFormat sniff_image_format(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  uint8_t head[8] = {};
  file.read(reinterpret_cast<char*>(head), sizeof(head));
  return sniff_bytes(head, size_t(file.gcount()));
}

namespace {

Image decode_bytes(const uint8_t* bytes, size_t size, const std::string& name) {
  THAW_CHECK(size > 0, "cannot decode image '{}': the file is empty (0 bytes)", name);
  const ImageFormat format = sniff_bytes(bytes, size);
  if (format == ImageFormat::Unknown) {
    std::string head;
    for (size_t i = 0; i < std::min<size_t>(size, 8); ++i)
      head += fmt::format("{:02x} ", bytes[i]);
    fail("cannot decode image '{}': not a JPEG, PNG, GIF or BMP file (first bytes: {})", name, head);
  }
  // Checked before decoding: stb decodes a cut JPEG without complaint (or reports a vague "Corrupt JPEG").
  if (format == ImageFormat::Jpeg && !jpeg_has_end_marker(bytes, size)) {
    fail("cannot decode image '{}' (jpeg): truncated (no end-of-image marker after the image data)", name);
  }
#if THAW_WITH_LIBJPEG
  if (format == ImageFormat::Jpeg) return decode_jpeg_libjpeg(bytes, size, name);
#endif
  THAW_CHECK(size <= size_t(INT32_MAX), "cannot decode image '{}': file too large ({} bytes)", name, size);
  int width = 0, height = 0, channels_in_file = 0;
  // The header's size first: a file that claims more pixels than Pillow opens (its decompression-bomb
  // limit, as for JPEG) is refused before stb allocates for it.
  if (stbi_info_from_memory(bytes, int(size), &width, &height, &channels_in_file) &&
      uint64_t(width) * uint64_t(height) > kMaxImagePixels) {
    fail("cannot decode image '{}' ({}): {} x {} pixels, more than the {} that Pillow opens", name,
         image_format_name(format), width, height, kMaxImagePixels);
  }
  uint8_t* data = stbi_load_from_memory(bytes, int(size), &width, &height, &channels_in_file, 3);
  if (data == nullptr) {
    const char* reason = stbi_failure_reason();
    fail("cannot decode image '{}' ({}): {}", name, image_format_name(format),
         reason ? reason : "unknown error");
  }
  const std::unique_ptr<uint8_t, void (*)(void*)> owned(data, stbi_image_free);
  Image image;
  image.height = height;
  image.width = width;
  image.pixels.assign(data, data + size_t(width) * size_t(height) * 3);
  return image;
}

}  // namespace

Image decode_image_memory(const uint8_t* bytes, size_t size, const std::string& name) {
  try {
    return decode_bytes(bytes, size, name);
  } catch (const std::bad_alloc&) {
    fail("cannot decode image '{}': out of memory for its pixels", name);
  }
}

const char* jpeg_decoder_name() {
#if THAW_WITH_LIBJPEG
  return libjpeg_version_name();
#else
  return "stb_image";
#endif
}

Image decode_image_file(const std::string& path) {
  // Only a regular file (or a link to one) is read: a directory would "open" and report a huge size, and a
  // FIFO would block the open until a writer came.
  std::error_code ec;
  const std::filesystem::file_status status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) {
    fail("cannot open image '{}': {}", path, ec ? ec.message() : std::string("No such file or directory"));
  }
  if (std::filesystem::is_directory(status)) fail("cannot read image '{}': it is a directory", path);
  if (!std::filesystem::is_regular_file(status)) {
    fail("cannot read image '{}': not a regular file (a FIFO, socket or device)", path);
  }
  std::ifstream file(path, std::ios::binary | std::ios::ate);
  if (!file) fail("cannot open image '{}': {}", path, std::strerror(errno));
  const std::streamoff size = file.tellg();
  THAW_CHECK(size >= 0, "cannot read image '{}'", path);
  THAW_CHECK(uint64_t(size) <= kMaxImageFileBytes,
             "cannot read image '{}': {} bytes, more than the {} an image may have", path, size,
             kMaxImageFileBytes);
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  file.seekg(0);
  file.read(reinterpret_cast<char*>(bytes.data()), size);
  THAW_CHECK(file.gcount() == size, "cannot read image '{}': short read", path);
  return decode_image_memory(bytes.data(), bytes.size(), path);
}

}  // namespace thaw::data
