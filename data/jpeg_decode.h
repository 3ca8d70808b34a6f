// decode_jpeg_libjpeg: JPEG -> RGB with libjpeg(-turbo), the library Pillow (and so torchvision) decodes
// JPEGs with, and with Pillow's settings: accurate integer IDCT (JDCT_ISLOW), fancy (smooth) chroma
// upsampling, full size. With libjpeg-turbo on both sides the pixels equal PIL's Image.open(f).convert("RGB")
// exactly. Compiled only when CMake found libjpeg (THAW_JPEG, cmake/ThawJpeg.cmake); data/image.cpp calls it
// for every file whose magic bytes say JPEG, and stb_image otherwise.
//
// Thread safety: each call owns its decompressor; libjpeg keeps no global state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "data/image.h"

namespace thaw::data {

// requires: bytes is a whole file that starts with a JPEG's FF D8 (data/image.cpp has sniffed it and checked
//   that it has an end-of-image marker).
// ensures: RGB pixels, HWC. Grayscale is replicated to R = G = B; CMYK and YCCK (Adobe, inverted) are turned
//   into RGB by Pillow's rule (R = K' - K' * C' / 255 with C' = 255 - C, K' = 255 - K, rounded as PIL does).
// Errors (thaw::Error, message starting "cannot decode image '<name>' (jpeg): "): libjpeg's fatal errors in
//   its own words; data that ends before the image does ("truncated"); more pixels than Pillow would open
//   (its decompression-bomb limit, 2 * 89478485). libjpeg's warnings (corrupt entropy data, extraneous bytes
//   before a marker) are not errors: the image decodes as far as libjpeg can recover it, as Pillow loads it.
Image decode_jpeg_libjpeg(const uint8_t* bytes, size_t size, const std::string& name);

// "libjpeg-turbo 2.1.5" (or "libjpeg 62" for another libjpeg), from the headers thaw was compiled with.
const char* libjpeg_version_name();

}  // namespace thaw::data
