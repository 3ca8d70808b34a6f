// Packing samples for the device transforms, and their CPU twin (data/device_transforms.h). The packed
// layout and the per-pixel steps are in data/packed_sample.h.
#include "data/device_transforms.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <tuple>

#include "core/error.h"
#include "data/packed_sample.h"
#include "data/transform_parts.h"

namespace thaw::data {

using packed::PackedHeader;

namespace {

int64_t align_up(int64_t bytes, int64_t alignment) {
  return (bytes + alignment - 1) / alignment * alignment;
}

int64_t taps_bytes(int64_t size, int64_t ksize) {
  return align_up(size * (2 + ksize) * int64_t(sizeof(int32_t)), 16);
}

// One axis of the output: output index o (0 <= o < size) is index offset + o of the resampled extent
// `taps` describes; outside it, count 0. lo, hi: the input range the valid taps read.
struct AxisPlan {
  std::vector<int32_t> first, count;
  int64_t lo = 0, hi = 0;
};

AxisPlan plan_axis(const ResampleTaps& taps, int64_t offset, int64_t size) {
  AxisPlan plan;
  plan.first.assign(size_t(size), 0);
  plan.count.assign(size_t(size), 0);
  int64_t lo = std::numeric_limits<int64_t>::max(), hi = 0;
  const auto extent = int64_t(taps.first.size());
  for (int64_t o = 0; o < size; ++o) {
    const int64_t i = offset + o;
    if (i < 0 || i >= extent || taps.count[size_t(i)] == 0) continue;
    plan.first[size_t(o)] = taps.first[size_t(i)];
    plan.count[size_t(o)] = taps.count[size_t(i)];
    lo = std::min<int64_t>(lo, taps.first[size_t(i)]);
    hi = std::max<int64_t>(hi, taps.first[size_t(i)] + taps.count[size_t(i)]);
  }
  if (hi == 0) lo = 0;  // nothing read: a fully padded axis
  plan.lo = lo;
  plan.hi = hi;
  return plan;
}

// Writes first (relative to the window), count and weights of one axis at dst.
void write_taps(const ResampleTaps& taps, const AxisPlan& plan, int64_t offset, int64_t size, uint8_t* dst) {
  auto* first = reinterpret_cast<int32_t*>(dst);
  int32_t* count = first + size;
  int32_t* weights = count + size;
  std::memset(weights, 0, size_t(size * taps.ksize) * sizeof(int32_t));
  for (int64_t o = 0; o < size; ++o) {
    first[o] = int32_t(plan.first[size_t(o)] - plan.lo);
    count[o] = plan.count[size_t(o)];
    if (count[o] == 0) {
      first[o] = 0;
      continue;
    }
    std::memcpy(weights + o * taps.ksize, &taps.weights[size_t((offset + o) * taps.ksize)],
                size_t(count[o]) * sizeof(int32_t));
  }
}

PackedHeader read_header(const uint8_t* region) {
  PackedHeader header;
  std::memcpy(&header, region, sizeof(header));
  return header;
}

}  // namespace

// A sample of `config` needs at most this many rows and columns of its source when the image is at most
// S = max(resize_size, crop_size) on its shorter side. RandomResizedCrop's box has an aspect ratio in
// [3/4, 4/3] (up to rounding) and a shorter side of at most S, so its sides are at most 4S/3 + 2; the eval
// path reads the center crop's extent scaled back by S / resize_size, plus the filter's reach.
int64_t packed_max_window(const TransformConfig& config) {
  const int64_t size = config.crop_size, resize = config.resize_size;
  const int64_t s = std::max(resize, size);
  const int64_t box = (4 * s + 2) / 3 + 2;
  const int64_t scale = (s + resize - 1) / resize;  // ceil(S / resize)
  const int64_t eval = (size * s + resize - 1) / resize + 2 * scale + 3;
  return std::max(box, eval) + 4;
}

namespace {

// The header and both axes' taps at their largest (a filter reaching over the widest window): every packed
// sample of `config` starts with at most this many bytes before its pixels.
int64_t max_header_and_taps_bytes(const TransformConfig& config) {
  const int64_t size = config.crop_size, window = packed_max_window(config);
  const int64_t ksize = 2 * std::max<int64_t>(1, (window + size - 1) / size) + 1;
  return align_up(sizeof(PackedHeader), 16) + 2 * taps_bytes(size, ksize);
}

}  // namespace

int64_t packed_region_bytes(const TransformConfig& config) {
  THAW_CHECK(config.crop_size > 0 && config.resize_size > 0,
             "TransformConfig: crop_size and resize_size must be positive");
  const int64_t window = packed_max_window(config);
  return align_up(max_header_and_taps_bytes(config) + window * window * 3, 256);
}

bool packed_carries_image(const uint8_t* region) {
  const PackedHeader header = read_header(region);
  return header.output_index >= 0 && header.cache_address != 0;
}

void set_packed_output(uint8_t* region, int32_t output_index) {
  PackedHeader header = output_index >= 0 ? read_header(region) : PackedHeader{};
  header.output_index = output_index;
  if (output_index < 0) header.bytes = int32_t(sizeof(PackedHeader));
  std::memcpy(region, &header, sizeof(header));
}

namespace {

// What pack() puts into the region besides the parameters and the taps.
enum class PixelsIn {
  Window,      // the window the crop reads, copied from `pixels`
  WholeImage,  // the whole image, copied from `pixels`, also to be kept at cache_address
  Cache,       // nothing: the image is in the cache at cache_address
};

// Packs a height x width image (pixels: HWC, or null for PixelsIn::Cache). Returns the bytes used, or -1
// when PixelsIn::WholeImage does not fit the region.
int64_t pack(int64_t height, int64_t width, const uint8_t* pixels, PixelsIn where,
             const uint8_t* cache_address, const TransformConfig& config, const SampleParams& params,
             uint8_t* region, int64_t region_bytes) {
  THAW_CHECK(height > 0 && width > 0, "pack_sample: expects a non-empty image (got {}x{})", height, width);
  const int64_t size = config.crop_size;
  // The resampled image is the box (top, left, height, width) of the source resized to out_h x out_w; the
  // output is its window of rows r0 .. r0 + size - 1 and columns c0 .. c0 + size - 1.
  int64_t top = 0, left = 0, box_h = height, box_w = width, out_h = size, out_w = size;
  int64_t r0 = 0, c0 = 0;
  if (config.augment) {
    THAW_CHECK(params.crop_height > 0 && params.crop_width > 0 && params.crop_top >= 0 &&
                   params.crop_left >= 0 && params.crop_top + params.crop_height <= height &&
                   params.crop_left + params.crop_width <= width,
               "pack_sample: the crop box (top {}, left {}, {}x{}) must lie inside the {}x{} image",
               params.crop_top, params.crop_left, params.crop_height, params.crop_width, height, width);
    top = params.crop_top;
    left = params.crop_left;
    box_h = params.crop_height;
    box_w = params.crop_width;
  } else {
    std::tie(out_h, out_w) = shorter_side_size(height, width, config.resize_size);
    r0 = center_offset(out_h, size);
    c0 = center_offset(out_w, size);
  }
  const ResampleTaps taps_v = bilinear_taps(box_h, out_h), taps_h = bilinear_taps(box_w, out_w);
  const AxisPlan rows = plan_axis(taps_v, r0, size), cols = plan_axis(taps_h, c0, size);

  PackedHeader h;
  h.size = int32_t(size);
  h.window_h = int32_t(rows.hi - rows.lo);
  h.window_w = int32_t(cols.hi - cols.lo);
  h.ksize_h = taps_h.ksize;
  h.ksize_v = taps_v.ksize;
  h.taps_h_offset = int32_t(align_up(sizeof(PackedHeader), 16));
  h.taps_v_offset = int32_t(h.taps_h_offset + taps_bytes(size, h.ksize_h));
  h.pixels_offset = int32_t(h.taps_v_offset + taps_bytes(size, h.ksize_v));
  // The kernels' scratch holds packed_max_window(config) rows per sample; a window past it would overrun it.
  THAW_CHECK(h.window_h <= packed_max_window(config) && h.window_w <= packed_max_window(config),
             "pack_sample: a {}x{} window is larger than the {} rows and columns the device transforms plan "
             "for; the image ({}x{}) should be at most max(resize_size, crop_size) = {} on its shorter side",
             h.window_h, h.window_w, packed_max_window(config), height, width,
             std::max(config.resize_size, size));
  const int64_t window_origin_row = top + rows.lo, window_origin_col = left + cols.lo;
  int64_t pixel_bytes = 0;
  if (where == PixelsIn::Window) {
    pixel_bytes = int64_t(h.window_h) * h.window_w * 3;
    h.source_stride = h.window_w;
    h.source_height = h.window_h;
  } else {
    pixel_bytes = where == PixelsIn::WholeImage ? height * width * 3 : 0;
    h.source_row0 = int32_t(window_origin_row);
    h.source_col0 = int32_t(window_origin_col);
    h.source_stride = int32_t(width);
    h.source_height = int32_t(height);
    const auto address = uint64_t(reinterpret_cast<uintptr_t>(cache_address));
    if (where == PixelsIn::WholeImage) h.cache_address = address;
    if (where == PixelsIn::Cache) h.source_address = address;
  }
  const int64_t bytes = h.pixels_offset + pixel_bytes;
  if (where == PixelsIn::WholeImage && bytes > region_bytes) return -1;
  THAW_CHECK(
      bytes <= region_bytes,
      "pack_sample: a {}x{} image needs {} bytes packed, more than the region's {}; device transforms "
      "expect images at most max(resize_size, crop_size) = {} on the shorter side, as the decoded cache "
      "keeps them",
      height, width, bytes, region_bytes, std::max(config.resize_size, size));
  h.bytes = int32_t(bytes);
  if (config.augment) {
    h.flip = params.flip ? 1 : 0;
    if (params.angle != 0) {
      const Rotation rotation = rotation_of(params.angle, size, size);
      h.rotate = rotation.identity ? 0 : 1;
      h.rotation = rotation.matrix;
    }
    const double factors[3] = {params.brightness, params.contrast, params.saturation};
    h.jitters = 3;
    for (int j = 0; j < 3; ++j) {
      h.jitter_op[j] = params.jitter_order[size_t(j)];
      h.jitter_factor[j] = float(factors[h.jitter_op[j]]);
    }
  }
  std::memcpy(region, &h, sizeof(h));
  write_taps(taps_h, cols, c0, size, region + h.taps_h_offset);
  write_taps(taps_v, rows, r0, size, region + h.taps_v_offset);
  uint8_t* dst = region + h.pixels_offset;
  if (where == PixelsIn::WholeImage) {
    std::memcpy(dst, pixels, size_t(pixel_bytes));
  } else if (where == PixelsIn::Window) {
    const int64_t row_bytes = int64_t(h.window_w) * 3;
    for (int64_t r = 0; r < h.window_h; ++r)
      std::memcpy(dst + r * row_bytes, pixels + ((window_origin_row + r) * width + window_origin_col) * 3,
                  size_t(row_bytes));
  }
  return bytes;
}

void check_rgb(const Image& image) {
  THAW_CHECK(
      image.height > 0 && image.width > 0 && int64_t(image.pixels.size()) == image.height * image.width * 3,
      "pack_sample: expects a non-empty RGB image (got {}x{}, {} bytes)", image.height, image.width,
      image.pixels.size());
}

}  // namespace

int64_t pack_sample(const Image& image, const TransformConfig& config, const SampleParams& params,
                    uint8_t* region, int64_t region_bytes) {
  check_rgb(image);
  return pack(image.height, image.width, image.pixels.data(), PixelsIn::Window, nullptr, config, params,
              region, region_bytes);
}

int64_t pack_sample_for_cache(const Image& image, uint8_t* cache_address, const TransformConfig& config,
                              const SampleParams& params, uint8_t* region, int64_t region_bytes) {
  check_rgb(image);
  return pack(image.height, image.width, image.pixels.data(), PixelsIn::WholeImage, cache_address, config,
              params, region, region_bytes);
}

int64_t pack_cached_sample(int64_t height, int64_t width, const uint8_t* cache_address,
                           const TransformConfig& config, const SampleParams& params, uint8_t* region,
                           int64_t region_bytes) {
  return pack(height, width, nullptr, PixelsIn::Cache, cache_address, config, params, region, region_bytes);
}

int64_t whole_image_packed_bytes(const TransformConfig& config, int64_t height, int64_t width) {
  return max_header_and_taps_bytes(config) + height * width * 3;
}

void unpack_batch_cpu(const uint8_t* regions, int64_t region_bytes, int64_t count, float* out) {
  const NormalizeTable table = normalize_table();
  std::vector<uint8_t> temp, flipped, rotated;
  for (int64_t k = 0; k < count; ++k) {
    const uint8_t* region = regions + k * region_bytes;
    const PackedHeader h = read_header(region);
    if (h.output_index < 0) continue;
    if (h.cache_address != 0)
      std::memcpy(reinterpret_cast<uint8_t*>(h.cache_address), region + h.pixels_offset,
                  size_t(h.source_height) * size_t(h.source_stride) * 3);
    const int32_t size = h.size;
    const int64_t pixels = int64_t(size) * size;
    temp.resize(size_t(h.window_h) * size_t(size) * 3);
    flipped.resize(size_t(pixels) * 3);
    rotated.resize(size_t(pixels) * 3);
    for (int32_t row = 0; row < h.window_h; ++row)
      for (int32_t x = 0; x < size; ++x)
        packed::resample_row_pixel(h, region, row, x, temp.data());
    for (int32_t y = 0; y < size; ++y)
      for (int32_t x = 0; x < size; ++x)
        packed::resample_column_pixel(h, region, temp.data(), y, x, flipped.data());
    for (int32_t y = 0; y < size; ++y)
      for (int32_t x = 0; x < size; ++x)
        packed::rotate_or_copy_pixel(h, flipped.data(), y, x, rotated.data());
    int mean = 0;
    if (packed::contrast_step(h) < h.jitters) {
      uint64_t sum = 0;
      for (int64_t i = 0; i < pixels; ++i)
        sum += packed::contrast_luma(h, rotated.data(), i);
      mean = packed::contrast_mean(sum, pixels);
    }
    float* image = out + int64_t(h.output_index) * 3 * pixels;
    for (int64_t i = 0; i < pixels; ++i)
      packed::finish_pixel(h, rotated.data(), i, mean, table.data(), image);
  }
}

}  // namespace thaw::data
