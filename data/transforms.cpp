// The transforms of data/transforms.h, written to give the same bytes as torchvision 0.14 on PIL images:
//   - resampling is PIL's ImagingResample (Pillow 9, libImaging/Resample.c) with the bilinear (triangle)
//     filter: separable, horizontal pass first, 22-bit fixed-point weights, 8-bit rounding between passes;
//     when shrinking, the filter's support grows with the scale (PIL's antialiasing);
//   - rotation is PIL's affine transform with its bilinear filter (Geometry.c): each output pixel center is
//     mapped back, samples outside the image are the fill color (0), results are truncated to uint8;
//   - brightness, contrast and saturation are PIL's ImageEnhance: Image.blend(degenerate, image, factor) in
//     float32, truncated and clipped to uint8;
//   - ToTensor + Normalize in float32: (v / 255 - mean) / std, as torch computes it.
#include "data/transforms.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "data/pil_pixels.h"
#include "data/transform_parts.h"

namespace thaw::data {
namespace {

// A read-only window of an RGB image: `stride` bytes between rows.
struct View {
  const uint8_t* data;
  int64_t stride;
  int64_t height, width;
};

View view_of(const Image& image) {
  return {image.pixels.data(), image.width * 3, image.height, image.width};
}

void check_image(const Image& image, const char* what) {
  THAW_CHECK(
      image.height > 0 && image.width > 0 && int64_t(image.pixels.size()) == image.height * image.width * 3,
      "{}: expects a non-empty RGB image of height*width*3 bytes (got {}x{}, {} bytes)", what, image.height,
      image.width, image.pixels.size());
}

Image make_image(int64_t height, int64_t width) {
  Image image;
  image.height = height;
  image.width = width;
  image.pixels.resize(size_t(height * width * 3));
  return image;
}

// Python's round() for the x.5 values of the crop offsets: ties to even.
int64_t round_half_even(double x) {
  return int64_t(std::nearbyint(x));
}

// ---- PIL's bilinear resampling (Resample.c) --------------------------------------------------------------

using pil::clip8;
using pil::kPrecisionBits;

// Resizes `in` to out_h x out_w like PIL's Image.resize(BILINEAR), computing only the output window of rows
// [r0, r0 + nr) and columns [c0, c0 + nc) into `out` (nr * nc * 3 bytes). Every output pixel depends only on
// its own taps, so a window is exactly the same as cropping the full result.
void resample_window(const View& in, int64_t out_h, int64_t out_w, int64_t r0, int64_t nr, int64_t c0,
                     int64_t nc, uint8_t* out) {
  const bool need_h = out_w != in.width, need_v = out_h != in.height;
  ResampleTaps taps_v;
  int64_t row_first = r0, row_end = r0 + nr;  // source rows the vertical pass reads
  if (need_v) {
    taps_v = bilinear_taps(in.height, out_h);
    row_first = taps_v.first[size_t(r0)];
    row_end = taps_v.first[size_t(r0 + nr - 1)] + taps_v.count[size_t(r0 + nr - 1)];
  }
  // Horizontal pass: source rows [row_first, row_end) -> temp (rows x nc), 8-bit like PIL's intermediate.
  std::vector<uint8_t> temp;
  View mid{in.data + row_first * in.stride + c0 * 3, in.stride, row_end - row_first, nc};
  if (need_h) {
    const ResampleTaps taps_h = bilinear_taps(in.width, out_w);
    const int64_t rows = row_end - row_first;
    temp.resize(size_t(rows * nc * 3));
    for (int64_t y = 0; y < rows; ++y) {
      const uint8_t* src = in.data + (row_first + y) * in.stride;
      uint8_t* dst = &temp[size_t(y * nc * 3)];
      for (int64_t xx = 0; xx < nc; ++xx) {
        const int first = taps_h.first[size_t(c0 + xx)], count = taps_h.count[size_t(c0 + xx)];
        const int32_t* k = &taps_h.weights[size_t((c0 + xx) * taps_h.ksize)];
        const uint8_t* p = src + first * 3;
        int32_t s0 = pil::kHalf, s1 = s0, s2 = s0;
        for (int x = 0; x < count; ++x, p += 3) {
          s0 += p[0] * k[x];
          s1 += p[1] * k[x];
          s2 += p[2] * k[x];
        }
        dst[xx * 3 + 0] = clip8(s0);
        dst[xx * 3 + 1] = clip8(s1);
        dst[xx * 3 + 2] = clip8(s2);
      }
    }
    mid = View{temp.data(), nc * 3, rows, nc};
  }
  const int64_t row_bytes = nc * 3;
  if (!need_v) {
    for (int64_t y = 0; y < nr; ++y)
      std::memcpy(out + y * row_bytes, mid.data + y * mid.stride, size_t(row_bytes));
    return;
  }
  // Vertical pass: accumulate whole rows (rows of mid are source rows from row_first on).
  std::vector<int32_t> acc(static_cast<size_t>(row_bytes));
  for (int64_t yy = 0; yy < nr; ++yy) {
    const int first = taps_v.first[size_t(r0 + yy)], count = taps_v.count[size_t(r0 + yy)];
    const int32_t* k = &taps_v.weights[size_t((r0 + yy) * taps_v.ksize)];
    std::fill(acc.begin(), acc.end(), pil::kHalf);
    for (int y = 0; y < count; ++y) {
      const uint8_t* src = mid.data + (first + y - row_first) * mid.stride;
      const int32_t w = k[y];
      for (int64_t i = 0; i < row_bytes; ++i)
        acc[size_t(i)] += src[i] * w;
    }
    uint8_t* dst = out + yy * row_bytes;
    for (int64_t i = 0; i < row_bytes; ++i)
      dst[i] = clip8(acc[size_t(i)]);
  }
}

void resample_into(const View& in, int64_t out_h, int64_t out_w, Image& out) {
  out = make_image(out_h, out_w);
  resample_window(in, out_h, out_w, 0, out_h, 0, out_w, out.pixels.data());
}

// ---- PIL ImageEnhance ------------------------------------------------------------------------------------

using pil::blend;

inline uint8_t luma(const uint8_t* p) {
  return pil::luma(p[0], p[1], p[2]);
}

void brightness_inplace(std::vector<uint8_t>& pixels, double factor) {
  uint8_t table[256];
  for (int v = 0; v < 256; ++v)
    table[v] = blend(0, v, float(factor));
  for (uint8_t& p : pixels)
    p = table[p];
}

void contrast_inplace(std::vector<uint8_t>& pixels, double factor) {
  // ImageStat mean of the L image, rounded: int(mean + 0.5).
  int64_t sum = 0;
  const size_t n = pixels.size() / 3;
  for (size_t i = 0; i < n; ++i)
    sum += luma(&pixels[i * 3]);
  const int mean = int(double(sum) / double(n) + 0.5);
  uint8_t table[256];
  for (int v = 0; v < 256; ++v)
    table[v] = blend(mean, v, float(factor));
  for (uint8_t& p : pixels)
    p = table[p];
}

void saturation_inplace(std::vector<uint8_t>& pixels, double factor) {
  const float alpha = float(factor);
  const size_t n = pixels.size() / 3;
  for (size_t i = 0; i < n; ++i) {
    uint8_t* p = &pixels[i * 3];
    const int l = luma(p);
    p[0] = blend(l, p[0], alpha);
    p[1] = blend(l, p[1], alpha);
    p[2] = blend(l, p[2], alpha);
  }
}

void hflip_inplace(Image& image) {
  for (int64_t y = 0; y < image.height; ++y) {
    uint8_t* row = &image.pixels[size_t(y * image.width * 3)];
    for (int64_t a = 0, b = image.width - 1; a < b; ++a, --b) {
      std::swap(row[a * 3 + 0], row[b * 3 + 0]);
      std::swap(row[a * 3 + 1], row[b * 3 + 1]);
      std::swap(row[a * 3 + 2], row[b * 3 + 2]);
    }
  }
}

// Python's round(x, 15), which PIL applies to the rotation matrix: correctly rounded through decimal text.
double round15(double x) {
  char text[64];
  const auto printed = std::to_chars(text, text + sizeof(text), x, std::chars_format::fixed, 15);
  double y = x;
  std::from_chars(text, printed.ptr, y);
  return y;
}

}  // namespace

// ---- The shared parts (data/transform_parts.h) -----------------------------------------------------------

// PIL's precompute_coeffs + normalize_coeffs_8bpc for the box [0, in_size) and the triangle filter
// (support 1), scaled by the downscale factor when shrinking.
ResampleTaps bilinear_taps(int64_t in_size, int64_t out_size) {
  const double scale = double(in_size) / double(out_size);
  const double filterscale = std::max(scale, 1.0);
  const double support = 1.0 * filterscale;
  ResampleTaps taps;
  taps.ksize = int(std::ceil(support)) * 2 + 1;
  taps.first.resize(size_t(out_size));
  taps.count.resize(size_t(out_size));
  taps.weights.assign(size_t(out_size * taps.ksize), 0);
  std::vector<double> k(static_cast<size_t>(taps.ksize));
  for (int64_t xx = 0; xx < out_size; ++xx) {
    const double center = 0.0 + (double(xx) + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = int(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = int(center + support + 0.5);
    if (xmax > in_size) xmax = int(in_size);
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      double t = (x + xmin - center + 0.5) * ss;
      if (t < 0.0) t = -t;
      const double w = t < 1.0 ? 1.0 - t : 0.0;
      k[size_t(x)] = w;
      ww += w;
    }
    int32_t* out = &taps.weights[size_t(xx * taps.ksize)];
    for (int x = 0; x < xmax; ++x) {
      const double w = ww != 0.0 ? k[size_t(x)] / ww : k[size_t(x)];
      out[x] = w < 0 ? int32_t(-0.5 + w * (1 << kPrecisionBits)) : int32_t(0.5 + w * (1 << kPrecisionBits));
    }
    taps.first[size_t(xx)] = xmin;
    taps.count[size_t(xx)] = xmax;
  }
  return taps;
}

std::pair<int64_t, int64_t> shorter_side_size(int64_t height, int64_t width, int64_t size) {
  const int64_t shorter = std::min(height, width), longer = std::max(height, width);
  const auto new_long = int64_t(double(size) * double(longer) / double(shorter));
  return width <= height ? std::pair{new_long, size} : std::pair{size, new_long};
}

int64_t center_offset(int64_t extent, int64_t size) {
  if (size > extent) return -((size - extent) / 2);
  return round_half_even(double(extent - size) / 2.0);
}

Rotation rotation_of(double angle, int64_t height, int64_t width) {
  // PIL's Image.rotate: angle % 360 (Python's modulo), then the inverse affine map about (w/2, h/2).
  double degrees = std::fmod(angle, 360.0);
  if (degrees != 0 && degrees < 0) degrees += 360.0;
  Rotation rotation;
  if (degrees == 0) return rotation;
  const double cx = double(width) / 2.0, cy = double(height) / 2.0;
  const double radians = -(degrees * (M_PI / 180.0));
  pil::Affine& m = rotation.matrix;
  m.a = round15(std::cos(radians));
  m.b = round15(std::sin(radians));
  m.d = round15(-std::sin(radians));
  m.e = round15(std::cos(radians));
  m.c = (m.a * -cx + m.b * -cy + 0.0) + cx;
  m.f = (m.d * -cx + m.e * -cy + 0.0) + cy;
  rotation.identity = false;
  return rotation;
}

// ---- The individual transforms ---------------------------------------------------------------------------

Image resize_bilinear(const Image& image, int64_t height, int64_t width) {
  check_image(image, "resize_bilinear");
  THAW_CHECK(height > 0 && width > 0, "resize_bilinear: output size must be positive (got {}x{})", height,
             width);
  Image out;
  resample_into(view_of(image), height, width, out);
  return out;
}

Image resize_shorter_side(const Image& image, int64_t size) {
  check_image(image, "resize_shorter_side");
  THAW_CHECK(size > 0, "resize_shorter_side: size must be positive (got {})", size);
  const auto [h, w] = shorter_side_size(image.height, image.width, size);
  return resize_bilinear(image, h, w);
}

Image crop(const Image& image, int64_t top, int64_t left, int64_t height, int64_t width) {
  check_image(image, "crop");
  THAW_CHECK(height > 0 && width > 0, "crop: size must be positive (got {}x{})", height, width);
  Image out = make_image(height, width);  // zero-filled: PIL's crop pads outside the image with 0
  const int64_t y0 = std::max<int64_t>(top, 0), y1 = std::min(top + height, image.height);
  const int64_t x0 = std::max<int64_t>(left, 0), x1 = std::min(left + width, image.width);
  for (int64_t y = y0; y < y1 && x0 < x1; ++y) {
    std::memcpy(&out.pixels[size_t(((y - top) * width + (x0 - left)) * 3)],
                &image.pixels[size_t((y * image.width + x0) * 3)], size_t((x1 - x0) * 3));
  }
  return out;
}

Image center_crop(const Image& image, int64_t size) {
  check_image(image, "center_crop");
  return crop(image, center_offset(image.height, size), center_offset(image.width, size), size, size);
}

Image resized_crop(const Image& image, int64_t top, int64_t left, int64_t height, int64_t width,
                   int64_t size) {
  check_image(image, "resized_crop");
  THAW_CHECK(height > 0 && width > 0 && size > 0, "resized_crop: sizes must be positive (box {}x{}, size {})",
             height, width, size);
  Image out;
  if (top >= 0 && left >= 0 && top + height <= image.height && left + width <= image.width) {
    const View box{image.pixels.data() + top * image.width * 3 + left * 3, image.width * 3, height, width};
    resample_into(box, size, size, out);
  } else {
    const Image cropped = crop(image, top, left, height, width);
    resample_into(view_of(cropped), size, size, out);
  }
  return out;
}

Image hflip(const Image& image) {
  check_image(image, "hflip");
  Image out = image;
  hflip_inplace(out);
  return out;
}

Image rotate(const Image& image, double angle) {
  check_image(image, "rotate");
  const Rotation rotation = rotation_of(angle, image.height, image.width);
  if (rotation.identity) return image;
  Image out = make_image(image.height, image.width);
  uint8_t* dst = out.pixels.data();
  for (int64_t y = 0; y < image.height; ++y) {
    for (int64_t x = 0; x < image.width; ++x, dst += 3)
      pil::rotated_pixel(image.pixels.data(), image.height, image.width, rotation.matrix, x, y, dst);
  }
  return out;
}

Image adjust_brightness(const Image& image, double factor) {
  check_image(image, "adjust_brightness");
  Image out = image;
  brightness_inplace(out.pixels, factor);
  return out;
}

Image adjust_contrast(const Image& image, double factor) {
  check_image(image, "adjust_contrast");
  Image out = image;
  contrast_inplace(out.pixels, factor);
  return out;
}

Image adjust_saturation(const Image& image, double factor) {
  check_image(image, "adjust_saturation");
  Image out = image;
  saturation_inplace(out.pixels, factor);
  return out;
}

NormalizeTable normalize_table() {
  // torch: img.float().div(255), then sub_(mean).div_(std), all float32.
  NormalizeTable table;
  for (size_t c = 0; c < 3; ++c) {
    for (int v = 0; v < 256; ++v)
      table[c * 256 + size_t(v)] = (float(v) / 255.0f - kImageNetMean[c]) / kImageNetStd[c];
  }
  return table;
}

void to_normalized_chw(const Image& image, float* out) {
  check_image(image, "to_normalized_chw");
  const NormalizeTable table = normalize_table();
  const int64_t plane = image.height * image.width;
  const uint8_t* p = image.pixels.data();
  for (int64_t i = 0; i < plane; ++i, p += 3) {
    out[i] = table[p[0]];
    out[plane + i] = table[256 + p[1]];
    out[2 * plane + i] = table[512 + p[2]];
  }
}

// ---- The pipeline ----------------------------------------------------------------------------------------

SampleParams draw_sample_params(const TransformConfig& config, int64_t height, int64_t width,
                                Generator& gen) {
  THAW_CHECK(height > 0 && width > 0, "draw_sample_params: image size must be positive (got {}x{})", height,
             width);
  SampleParams p;
  if (!config.augment) return p;
  THAW_CHECK(config.rotation_degrees >= 0 && config.brightness >= 0 && config.contrast >= 0 &&
                 config.saturation >= 0,
             "TransformConfig: rotation_degrees, brightness, contrast and saturation must be >= 0");
  // RandomResizedCrop.get_params, scale (0.08, 1), ratio (3/4, 4/3).
  const double area = double(height) * double(width);
  const double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;
  const double log_min = std::log(ratio_min), log_max = std::log(ratio_max);
  bool found = false;
  for (int attempt = 0; attempt < 10 && !found; ++attempt) {
    const double target_area = area * gen.next_uniform(0.08, 1.0);
    const double aspect = std::exp(gen.next_uniform(log_min, log_max));
    const int64_t w = round_half_even(std::sqrt(target_area * aspect));
    const int64_t h = round_half_even(std::sqrt(target_area / aspect));
    if (0 < w && w <= width && 0 < h && h <= height) {
      p.crop_top = gen.next_int(0, height - h + 1);
      p.crop_left = gen.next_int(0, width - w + 1);
      p.crop_height = h;
      p.crop_width = w;
      found = true;
    }
  }
  if (!found) {  // fallback: the central crop of the closest allowed ratio
    const double in_ratio = double(width) / double(height);
    int64_t w = width, h = height;
    if (in_ratio < ratio_min) {
      h = round_half_even(double(w) / ratio_min);
    } else if (in_ratio > ratio_max) {
      w = round_half_even(double(h) * ratio_max);
    }
    p.crop_top = (height - h) / 2;
    p.crop_left = (width - w) / 2;
    p.crop_height = h;
    p.crop_width = w;
  }
  // RandomHorizontalFlip(0.5): drawn even when disabled, so the later draws do not move.
  p.flip = gen.next_uniform() < 0.5 && config.hflip;
  // RandomRotation(degrees): U(-degrees, degrees).
  p.angle = gen.next_uniform(-config.rotation_degrees, config.rotation_degrees);
  // ColorJitter: fn_idx = randperm(4) (Fisher-Yates), then the three factors.
  std::array<int, 4> order = {0, 1, 2, 3};
  for (int i = 3; i > 0; --i)
    std::swap(order[size_t(i)], order[size_t(gen.next_int(0, i + 1))]);
  for (int i = 0, j = 0; i < 4; ++i) {
    if (order[size_t(i)] != 3) p.jitter_order[size_t(j++)] = order[size_t(i)];
  }
  p.brightness = gen.next_uniform(std::max(0.0, 1.0 - config.brightness), 1.0 + config.brightness);
  p.contrast = gen.next_uniform(std::max(0.0, 1.0 - config.contrast), 1.0 + config.contrast);
  p.saturation = gen.next_uniform(std::max(0.0, 1.0 - config.saturation), 1.0 + config.saturation);
  return p;
}

void transform_to_chw(const Image& image, const TransformConfig& config, const SampleParams& params,
                      float* out) {
  check_image(image, "transform_to_chw");
  const int64_t size = config.crop_size;
  THAW_CHECK(size > 0 && config.resize_size > 0,
             "TransformConfig: crop_size and resize_size must be positive");
  if (!config.augment) {
    // Resize(resize_size) + CenterCrop(crop_size); only the kept window of the resized image is computed.
    const auto [rh, rw] = shorter_side_size(image.height, image.width, config.resize_size);
    if (size <= rh && size <= rw) {
      Image cropped = make_image(size, size);
      resample_window(view_of(image), rh, rw, center_offset(rh, size), size, center_offset(rw, size), size,
                      cropped.pixels.data());
      to_normalized_chw(cropped, out);
    } else {
      to_normalized_chw(center_crop(resize_bilinear(image, rh, rw), size), out);
    }
    return;
  }
  THAW_CHECK(params.crop_height > 0 && params.crop_width > 0,
             "transform_to_chw: augment=true needs SampleParams from draw_sample_params (empty crop box)");
  Image x =
      resized_crop(image, params.crop_top, params.crop_left, params.crop_height, params.crop_width, size);
  if (params.flip) hflip_inplace(x);
  if (params.angle != 0) x = rotate(x, params.angle);
  for (const int fn : params.jitter_order) {
    if (fn == 0) brightness_inplace(x.pixels, params.brightness);
    if (fn == 1) contrast_inplace(x.pixels, params.contrast);
    if (fn == 2) saturation_inplace(x.pixels, params.saturation);
  }
  to_normalized_chw(x, out);
}

}  // namespace thaw::data
