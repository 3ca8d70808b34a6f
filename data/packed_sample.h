// The packed form of one sample that the device transforms (data/device_transforms.h) expand, and the
// per-pixel steps of that expansion, written once for the CPU twin (data/device_transforms.cpp) and the CUDA
// kernels (data/cuda/device_transforms.cu).
//
// A packed sample lives in a fixed-size region of a batch buffer (16-byte aligned):
//   PackedHeader | taps of the columns | taps of the rows | source pixels (HWC)
// The source pixels are the window the crop reads (window_h x window_w), or the whole image when the region
// carries it into the device's decoded-image cache (cache_address), or absent when the image is already there
// (source_address).
// Taps of an axis, for the `size` outputs: first[size], count[size] (int32; first is an index into the
// window), then weights[size * ksize] (int32, 22-bit fixed point). An output index outside the resampled
// image (a center crop larger than the resized image) has count 0, which yields 0 as torchvision's padding.
//
// The expansion of sample k into the (n, 3, size, size) float batch, one output pixel per thread:
//   1. resample_row_pixel:    window (window_h x window_w) -> temp   (window_h x size), the horizontal pass
//   2. resample_column_pixel: temp -> flipped (size x size), the vertical pass, mirrored when flip
//   3. rotate_or_copy_pixel:  flipped -> rotated (size x size)
//   4. contrast_luma:         rotated, with the jitters before contrast -> luma, summed per sample
//   5. finish_pixel:          rotated -> jitters in order -> ToTensor + Normalize -> out
// Steps 1-2 are PIL's two-pass resampling (8-bit between the passes), 3 PIL's rotation, 4-5 ImageEnhance;
// the arithmetic is data/pil_pixels.h's, so the result is transform_to_chw's, bit for bit.
#pragma once

#include <cstdint>

#include "data/pil_pixels.h"

