// data/image.h and data/transforms.h: decoding (formats, errors naming the file) and every transform against
// torchvision 0.14 on PIL images, from a golden file written by weights_tools/make_transform_golden.py
// (regenerated when missing, older than the script, or made with/without pets-mini when that changed). The
// transforms run on PIL's decoded pixels (stored in the golden file), so that the comparison measures the
// transforms, not the two JPEG decoders; the decoders are compared on their own. Without pets-mini the
// comparisons run on the synthetic image only; without torchvision they skip with a message.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string_view>

#include "core/error.h"
#include "core/hdf5_file.h"
#include "core/name_pattern.h"
#include "data/image.h"
#include "data/transforms.h"
#include "tests/support/allclose.h"
#include "tests/support/catch.h"
#include "tests/support/pets_golden.h"
#include "tests/support/scratch.h"

namespace fs = std::filesystem;
using namespace thaw;
using namespace thaw::data;

namespace {

using test::have_pets_mini;
const fs::path kPetsMini = test::pets_mini_dir();

// The golden file, regenerated when missing or older than its generator. Empty when it cannot be made.
std::string golden_file() {
  return test::pets_golden_file("make_transform_golden.py", "transforms.h5");
}

Image image_from(const Tensor& t) {  // int32 (H, W, 3)
  REQUIRE(t.dim() == 3);
  REQUIRE(t.size(2) == 3);
  Image image;
  image.height = t.size(0);
  image.width = t.size(1);
  const std::vector<int32_t> v = t.to_vector<int32_t>();
  image.pixels.assign(v.begin(), v.end());
  return image;
}

struct Diff {
  double mean = 0;  // mean |a - b| over all values
  int max = 0;
  double share_off = 0;  // share of values that differ
};

Diff diff(const Image& got, const Image& ref, const std::string& what) {
  INFO(what);
  REQUIRE(got.height == ref.height);
  REQUIRE(got.width == ref.width);
  Diff d;
  int64_t sum = 0, off = 0;
  for (size_t i = 0; i < got.pixels.size(); ++i) {
    const int e = std::abs(int(got.pixels[i]) - int(ref.pixels[i]));
    sum += e;
    off += e != 0;
    d.max = std::max(d.max, e);
  }
  d.mean = double(sum) / double(got.pixels.size());
  d.share_off = double(off) / double(got.pixels.size());
  return d;
}

// Compares a thaw result with torchvision's, requiring max |diff| <= max_allowed and mean <= mean_allowed.
void check_image_close(const Image& got, const Image& ref, const std::string& what, int max_allowed,
                       double mean_allowed) {
  const Diff d = diff(got, ref, what);
  INFO(what << ": mean |diff| " << d.mean << ", max " << d.max << ", " << 100 * d.share_off
            << "% of values differ (allowed: max " << max_allowed << ", mean " << mean_allowed << ")");
  CHECK(d.max <= max_allowed);
  CHECK(d.mean <= mean_allowed);
  UNSCOPED_INFO(what << ": mean " << d.mean << " max " << d.max);
}

Image gradient(int64_t height, int64_t width) {
  Image image;
  image.height = height;
  image.width = width;
  image.pixels.resize(size_t(height * width * 3));
  for (int64_t y = 0; y < height; ++y) {
    for (int64_t x = 0; x < width; ++x) {
      uint8_t* p = &image.pixels[size_t((y * width + x) * 3)];
      p[0] = uint8_t(x * 255 / std::max<int64_t>(width - 1, 1));
      p[1] = uint8_t(y * 255 / std::max<int64_t>(height - 1, 1));
      p[2] = uint8_t((x * 7 + y * 13) % 256);
    }
  }
  return image;
}

fs::path temp_dir() {
  const fs::path dir = fs::temp_directory_path() / ("thaw_test_transforms_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

// ---- Decoding --------------------------------------------------------------------------------------------

TEST_CASE("decode: the GIF and the RGBA PNG named .jpg decode to RGB like PIL's convert('RGB')") {
  if (!have_pets_mini()) THAW_SKIP("pets-mini not found at " << kPetsMini << ": decode test skipped");
  const std::string gif = (kPetsMini / "images" / "Abyssinian_34.jpg").string();
  const std::string png = (kPetsMini / "images" / "Abyssinian_5.jpg").string();
  CHECK(sniff_image_format(gif) == ImageFormat::Gif);
  CHECK(sniff_image_format(png) == ImageFormat::Png);
  CHECK(sniff_image_format((kPetsMini / "images" / "Abyssinian_1.jpg").string()) == ImageFormat::Jpeg);
  CHECK(std::string(image_format_name(ImageFormat::Gif)) == "gif");
  const Image g = decode_image_file(gif), p = decode_image_file(png);
  CHECK(g.width == 250);
  CHECK(g.height == 202);
  CHECK(p.width == 200);
  CHECK(p.height == 150);
  CHECK(p.pixels.size() == size_t(200 * 150 * 3));

  const std::string golden = golden_file();
  const H5File file = H5File::open(golden);
  // Lossless formats: exactly PIL's pixels (palette expanded, alpha dropped).
  check_image_close(g, image_from(file.read("Abyssinian_34/src")), "GIF vs PIL", 0, 0);
  check_image_close(p, image_from(file.read("Abyssinian_5/src")), "RGBA PNG vs PIL", 0, 0);
}

// libjpeg-turbo with Pillow's settings gives Pillow's pixels (tests/test_data_decode.cpp has the full check).
static bool libjpeg_turbo() {
  return std::string_view(jpeg_decoder_name()).starts_with("libjpeg-turbo");
}

TEST_CASE("decode: thaw's JPEG decoder against PIL's (libjpeg-turbo equal and stb_image close)") {
  if (!have_pets_mini()) THAW_SKIP("pets-mini not found at " << kPetsMini << ": decode test skipped");
  const std::string golden = golden_file();
  const H5File file = H5File::open(golden);
  for (const std::string& name : split_patterns(file.attr_string("images"))) {
    const std::string rel = file.attr_string("file", name);
    if (rel.empty()) continue;
    const Image got = decode_image_file((kPetsMini / rel).string());
    // stb_image: another IDCT and chroma upsampling (measured on pets-mini: max 3, mean 0.01).
    if (libjpeg_turbo()) {
      check_image_close(got, image_from(file.read(name + "/src")), "decode " + rel, 0, 0);
    } else {
      check_image_close(got, image_from(file.read(name + "/src")), "decode " + rel, 8, 0.05);
    }
  }
}

TEST_CASE("decode: grayscale and progressive JPEG, palette and gray+alpha PNG, BMP decode to RGB like PIL") {
  const std::string golden = golden_file();
  const H5File file = H5File::open(golden);
  for (const std::string& name : split_patterns(file.attr_string("names", "formats"))) {
    const std::string path = file.attr_string("path", "formats/" + name);
    const ImageFormat format = sniff_image_format(path);
    const Image got = decode_image_file(path);
    const Image ref = image_from(file.read("formats/" + name + "/src"));
    if (format == ImageFormat::Jpeg && libjpeg_turbo()) {
      check_image_close(got, ref, "decode " + name, 0, 0);  // Pillow's decoder and settings: equal
    } else if (format == ImageFormat::Jpeg) {
      // stb_image: IDCTs differ (measured: gray max 1; progressive, on sharp synthetic edges, max 2, mean
      // 0.08).
      check_image_close(got, ref, "decode " + name, 8, 0.25);
    } else {
      check_image_close(got, ref, "decode " + name, 0, 0);  // lossless: exact
    }
    const std::string extension = name.substr(name.find('.') + 1);
    CHECK(std::string(image_format_name(format)) == (extension == "jpg" ? "jpeg" : extension));
  }
}

TEST_CASE("decode: every pets-mini image decodes") {
  if (!have_pets_mini()) THAW_SKIP("pets-mini not found at " << kPetsMini << ": decode test skipped");
  int64_t count = 0;
  for (const auto& entry : fs::directory_iterator(kPetsMini / "images")) {
    INFO(entry.path());
    const Image image = decode_image_file(entry.path().string());
    CHECK(image.height > 0);
    CHECK(image.pixels.size() == size_t(image.height * image.width * 3));
    ++count;
  }
  CHECK(count == 940);
}

TEST_CASE("decode: bad files are errors that name the file and the reason") {
  const fs::path dir = temp_dir();
  const auto error_of = [](const fs::path& path) -> std::string {
    try {
      decode_image_file(path.string());
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  const fs::path missing = dir / "missing.jpg";
  CHECK_THAT(error_of(missing), ContainsSubstring(missing.string()) && ContainsSubstring("No such file"));

  const fs::path empty = dir / "empty.jpg";
  write_bytes(empty, "");
  CHECK_THAT(error_of(empty), ContainsSubstring(empty.string()) && ContainsSubstring("empty"));
  CHECK(sniff_image_format(empty.string()) == ImageFormat::Unknown);

  const fs::path text = dir / "notes.jpg";
  write_bytes(text, "this is a text file, not an image\n");
  CHECK_THAT(error_of(text),
             ContainsSubstring(text.string()) && ContainsSubstring("not a JPEG, PNG, GIF or BMP"));

  const fs::path bad_png = dir / "bad.png";
  write_bytes(bad_png, std::string("\x89PNG\r\n\x1a\n", 8) + "garbage");
  CHECK_THAT(error_of(bad_png), ContainsSubstring(bad_png.string()) && ContainsSubstring("png"));

  // Cut JPEGs (stb 2.27 itself fails on them with "expected marker", which its user message turns into
  // "Corrupt JPEG"; thaw says "truncated"): a real baseline JPEG, and the generator's progressive one.
  std::vector<fs::path> jpegs;
  if (have_pets_mini()) {
    jpegs.push_back(kPetsMini / "images" / "Abyssinian_1.jpg");
  } else {
    WARN("pets-mini not found at " << kPetsMini << ": truncated-JPEG cases on the generated JPEG only");
  }
  jpegs.push_back(H5File::open(golden_file()).attr_string("path", "formats/progressive.jpg"));
  for (const fs::path& source : jpegs) {
    const std::string jpeg = read_bytes(source);
    const int64_t width = decode_image_file(source.string()).width;
    for (const double keep : {0.5, 0.9, 0.999}) {
      const fs::path cut = dir / "cut.jpg";
      write_bytes(cut, jpeg.substr(0, size_t(double(jpeg.size()) * keep)));
      INFO(source << " cut to " << keep << " of its bytes");
      CHECK_THAT(error_of(cut), ContainsSubstring(cut.string()) && ContainsSubstring("truncated"));
    }
    const fs::path no_end = dir / "no_end.jpg";
    write_bytes(no_end, jpeg.substr(0, jpeg.size() - 2));
    CHECK_THAT(error_of(no_end), ContainsSubstring(no_end.string()) && ContainsSubstring("truncated"));
    const fs::path header_only = dir / "header_only.jpg";
    write_bytes(header_only, jpeg.substr(0, 300));
    CHECK_THAT(error_of(header_only),
               ContainsSubstring(header_only.string()) && ContainsSubstring("truncated"));
    // The complete file, with bytes after the end-of-image marker (some cameras append some), still loads.
    const fs::path trailing = dir / "trailing.jpg";
    write_bytes(trailing, jpeg + std::string(100, '\0'));
    CHECK(decode_image_file(trailing.string()).width == width);
  }
  fs::remove_all(dir);
}

// ---- Transforms against torchvision ----------------------------------------------------------------------

TEST_CASE("transforms: each transform matches torchvision 0.14 on PIL images") {
  if (!have_pets_mini())
    WARN("pets-mini not found at " << kPetsMini << ": comparing on the synthetic image only");
  const std::string golden = golden_file();
  const H5File file = H5File::open(golden);
  const std::vector<double> factors = file.read("factors").to_vector<double>();
  const std::vector<double> angles = file.read("angles").to_vector<double>();
  for (const std::string& name : split_patterns(file.attr_string("images"))) {
    const Image src = image_from(file.read(name + "/src"));
    const std::string at = name + " (" + std::to_string(src.width) + "x" + std::to_string(src.height) + ") ";
    // Resampling follows PIL's fixed-point code step by step: exact.
    const Image resized = resize_shorter_side(src, 256);
    check_image_close(resized, image_from(file.read(name + "/resize")), at + "resize 256", 0, 0);
    const Image cropped = center_crop(resized, 224);
    check_image_close(cropped, image_from(file.read(name + "/center_crop")), at + "center_crop 224", 0, 0);
    const std::vector<int64_t> boxes = file.read(name + "/boxes").to_vector<int64_t>();
    for (size_t i = 0; i < boxes.size() / 4; ++i) {
      const Image got =
          resized_crop(src, boxes[4 * i], boxes[4 * i + 1], boxes[4 * i + 2], boxes[4 * i + 3], 224);
      check_image_close(got, image_from(file.read(name + "/resized_crop_" + std::to_string(i))),
                        at + "resized_crop box " + std::to_string(i), 0, 0);
    }
    check_image_close(hflip(cropped), image_from(file.read(name + "/hflip")), at + "hflip", 0, 0);
    for (size_t i = 0; i < angles.size(); ++i) {
      const std::string a = std::to_string(angles[i]), k = std::to_string(i);
      check_image_close(rotate(cropped, angles[i]), image_from(file.read(name + "/rotate_" + k)),
                        at + "rotate (224x224) " + a, 0, 0);
      check_image_close(rotate(src, angles[i]), image_from(file.read(name + "/rotate_src_" + k)),
                        at + "rotate (source) " + a, 0, 0);
    }
    for (size_t i = 0; i < factors.size(); ++i) {
      const std::string f = std::to_string(factors[i]), k = std::to_string(i);
      check_image_close(adjust_brightness(cropped, factors[i]),
                        image_from(file.read(name + "/brightness_" + k)), at + "brightness " + f, 0, 0);
      check_image_close(adjust_contrast(cropped, factors[i]), image_from(file.read(name + "/contrast_" + k)),
                        at + "contrast " + f, 0, 0);
      check_image_close(adjust_saturation(cropped, factors[i]),
                        image_from(file.read(name + "/saturation_" + k)), at + "saturation " + f, 0, 0);
    }
  }
}

TEST_CASE("transforms: the eval and train pipelines match torchvision's normalized CHW floats") {
  if (!have_pets_mini())
    WARN("pets-mini not found at " << kPetsMini << ": comparing on the synthetic image only");
  const std::string golden = golden_file();
  const H5File file = H5File::open(golden);
  const std::vector<int64_t> order = file.read("train_order").to_vector<int64_t>();
  const std::vector<double> train_factors = file.read("train_factors").to_vector<double>();
  for (const std::string& name : split_patterns(file.attr_string("images"))) {
    INFO(name);
    const Image src = image_from(file.read(name + "/src"));
    TransformConfig eval;
    Tensor got = Tensor::empty({3, 224, 224});
    Generator gen(1);
    transform_to_chw(src, eval, draw_sample_params(eval, src.height, src.width, gen), got.data<float>());
    // The same uint8 values and the same float32 arithmetic as torch: bit-identical.
    REQUIRE_ALLCLOSE(got, file.read(name + "/eval"), 0, 0);

    TransformConfig train;
    train.augment = true;
    SampleParams p;
    const std::vector<int64_t> box = file.read(name + "/boxes").to_vector<int64_t>();
    p.crop_top = box[0], p.crop_left = box[1], p.crop_height = box[2], p.crop_width = box[3];
    p.flip = file.attr_int("train_flip") != 0;
    p.angle = file.attr_double("train_angle");
    for (size_t i = 0; i < 3; ++i)
      p.jitter_order[i] = int(order[i]);
    p.brightness = train_factors[0], p.contrast = train_factors[1], p.saturation = train_factors[2];
    transform_to_chw(src, train, p, got.data<float>());
    REQUIRE_ALLCLOSE(got, file.read(name + "/train"), 0, 0);

    // From the file through thaw's own decoder: the JPEG decoders differ by a little (see the decode test).
    const std::string rel = file.attr_string("file", name);
    if (!rel.empty()) {
      const Image decoded = decode_image_file((kPetsMini / rel).string());
      transform_to_chw(decoded, eval, SampleParams{}, got.data<float>());
      // libjpeg-turbo: the same pixels as PIL's, so bit-identical. stb_image: measured at most 2 uint8 units
      // (0.034 after Normalize); allowed 4 units.
      const double atol = libjpeg_turbo() ? 0 : 4.0 / 255 / 0.224;
      const auto report = test::allclose(got, file.read(name + "/eval"), 0, atol, "eval from file");
      INFO(report.message);
      CHECK(report.ok);
    }
  }
}

// ---- Properties that need no reference -------------------------------------------------------------------

TEST_CASE("transforms: output sizes, center-crop rounding and identities") {
  const Image portrait = gradient(500, 375);
  const Image r = resize_shorter_side(portrait, 256);
  CHECK(r.width == 256);
  CHECK(r.height == 341);  // int(256 * 500 / 375) = int(341.33)
  const Image landscape = gradient(200, 601);
  CHECK(resize_shorter_side(landscape, 256).width == 769);  // int(256 * 601 / 200) = int(769.28): enlarging
  CHECK(resize_shorter_side(landscape, 200).pixels == landscape.pixels);  // same size: a copy

  // torchvision: top = int(round((H - size) / 2.0)), Python's round ties to even: (7 - 4) / 2 = 1.5 -> 2,
  // (9 - 4) / 2 = 2.5 -> 2.
  const Image g7 = gradient(7, 9);
  const Image c = center_crop(g7, 4);
  CHECK(c.pixels == crop(g7, 2, 2, 4, 4).pixels);
  // Larger than the image: zero padding, the image at torchvision's offset ((size - H) // 2).
  const Image padded = center_crop(gradient(3, 3), 6);
  CHECK(padded.pixels[0] == 0);
  CHECK(padded.pixels[size_t((1 * 6 + 1) * 3)] == gradient(3, 3).pixels[0]);

  CHECK(hflip(hflip(portrait)).pixels == portrait.pixels);
  CHECK(hflip(gradient(1, 2)).pixels == std::vector<uint8_t>{255, 0, 7, 0, 0, 0});
  CHECK(rotate(portrait, 0).pixels == portrait.pixels);
  CHECK(rotate(portrait, 360).pixels == portrait.pixels);
  const Image square = gradient(6, 6);
  CHECK(rotate(rotate(square, 180), 180).pixels == square.pixels);
  CHECK(adjust_brightness(portrait, 1.0).pixels == portrait.pixels);
  CHECK(adjust_contrast(portrait, 1.0).pixels == portrait.pixels);
  CHECK(adjust_saturation(portrait, 1.0).pixels == portrait.pixels);
  CHECK(adjust_brightness(portrait, 0.0).pixels == std::vector<uint8_t>(portrait.pixels.size(), 0));
  CHECK_THROWS_AS(resize_shorter_side(Image{}, 256), Error);
}

TEST_CASE("transforms: the eval path (only the kept window is resized) equals resize then center crop") {
  TransformConfig eval;
  std::vector<float> got(3 * 224 * 224), ref(3 * 224 * 224);
  for (const auto& [h, w] : std::vector<std::pair<int64_t, int64_t>>{
           {375, 500}, {500, 333}, {256, 256}, {255, 300}, {1, 1}, {3, 1000}, {224, 700}, {2001, 1999}}) {
    INFO(h << "x" << w);
    const Image image = gradient(h, w);
    transform_to_chw(image, eval, SampleParams{}, got.data());
    to_normalized_chw(center_crop(resize_shorter_side(image, 256), 224), ref.data());
    CHECK(got == ref);
  }
  // PIL resizes horizontally, rounds to 8 bits, then vertically: the two one-pass paths compose to the
  // two-pass one.
  const Image g = gradient(40, 30);
  CHECK(resize_bilinear(resize_bilinear(g, 40, 71), 17, 71).pixels == resize_bilinear(g, 17, 71).pixels);
  CHECK(resize_bilinear(resize_bilinear(g, 40, 11), 93, 11).pixels == resize_bilinear(g, 93, 11).pixels);
}

TEST_CASE("transforms: sample parameters come from the Generator only, and stay in torchvision's bounds") {
  TransformConfig config;
  config.augment = true;
  const Image image = gradient(333, 517);
  const int64_t n = 3 * config.crop_size * config.crop_size;
  std::vector<float> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));

  Generator g1(42, 7), g2(42, 7), g3(43, 7);
  const SampleParams p1 = draw_sample_params(config, image.height, image.width, g1);
  const SampleParams p2 = draw_sample_params(config, image.height, image.width, g2);
  const SampleParams p3 = draw_sample_params(config, image.height, image.width, g3);
  CHECK(p1.crop_top == p2.crop_top);
  CHECK(p1.crop_width == p2.crop_width);
  CHECK(p1.angle == p2.angle);
  CHECK(p1.brightness == p2.brightness);
  CHECK(p1.jitter_order == p2.jitter_order);
  transform_to_chw(image, config, p1, a.data());
  transform_to_chw(image, config, p2, b.data());
  CHECK(a == b);
  CHECK(p3.angle != p1.angle);
  transform_to_chw(image, config, p3, b.data());
  CHECK(a != b);

  // Eval draws nothing.
  Generator untouched(5);
  draw_sample_params(TransformConfig{}, 10, 10, untouched);
  CHECK(untouched.offset() == 0);

  // Bounds over many draws and shapes (an extreme aspect ratio reaches the center-crop fallback).
  int64_t fallbacks = 0, flips = 0, draws = 0;
  std::set<std::array<int, 3>> orders;
  for (const auto& [h, w] :
       std::vector<std::pair<int64_t, int64_t>>{{375, 500}, {500, 333}, {7, 300}, {50, 51}}) {
    for (uint64_t seed = 0; seed < 500; ++seed) {
      Generator gen(seed, uint64_t(h));
      const SampleParams p = draw_sample_params(config, h, w, gen);
      INFO(h << "x" << w << " seed " << seed << ": box " << p.crop_top << "," << p.crop_left << " "
             << p.crop_height << "x" << p.crop_width);
      REQUIRE(p.crop_top >= 0);
      REQUIRE(p.crop_left >= 0);
      REQUIRE(p.crop_height >= 1);
      REQUIRE(p.crop_width >= 1);
      REQUIRE(p.crop_top + p.crop_height <= h);
      REQUIRE(p.crop_left + p.crop_width <= w);
      const double area = double(p.crop_height * p.crop_width) / double(h * w);
      const double ratio = double(p.crop_width) / double(p.crop_height);
      // The sampled box before rounding has scale in [0.08, 1] and ratio in [3/4, 4/3]; rounding each side
      // moves them by at most half a pixel per side.
      const double slack_w = 0.5 / double(p.crop_width), slack_h = 0.5 / double(p.crop_height);
      const bool in_bounds = area >= 0.08 * (1 - slack_w) * (1 - slack_h) && area <= 1.0 &&
                             ratio >= 0.75 * (1 - slack_w - slack_h) &&
                             ratio <= 4.0 / 3.0 * (1 + slack_w + slack_h);
      const bool fallback = (p.crop_height == h || p.crop_width == w) &&
                            p.crop_top == (h - p.crop_height) / 2 && p.crop_left == (w - p.crop_width) / 2;
      CHECK((in_bounds || fallback));
      fallbacks += !in_bounds;
      CHECK(std::abs(p.angle) <= config.rotation_degrees);
      CHECK((p.brightness >= 0.8 && p.brightness <= 1.2));
      CHECK((p.contrast >= 0.8 && p.contrast <= 1.2));
      CHECK((p.saturation >= 0.8 && p.saturation <= 1.2));
      flips += p.flip;
      orders.insert(p.jitter_order);
      ++draws;
    }
  }
  CHECK(fallbacks >= 400);  // the 7x300 image can (almost) never fit the ratio bounds
  CHECK(std::abs(double(flips) / double(draws) - 0.5) < 0.05);
  CHECK(orders.size() == 6);  // every order of the three jitters occurs

  // hflip = false: the flip is never set, and the other draws do not move.
  TransformConfig no_flip = config;
  no_flip.hflip = false;
  Generator g4(42, 7);
  const SampleParams p4 = draw_sample_params(no_flip, image.height, image.width, g4);
  CHECK(!p4.flip);
  CHECK(p4.angle == p1.angle);
}

TEST_CASE("transforms: speed of the eval and train pipelines (224, one thread)", "[.][bench]") {
  const bool real = have_pets_mini();
  const Image image =
      real ? decode_image_file((kPetsMini / "images" / "Abyssinian_10.jpg").string()) : gradient(375, 500);
  std::vector<float> out(3 * 224 * 224);
  const auto time_ms = [&](const TransformConfig& config) {
    const int reps = 200;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) {
      Generator gen(static_cast<uint64_t>(i));
      transform_to_chw(image, config, draw_sample_params(config, image.height, image.width, gen), out.data());
    }
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / reps;
  };
  TransformConfig eval, train;
  train.augment = true;
  const double eval_ms = time_ms(eval), train_ms = time_ms(train);
  const std::string path = real ? (kPetsMini / "images" / "Abyssinian_10.jpg").string() : "";
  double decode_ms = 0;
  if (real) {
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 50; ++i)
      decode_image_file(path);
    decode_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / 50;
  }
  WARN("image " << image.width << "x" << image.height << ": decode " << decode_ms << " ms, eval transform "
                << eval_ms << " ms, train transform " << train_ms << " ms per image");
}
