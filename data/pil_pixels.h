// The per-pixel arithmetic of the report's transforms as PIL computes it, written once for the host
// (data/transforms.cpp, data/device_transforms.cpp) and the GPU (data/cuda/device_transforms.cu), so that a
// batch augmented on the device equals the CPU loader's bit for bit:
//   - resampling taps are 22-bit fixed-point integers, a sum starts at half an output unit and is shifted
//     down and clipped (clip8);
//   - RGB -> L is ITU-R 601-2 luma in 16-bit fixed point (luma);
//   - ImageEnhance's blend is float32, truncated and clipped (blend);
//   - rotation maps each output pixel center back through an affine matrix in double precision and
//     interpolates bilinearly, truncating (rotated_pixel).
// Floating-point products and sums go through mul/add below, which are never fused into an FMA: nvcc
// contracts a * b + c by default, and a fused result rounds once where PIL rounds twice.
#pragma once

#include <cstdint>

#ifdef __CUDACC__
#define THAW_HOST_DEVICE __host__ __device__
#else
#define THAW_HOST_DEVICE
#endif

namespace thaw::data::pil {

// Resample.c's PRECISION_BITS: weights are w * 2^22, rounded.
constexpr int kPrecisionBits = 32 - 8 - 2;
constexpr int32_t kHalf = int32_t(1) << (kPrecisionBits - 1);

THAW_HOST_DEVICE inline uint8_t clip8(int32_t v) {
  const int32_t shifted = v >> kPrecisionBits;
  return uint8_t(shifted < 0 ? 0 : shifted > 255 ? 255 : shifted);
}

// IEEE round-to-nearest products and sums that no compiler may contract.
THAW_HOST_DEVICE inline double mul(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
THAW_HOST_DEVICE inline double add(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
THAW_HOST_DEVICE inline float mul(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
THAW_HOST_DEVICE inline float add(float a, float b) {
#ifdef __CUDA_ARCH__
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}

// PIL's RGB -> L (Convert.c, rgb2l).
THAW_HOST_DEVICE inline uint8_t luma(uint8_t r, uint8_t g, uint8_t b) {
  return uint8_t((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16);
}

// PIL's ImagingBlend(in1, in2, alpha): in1 + alpha * (in2 - in1) in float32, truncated, clipped to 0..255.
THAW_HOST_DEVICE inline uint8_t blend(int in1, int in2, float alpha) {
  const float v = add(float(in1), mul(alpha, float(in2 - in1)));
  return v <= 0.0f ? 0 : v >= 255.0f ? 255 : uint8_t(v);
}

// The inverse map of PIL's Image.rotate: output pixel center (x + 0.5, y + 0.5) comes from
// (a x' + b y' + c, d x' + e y' + f) of the source.
struct Affine {
  double a = 1, b = 0, c = 0, d = 0, e = 1, f = 0;
};

// One output pixel (x, y) of PIL's affine transform with the bilinear filter and fill 0 (Geometry.c) of the
// RGB image `in` (height x width, HWC): rgb gets 3 bytes.
THAW_HOST_DEVICE inline void rotated_pixel(const uint8_t* in, int64_t height, int64_t width, const Affine& m,
                                           int64_t x, int64_t y, uint8_t* rgb) {
  const double xin = double(x) + 0.5, yin = double(y) + 0.5;
  double xs = add(add(mul(m.a, xin), mul(m.b, yin)), m.c);
  double ys = add(add(mul(m.d, xin), mul(m.e, yin)), m.f);
  if (xs < 0.0 || xs >= double(width) || ys < 0.0 || ys >= double(height)) {
    rgb[0] = rgb[1] = rgb[2] = 0;
    return;
  }
  xs -= 0.5;
  ys -= 0.5;
  // floor() of values in [-0.5, size): truncation, minus one below zero.
  const int64_t xi = int64_t(xs) - (xs < 0.0), yi = int64_t(ys) - (ys < 0.0);
  const double dx = xs - double(xi), dy = ys - double(yi);
  const auto clamp = [](int64_t v, int64_t hi) { return v < 0 ? int64_t(0) : v > hi ? hi : v; };
  const int64_t x0 = clamp(xi, width - 1) * 3, x1 = clamp(xi + 1, width - 1) * 3;
  const uint8_t* row0 = in + clamp(yi, height - 1) * width * 3;
  const bool has_row1 = yi + 1 >= 0 && yi + 1 < height;
  const uint8_t* row1 = has_row1 ? in + (yi + 1) * width * 3 : nullptr;
  for (int ch = 0; ch < 3; ++ch) {
    const double v1 = add(double(row0[x0 + ch]), mul(double(row0[x1 + ch] - row0[x0 + ch]), dx));
    const double v2 =
        has_row1 ? add(double(row1[x0 + ch]), mul(double(row1[x1 + ch] - row1[x0 + ch]), dx)) : v1;
    rgb[ch] = uint8_t(add(v1, mul(v2 - v1, dy)));
  }
}

}  // namespace thaw::data::pil