namespace thaw::data::packed {

struct PackedHeader {
  int32_t output_index = -1;  // the sample's index in the batch; -1: nothing to expand (a skipped file)
  int32_t bytes = 0;          // of the packed sample, this header included
  int32_t size = 0;           // output side (crop_size)
  int32_t window_h = 0, window_w = 0;
  int32_t ksize_h = 0, ksize_v = 0;                                 // taps per output column, per output row
  int32_t taps_h_offset = 0, taps_v_offset = 0, pixels_offset = 0;  // bytes from the header's start
  int32_t flip = 0;                                                 // 1: mirror left-right after resampling
  int32_t rotate = 0;                  // 1: rotate by `rotation`; 0: PIL leaves the image as it is
  int32_t jitters = 0;                 // how many of jitter_op apply, in this order
  int32_t jitter_op[3] = {0, 0, 0};    // 0 brightness, 1 contrast, 2 saturation
  float jitter_factor[3] = {1, 1, 1};  // float32, as PIL's blend takes it
  int32_t reserved = 0;
  pil::Affine rotation;
  // Where the window's pixels are: window row r, column c is pixel (source_row0 + r, source_col0 + c) of a
  // source image of source_height rows of source_stride pixels, found at source_address (an image in the
  // decoded-image cache) or, when that is 0, in this region at pixels_offset.
  int32_t source_row0 = 0, source_col0 = 0, source_stride = 0, source_height = 0;
  uint64_t source_address = 0;
  // Non-zero: the region carries the whole source image, which the expansion also copies to this address in
  // the decoded-image cache (before any sample reads it from there).
  uint64_t cache_address = 0;
};

// The source image's pixels as the kernels read them.
THAW_HOST_DEVICE inline const uint8_t* source_pixels(const PackedHeader& h, const uint8_t* region) {
  return h.source_address != 0 ? reinterpret_cast<const uint8_t*>(h.source_address)
                               : region + h.pixels_offset;
}

// One axis's taps inside a packed region.
struct Taps {
  const int32_t* first;
  const int32_t* count;
  const int32_t* weights;
  int32_t ksize;
};

THAW_HOST_DEVICE inline Taps taps_at(const uint8_t* region, int32_t offset, int32_t size, int32_t ksize) {
  const auto* base = reinterpret_cast<const int32_t*>(region + offset);
  return {base, base + size, base + 2 * size, ksize};
}

// Step 1: temp pixel (row, x) = window row `row` resampled horizontally at output column x.
THAW_HOST_DEVICE inline void resample_row_pixel(const PackedHeader& h, const uint8_t* region, int32_t row,
                                                int32_t x, uint8_t* temp) {
  const Taps taps = taps_at(region, h.taps_h_offset, h.size, h.ksize_h);
  const uint8_t* p = source_pixels(h, region) +
                     ((int64_t(h.source_row0) + row) * h.source_stride + h.source_col0 + taps.first[x]) * 3;
  const int32_t* k = taps.weights + int64_t(x) * taps.ksize;
  int32_t s0 = pil::kHalf, s1 = s0, s2 = s0;
  for (int32_t i = 0; i < taps.count[x]; ++i, p += 3) {
    s0 += p[0] * k[i];
    s1 += p[1] * k[i];
    s2 += p[2] * k[i];
  }
  uint8_t* out = temp + (int64_t(row) * h.size + x) * 3;
  out[0] = pil::clip8(s0);
  out[1] = pil::clip8(s1);
  out[2] = pil::clip8(s2);
}

// Step 2: the vertical pass at output (y, x), written at column size-1-x when the sample is flipped.
THAW_HOST_DEVICE inline void resample_column_pixel(const PackedHeader& h, const uint8_t* region,
                                                   const uint8_t* temp, int32_t y, int32_t x,
                                                   uint8_t* flipped) {
  const Taps taps = taps_at(region, h.taps_v_offset, h.size, h.ksize_v);
  const uint8_t* p = temp + (int64_t(taps.first[y]) * h.size + x) * 3;
  const int32_t* k = taps.weights + int64_t(y) * taps.ksize;
  int32_t s0 = pil::kHalf, s1 = s0, s2 = s0;
  for (int32_t i = 0; i < taps.count[y]; ++i, p += int64_t(h.size) * 3) {
    s0 += p[0] * k[i];
    s1 += p[1] * k[i];
    s2 += p[2] * k[i];
  }
  const int32_t column = h.flip ? h.size - 1 - x : x;
  uint8_t* out = flipped + (int64_t(y) * h.size + column) * 3;
  out[0] = pil::clip8(s0);
  out[1] = pil::clip8(s1);
  out[2] = pil::clip8(s2);
}

// Step 3: rotated pixel (y, x).
THAW_HOST_DEVICE inline void rotate_or_copy_pixel(const PackedHeader& h, const uint8_t* flipped, int32_t y,
                                                  int32_t x, uint8_t* rotated) {
  uint8_t* out = rotated + (int64_t(y) * h.size + x) * 3;
  if (h.rotate) {
    pil::rotated_pixel(flipped, h.size, h.size, h.rotation, x, y, out);
  } else {
    const uint8_t* in = flipped + (int64_t(y) * h.size + x) * 3;
    out[0] = in[0];
    out[1] = in[1];
    out[2] = in[2];
  }
}

// One ImageEnhance step on one pixel: brightness blends with black, contrast with the image's mean luma,
// saturation with the pixel's own luma.
THAW_HOST_DEVICE inline void jitter_pixel(int32_t op, float factor, int contrast_mean, uint8_t* rgb) {
  const int grey = op == 0 ? 0 : op == 1 ? contrast_mean : pil::luma(rgb[0], rgb[1], rgb[2]);
  for (int c = 0; c < 3; ++c)
    rgb[c] = pil::blend(grey, rgb[c], factor);
}

// The position of contrast in the jitter order, or h.jitters when contrast does not apply.
THAW_HOST_DEVICE inline int32_t contrast_step(const PackedHeader& h) {
  for (int32_t i = 0; i < h.jitters; ++i)
    if (h.jitter_op[i] == 1) return i;
  return h.jitters;
}

// Step 4: the luma of rotated pixel i (of size * size) after the jitters that come before contrast.
THAW_HOST_DEVICE inline uint32_t contrast_luma(const PackedHeader& h, const uint8_t* rotated, int64_t i) {
  uint8_t rgb[3] = {rotated[i * 3], rotated[i * 3 + 1], rotated[i * 3 + 2]};
  const int32_t stop = contrast_step(h);
  for (int32_t j = 0; j < stop; ++j)
    jitter_pixel(h.jitter_op[j], h.jitter_factor[j], 0, rgb);
  return pil::luma(rgb[0], rgb[1], rgb[2]);
}

// ImageStat's mean of the L image, rounded as ImageEnhance.Contrast does: int(mean + 0.5).
THAW_HOST_DEVICE inline int contrast_mean(uint64_t luma_sum, int64_t pixels) {
  return int(pil::add(double(luma_sum) / double(pixels), 0.5));
}

// Step 5: rotated pixel i -> the jitters in order -> normalized floats at out[c * size * size + i] (out is
// the sample's (3, size, size) image; table is normalize_table(), 3 x 256).
THAW_HOST_DEVICE inline void finish_pixel(const PackedHeader& h, const uint8_t* rotated, int64_t i, int mean,
                                          const float* table, float* out) {
  uint8_t rgb[3] = {rotated[i * 3], rotated[i * 3 + 1], rotated[i * 3 + 2]};
  for (int32_t j = 0; j < h.jitters; ++j)
    jitter_pixel(h.jitter_op[j], h.jitter_factor[j], mean, rgb);
  const int64_t plane = int64_t(h.size) * h.size;
  for (int c = 0; c < 3; ++c)
    out[c * plane + i] = table[c * 256 + rgb[c]];
}

}  // namespace thaw::data::packed
