// The pieces of data/transforms.cpp that the device transforms (data/device_transforms.h) reuse, so that both
// plan the same resampling: PIL's bilinear taps, torchvision's resize and center-crop geometry, and PIL's
// rotation matrix. Host code only.
#pragma once

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "data/pil_pixels.h"

namespace thaw::data {

// PIL's bilinear taps for resampling [0, in_size) to out_size (precompute_coeffs + normalize_coeffs_8bpc,
// triangle filter of support 1 scaled by the downscale factor): output index o reads inputs first[o] ..
// first[o] + count[o] - 1 with the 22-bit fixed-point weights weights[o * ksize ..].
struct ResampleTaps {
  int ksize = 0;
  std::vector<int> first, count;
  std::vector<int32_t> weights;
};
ResampleTaps bilinear_taps(int64_t in_size, int64_t out_size);

// torchvision's Resize(size) output for an image of height x width: (height, width) with the shorter side
// = size and the longer int(size * long / short).
std::pair<int64_t, int64_t> shorter_side_size(int64_t height, int64_t width, int64_t size);

// F.center_crop's offset along one axis: int(round((extent - size) / 2)), or -((size - extent) / 2) when the
// crop is larger than the image (torchvision pads first).
int64_t center_offset(int64_t extent, int64_t size);

// PIL's Image.rotate(angle) inverse matrix for a height x width image (coefficients rounded to 15 decimals
// as PIL does); identity when angle % 360 == 0, where PIL returns the image unchanged.
struct Rotation {
  bool identity = true;
  pil::Affine matrix;
};
Rotation rotation_of(double angle, int64_t height, int64_t width);

// ToTensor + Normalize(kImageNetMean, kImageNetStd) of byte value v in channel c: table[c * 256 + v].
using NormalizeTable = std::array<float, 3 * 256>;
NormalizeTable normalize_table();

}  // namespace thaw::data
