// data/device_transforms.h: packed samples expanded by the CPU twin equal transform_to_chw bit for bit, for
// each transform alone, the report's whole chain (every jitter order) and the eval path, on synthetic images
// of many shapes and on pets-mini's JPEGs; a batch with skipped entries; the errors. The loader's device
// path, CUDA kernels included, is held to the CPU loader's batches in tests/test_data_loader.cpp.
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <vector>

#include "core/cuda_runtime.h"
#include "core/rng.h"
#include "data/device_transforms.h"
#include "data/image.h"
#include "data/transforms.h"
#include "tests/support/catch.h"
#include "tests/support/cuda.h"
#include "tests/support/pattern_image.h"
#include "tests/support/scratch.h"

namespace fs = std::filesystem;
using namespace thaw;
using namespace thaw::data;
using thaw::test::pattern_image;

namespace {

// The image as the loader's cache keeps it: downscaled to S on the shorter side when larger.
Image as_cached(Image image, const TransformConfig& config) {
  const int64_t s = std::max(config.resize_size, config.crop_size);
  if (std::min(image.height, image.width) > s) image = resize_shorter_side(image, s);
  return image;
}

std::vector<float> expected_of(const Image& image, const TransformConfig& config,
                               const SampleParams& params) {
  std::vector<float> out(size_t(3 * config.crop_size * config.crop_size));
  transform_to_chw(image, config, params, out.data());
  return out;
}

std::vector<float> packed_of(const Image& image, const TransformConfig& config, const SampleParams& params) {
  const int64_t region_bytes = packed_region_bytes(config);
  std::vector<uint8_t> region(static_cast<size_t>(region_bytes));
  pack_sample(image, config, params, region.data(), region_bytes);
  set_packed_output(region.data(), 0);
  std::vector<float> out(size_t(3 * config.crop_size * config.crop_size));
  unpack_batch_cpu(region.data(), region_bytes, 1, out.data());
  return out;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// The variants of one drawn SampleParams that switch every step but one off (factor 1 and angle 0 are
// identities in PIL too), and the whole chain.
std::vector<std::pair<const char*, SampleParams>> variants(const SampleParams& drawn) {
  SampleParams crop_only = drawn;
  crop_only.flip = false;
  crop_only.angle = 0;
  crop_only.brightness = crop_only.contrast = crop_only.saturation = 1;
  std::vector<std::pair<const char*, SampleParams>> out = {{"crop", crop_only}};
  SampleParams p = crop_only;
  p.flip = true;
  out.emplace_back("flip", p);
  p = crop_only;
  p.angle = drawn.angle != 0 ? drawn.angle : 13.5;
  out.emplace_back("rotation", p);
  p = crop_only;
  p.brightness = drawn.brightness;
  out.emplace_back("brightness", p);
  p = crop_only;
  p.contrast = drawn.contrast;
  out.emplace_back("contrast", p);
  p = crop_only;
  p.saturation = drawn.saturation;
  out.emplace_back("saturation", p);
  out.emplace_back("chain", drawn);
  return out;
}

void check_image_both_paths(const Image& source, uint64_t seed, int draws) {
  TransformConfig eval;
  const Image image = as_cached(source, eval);
  INFO("image " << source.height << "x" << source.width << " (as cached " << image.height << "x"
                << image.width << ")");
  CHECK(same_bits(packed_of(image, eval, {}), expected_of(image, eval, {})));
  TransformConfig train;
  train.augment = true;
  for (int d = 0; d < draws; ++d) {
    Generator gen(seed, uint64_t(d));
    const SampleParams drawn = draw_sample_params(train, image.height, image.width, gen);
    for (const auto& [name, params] : variants(drawn)) {
      INFO("draw " << d << ", " << name << ": box " << params.crop_top << "," << params.crop_left << " "
                   << params.crop_height << "x" << params.crop_width << " flip " << params.flip << " angle "
                   << params.angle);
      CHECK(same_bits(packed_of(image, train, params), expected_of(image, train, params)));
    }
  }
}

}  // namespace

TEST_CASE("packed samples equal transform_to_chw bit for bit on synthetic images of many shapes") {
  const std::vector<std::pair<int64_t, int64_t>> shapes = {{256, 341}, {341, 256}, {256, 256},
                                                           {300, 500}, {500, 300}, {150, 200},
                                                           {256, 900}, {900, 256}, {37, 53}};
  uint64_t seed = 1;
  for (const auto& [h, w] : shapes) {
    check_image_both_paths(pattern_image(h, w, seed), seed, 4);
    ++seed;
  }
}

TEST_CASE("packed samples equal transform_to_chw in every jitter order") {
  const Image image = pattern_image(256, 320, 5);
  TransformConfig train;
  train.augment = true;
  Generator gen(11, 0);
  SampleParams params = draw_sample_params(train, image.height, image.width, gen);
  params.brightness = 1.17;
  params.contrast = 0.83;
  params.saturation = 1.19;
  std::array<int, 3> order = {0, 1, 2};
  int orders = 0;
  do {
    params.jitter_order = order;
    INFO("order " << order[0] << order[1] << order[2]);
    CHECK(same_bits(packed_of(image, train, params), expected_of(image, train, params)));
    ++orders;
  } while (std::next_permutation(order.begin(), order.end()));
  CHECK(orders == 6);
}

TEST_CASE("packed samples equal transform_to_chw for other crop and resize sizes, padding included") {
  const Image image = pattern_image(180, 240, 9);
  for (const auto& [crop, resize] :
       std::vector<std::pair<int64_t, int64_t>>{{64, 72}, {96, 128}, {200, 160}}) {
    TransformConfig config;
    config.crop_size = crop;
    config.resize_size = resize;  // 200 > 160: the eval center crop pads with zeros
    INFO("crop " << crop << " resize " << resize);
    const Image cached = as_cached(image, config);
    CHECK(same_bits(packed_of(cached, config, {}), expected_of(cached, config, {})));
    config.augment = true;
    for (int d = 0; d < 3; ++d) {
      Generator gen(3, uint64_t(d));
      const SampleParams params = draw_sample_params(config, cached.height, cached.width, gen);
      CHECK(same_bits(packed_of(cached, config, params), expected_of(cached, config, params)));
    }
  }
}

TEST_CASE("packed samples equal transform_to_chw on pets-mini's JPEGs") {
  REQUIRE_PETS_MINI();
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(test::pets_mini_dir() / "images"))
    if (entry.path().extension() == ".jpg") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() >= 24);
  for (size_t i = 0; i < 24; ++i) {
    const fs::path& file = files[i * (files.size() / 24)];
    INFO(file.string());
    check_image_both_paths(decode_image_file(file.string()), 100 + i, 2);
  }
}

