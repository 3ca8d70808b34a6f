// pattern_image: a deterministic RGB test image, a smooth gradient per channel plus per-pixel noise, so that
// resampling, rotation and colour jitter all see both structure and edges. Header-only: the emulated CUDA
// tests use it without the rest of the test support library.
#pragma once

#include <cstdint>

#include "core/rng.h"
#include "data/image.h"

namespace thaw::test {

inline data::Image pattern_image(int64_t height, int64_t width, uint64_t seed) {
  data::Image image;
  image.height = height;
  image.width = width;
  image.pixels.resize(static_cast<size_t>(height * width * 3));
  Generator gen(seed, 7);
  for (int64_t y = 0; y < height; ++y)
    for (int64_t x = 0; x < width; ++x)
      for (int64_t c = 0; c < 3; ++c) {
        const int64_t smooth = (x * (c + 1) * 3 + y * (3 - c) * 2) % 256;
        image.pixels[size_t((y * width + x) * 3 + c)] = uint8_t((smooth + gen.next_int(0, 48)) % 256);
      }
  return image;
}

}  // namespace thaw::test
