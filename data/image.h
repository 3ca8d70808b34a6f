// Image and decode_image_file: an 8-bit RGB image in HWC order, and decoding of image files: JPEG with
// libjpeg-turbo (data/jpeg_decode.h; the library and settings Pillow uses, so the pixels equal
// torchvision's), or with stb_image when thaw was configured without libjpeg (THAW_JPEG,
// cmake/ThawJpeg.cmake); PNG, GIF (first frame) and BMP with stb_image. The format is found from the file's
// magic bytes, not from its name: the Oxford-IIIT Pet release has a GIF and an RGBA PNG named .jpg.
//
// Thread safety: decode_image_file may be called from several threads at once. Each libjpeg call owns its
// decompressor; stb_image keeps only a few global settings (vertical flip on load, iPhone PNG conversion),
// which thaw never changes.
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

// Pillow's Image.MAX_IMAGE_PIXELS is 89478485; above twice that, Image.open raises DecompressionBombError.
// thaw refuses such images in every format (before allocating for them).
inline constexpr uint64_t kMaxImagePixels = 2 * uint64_t(89478485);
// The largest image file decode_image_file reads (1 GiB): a bigger one is refused before it is read.
inline constexpr uint64_t kMaxImageFileBytes = uint64_t(1) << 30;

// The format from the file's first bytes (JPEG FF D8 FF, PNG 89 'PNG', GIF 'GIF8', BMP 'BM').
// Unknown for an unreadable, empty or unrecognised file (never throws).
ImageFormat sniff_image_format(const std::string& path);
const char* image_format_name(ImageFormat format);  // "jpeg", "png", "gif", "bmp", "unknown"

// Decodes the file to RGB: grayscale and palette images are expanded, alpha is dropped (not composited),
// CMYK JPEGs are converted as Pillow does. Throws thaw::Error naming the file and the reason (missing, a
// directory, a FIFO or device rather than a regular file, larger than kMaxImageFileBytes, empty, not an
// image, more than kMaxImagePixels pixels, libjpeg's or stb's reason, a JPEG truncated before its
// end-of-image marker). A JPEG that
// libjpeg only warns about (corrupt entropy data it recovers from) decodes, as in Pillow.
Image decode_image_file(const std::string& path);

// Decodes an image held in memory; `name` is used in error messages only.
Image decode_image_memory(const uint8_t* bytes, size_t size, const std::string& name);

// The JPEG decoder this build uses: "libjpeg-turbo 2.1.5" (the version of the headers built against) or
// "stb_image".
const char* jpeg_decoder_name();

}  // namespace thaw::data
