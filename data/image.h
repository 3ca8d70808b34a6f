// Image and decode_image_file: an 8-bit RGB image in HWC order, and decoding of image files with stb_image
// (JPEG, PNG, GIF first frame, BMP). The format is found from the file's magic bytes, not from its name: the
// Oxford-IIIT Pet release has a GIF and an RGBA PNG named .jpg.
//
// Thread safety: decode_image_file may be called from several threads at once. stb_image keeps only a few
// global settings (vertical flip on load, iPhone PNG conversion), which thaw never changes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace thaw::data {

// RGB, HWC row-major: pixel (y, x) channel c is pixels[(y * width + x) * 3 + c]; pixels.size() == H*W*3.
struct Image {
  int64_t height = 0, width = 0;
  std::vector<uint8_t> pixels;
};

enum class ImageFormat { Jpeg, Png, Gif, Bmp, Unknown };

// The format from the file's first bytes (JPEG FF D8 FF, PNG 89 'PNG', GIF 'GIF8', BMP 'BM').
// Unknown for an unreadable, empty or unrecognised file (never throws).
ImageFormat sniff_image_format(const std::string& path);
const char* image_format_name(ImageFormat format);  // "jpeg", "png", "gif", "bmp", "unknown"

// Decodes the file to RGB: grayscale and palette images are expanded, alpha is dropped (not composited).
// Throws thaw::Error naming the file and the reason (missing, empty, not an image, stb's reason, a JPEG
// truncated before its end-of-image marker).
Image decode_image_file(const std::string& path);

// Decodes an image held in memory; `name` is used in error messages only.
Image decode_image_memory(const uint8_t* bytes, size_t size, const std::string& name);

}  // namespace thaw::data
