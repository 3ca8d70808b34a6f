// The image transforms of the report's pipeline, with torchvision 0.14's semantics on PIL images:
// Resize (shorter side, bilinear with PIL's antialiasing), CenterCrop, RandomResizedCrop,
// RandomHorizontalFlip, RandomRotation (bilinear, fill 0), ColorJitter (brightness, contrast, saturation) and
// ToTensor + Normalize.
//
// Everything random for one sample is drawn up front into a SampleParams from a Generator the caller owns
// (the loader seeds one per sample), so results never depend on the number of threads, and a device-side
// transform can be given the same parameters. The uint8 steps round like PIL does (8-bit between steps).
#pragma once

#include <array>
#include <cstdint>

#include "core/rng.h"
#include "data/image.h"

namespace thaw::data {

// ImageNet statistics used by Normalize.
inline constexpr std::array<float, 3> kImageNetMean = {0.485f, 0.456f, 0.406f};
inline constexpr std::array<float, 3> kImageNetStd = {0.229f, 0.224f, 0.225f};

struct TransformConfig {
  int64_t crop_size = 224;
  int64_t resize_size = 256;
  bool augment = false;
  double rotation_degrees = 20, brightness = 0.2, contrast = 0.2, saturation = 0.2;
  bool hflip = true;
};
// augment=false (eval): resize shorter side to resize_size, center crop crop_size.
// augment=true (train): RandomResizedCrop(crop_size) (scale (0.08, 1), ratio (3/4, 4/3)),
//   RandomHorizontalFlip (p 0.5, if hflip), RandomRotation(rotation_degrees) (bilinear, fill 0),
//   ColorJitter(brightness, contrast, saturation) (factors uniform in [max(0, 1-b), 1+b], random order).
// Both end with ToTensor + Normalize(kImageNetMean, kImageNetStd).

// Everything random for one sample. For eval (augment=false) it holds the identity values and is unused.
struct SampleParams {
  // RandomResizedCrop's box in the source image, in pixels: rows crop_top .. crop_top+crop_height-1.
  int64_t crop_top = 0, crop_left = 0, crop_height = 0, crop_width = 0;
  bool flip = false;
  double angle = 0;  // degrees, counter-clockwise (torchvision's convention)
  double brightness = 1, contrast = 1, saturation = 1;  // factors, 1 = unchanged
  // Order in which the jitters are applied: 0 brightness, 1 contrast, 2 saturation (torchvision draws a
  // permutation of 4 including hue; hue is not used and dropped from the order).
  std::array<int, 3> jitter_order = {0, 1, 2};
};

// requires height, width >= 1. Draws, in this order: the crop box (RandomResizedCrop.get_params: up to 10
// tries of area scale ~ U(0.08, 1) and log-ratio ~ U(log 3/4, log 4/3), then the center-crop fallback), the
// flip (one uniform < 0.5, drawn even when hflip is false), the angle ~ U(-deg, deg), the jitter order
// (a permutation of 4), the brightness, contrast and saturation factors. Nothing is drawn when augment=false.
SampleParams draw_sample_params(const TransformConfig& config, int64_t height, int64_t width, Generator& gen);

// out: 3 * crop_size * crop_size floats, CHW, normalized. The image must be non-empty.
void transform_to_chw(const Image& image, const TransformConfig& config, const SampleParams& params,
                      float* out);

// ---- The individual transforms (torchvision.transforms.functional on a PIL image) ----

// Resize(size): shorter side = size, longer = int(size * long / short); bilinear with PIL's antialiasing.
Image resize_shorter_side(const Image& image, int64_t size);
// Resize to exactly (height, width), PIL's bilinear filter (antialiased when shrinking).
Image resize_bilinear(const Image& image, int64_t height, int64_t width);
// F.crop: the box (top, left, height, width) may reach outside the image; outside pixels are 0.
Image crop(const Image& image, int64_t top, int64_t left, int64_t height, int64_t width);
// F.center_crop: top = int(round((H - size) / 2.0)), left likewise (pads with 0 when size exceeds the image).
Image center_crop(const Image& image, int64_t size);
// F.resized_crop(img, top, left, height, width, [size, size], BILINEAR): crop the box, then resize it to
// size x size (the filter is clipped at the box's edges, as at an image's). A box inside the image is
// resampled straight from the source, without a copy.
Image resized_crop(const Image& image, int64_t top, int64_t left, int64_t height, int64_t width,
                   int64_t size);
Image hflip(const Image& image);
// F.rotate(img, angle, BILINEAR, expand=False, center=None, fill=0): counter-clockwise by angle degrees about
// the image center, same size, pixels from outside the image are 0.
Image rotate(const Image& image, double angle);
// F.adjust_brightness / adjust_contrast / adjust_saturation on a PIL image (PIL ImageEnhance: blend with
// black, with the rounded mean of the L image, with the L image; L = (R*19595 + G*38470 + B*7471 + 2^15) >>
// 16).
Image adjust_brightness(const Image& image, double factor);
Image adjust_contrast(const Image& image, double factor);
Image adjust_saturation(const Image& image, double factor);
// ToTensor + Normalize(kImageNetMean, kImageNetStd): out has 3 * H * W floats, CHW.
void to_normalized_chw(const Image& image, float* out);

}  // namespace thaw::data