TEST_CASE("a packed batch places each kept sample at its output index and skips the rest") {
  TransformConfig train;
  train.augment = true;
  const int64_t region_bytes = packed_region_bytes(train), floats = 3 * 224 * 224;
  std::vector<uint8_t> regions(size_t(4 * region_bytes));
  std::vector<std::vector<float>> expected;
  for (int k = 0; k < 4; ++k) {
    const Image image = pattern_image(256 + 20 * k, 300, 40 + uint64_t(k));
    Generator gen(2, uint64_t(k));
    const SampleParams params = draw_sample_params(train, image.height, image.width, gen);
    uint8_t* region = regions.data() + k * region_bytes;
    pack_sample(image, train, params, region, region_bytes);
    expected.push_back(expected_of(image, train, params));
  }
  // Positions 0 and 2 were skipped files; 3 goes first, then 1.
  set_packed_output(regions.data(), -1);
  set_packed_output(regions.data() + 2 * region_bytes, -1);
  set_packed_output(regions.data() + 3 * region_bytes, 0);
  set_packed_output(regions.data() + 1 * region_bytes, 1);
  std::vector<float> out(size_t(2 * floats), -7.0f);
  unpack_batch_cpu(regions.data(), region_bytes, 4, out.data());
  CHECK(same_bits(std::vector<float>(out.begin(), out.begin() + floats), expected[3]));
  CHECK(same_bits(std::vector<float>(out.begin() + floats, out.end()), expected[1]));
}

TEST_CASE("pack_sample names what is wrong with its input") {
  TransformConfig train;
  train.augment = true;
  const int64_t region_bytes = packed_region_bytes(train);
  std::vector<uint8_t> region(static_cast<size_t>(region_bytes));
  // An image far larger than the cache's S = 256: its crop box is past the window the kernels plan for.
  const Image big = pattern_image(1200, 1600, 1);
  SampleParams params;
  params.crop_height = 1100;
  params.crop_width = 1400;
  CHECK_THAT(test::error_of([&] { pack_sample(big, train, params, region.data(), region_bytes); }),
             ContainsSubstring("1100x1400 window is larger than") && ContainsSubstring("(1200x1600)") &&
                 ContainsSubstring("max(resize_size, crop_size) = 256"));
  // A window within that bound but more bytes than the region holds (a region sized for a smaller crop).
  params.crop_height = params.crop_width = 300;
  CHECK_THAT(test::error_of([&] { pack_sample(big, train, params, region.data(), region_bytes / 2); }),
             ContainsSubstring("1200x1600 image needs") && ContainsSubstring("more than the region's"));
  const Image small = pattern_image(100, 120, 2);
  params = SampleParams{};
  params.crop_top = 50;
  params.crop_height = 60;
  params.crop_width = 40;
  CHECK_THAT(test::error_of([&] { pack_sample(small, train, params, region.data(), region_bytes); }),
             ContainsSubstring("must lie inside the 100x120 image"));
  CHECK_THAT(test::error_of([&] { pack_sample(Image{}, train, params, region.data(), region_bytes); }),
             ContainsSubstring("non-empty RGB image"));
}

TEST_CASE("packed samples equal transform_to_chw over random crop sizes, resize sizes and image shapes") {
  // 300 draws of (crop, resize, image height and width, augment), each image as the cache keeps it: small
  // crops keep it quick, and the shapes include tall, wide, tiny and upscaled images.
  Generator gen(2026, 12);
  int checked = 0;
  for (int trial = 0; trial < 300; ++trial) {
    TransformConfig config;
    config.crop_size = gen.next_int(4, 40);
    config.resize_size = config.crop_size + gen.next_int(0, 24);
    config.augment = gen.next_uniform() < 0.7;
    const int64_t height = gen.next_int(3, 90), width = gen.next_int(3, 90);
    const Image image = as_cached(pattern_image(height, width, uint64_t(trial)), config);
    Generator draws(uint64_t(trial), 5);
    const SampleParams params = draw_sample_params(config, image.height, image.width, draws);
    INFO("trial " << trial << ": crop " << config.crop_size << ", resize " << config.resize_size << ", image "
                  << image.height << "x" << image.width << ", augment " << config.augment);
    CHECK(same_bits(packed_of(image, config, params), expected_of(image, config, params)));
    ++checked;
  }
  CHECK(checked == 300);
}
