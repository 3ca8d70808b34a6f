// Generated pattern datasets (synthetic.h). Rendering is plain geometry: for each pixel (2x2 samples, for
// anti-aliased edges) the sample point is moved into the shape's frame (centred, rotated, divided by the
// radius), tested against the shape, and coloured by the texture; then Gaussian pixel noise.
#include "data/synthetic.h"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#include <stb/stb_image_write.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "core/rng.h"

namespace thaw::data {

namespace {

constexpr const char* kShapes[] = {"circle", "square",  "triangle", "diamond", "cross",
                                   "ring",   "hexagon", "halfdisc", "ellipse", "frame"};
constexpr const char* kTextures[] = {"solid",        "hstripes", "vstripes", "diagonal",
                                     "antidiagonal", "checker",  "dots",     "grid"};
constexpr int kNumShapes = 10, kNumTextures = 8, kClassesPerSet = 37, kCatClasses = 12;

// Is (u, v), in the shape's frame (radius 1, v pointing down), inside the shape?
bool inside_shape(int shape, double u, double v) {
  const double au = std::abs(u), av = std::abs(v), rho = std::sqrt(u * u + v * v);
  switch (shape) {
    case 0:
      return rho < 1.0;  // circle
    case 1:
      return std::max(au, av) < 0.8;  // square
    case 2:
      return v < 0.7 && v > -0.9 && au < (v + 0.9) * 0.6;  // triangle, apex up
    case 3:
      return au + av < 1.0;  // diamond
    case 4:
      return (au < 0.32 && av < 1.0) || (av < 0.32 && au < 1.0);  // cross
    case 5:
      return rho < 1.0 && rho > 0.55;  // ring
    case 6:
      return av < 0.866 && 1.732 * au + av < 1.732;  // hexagon, flat top
    case 7:
      return rho < 1.0 && v < 0.15;  // half disc, flat side down
    case 8:
      return u * u + 4.0 * v * v < 1.0;  // ellipse, 2:1
    default:
      return std::max(au, av) < 0.85 && std::max(au, av) > 0.5;  // square frame
  }
}

double frac(double x) {
  return x - std::floor(x);
}

// Texture value (0 or 1) at (a, b), pixel units in the shape's rotated frame; p: period; phase in [0, 1).
bool texture_on(int texture, double a, double b, double p, double phase) {
  switch (texture) {
    case 0:
      return true;  // solid
    case 1:
      return frac(b / p + phase) < 0.5;  // horizontal stripes
    case 2:
      return frac(a / p + phase) < 0.5;  // vertical stripes
    case 3:
      return frac((a + b) / (p * 1.4142) + phase) < 0.5;  // diagonal
    case 4:
      return frac((a - b) / (p * 1.4142) + phase) < 0.5;  // anti-diagonal
    case 5:
      return (int64_t(std::floor(a / p + phase)) + int64_t(std::floor(b / p + phase))) % 2 == 0;
    case 6: {  // dots on a square lattice
      const double q = 1.4 * p, da = frac(a / q + phase) - 0.5, db = frac(b / q + phase) - 0.5;
      return da * da + db * db < 0.09;
    }
    default:
      return frac(a / p + phase) < 0.3 || frac(b / p + phase) < 0.3;  // grid lines
  }
}

using Rgb = std::array<double, 3>;

double luma(const Rgb& c) {
  return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
}

Rgb random_colour(Generator& gen) {
  return {gen.next_uniform(0, 255), gen.next_uniform(0, 255), gen.next_uniform(0, 255)};
}

// A colour whose luma differs from every colour in `others` by at least `contrast`.
Rgb contrasting_colour(Generator& gen, const std::vector<Rgb>& others, double contrast) {
  for (;;) {
    const Rgb c = random_colour(gen);
    if (std::all_of(others.begin(), others.end(),
                    [&](const Rgb& o) { return std::abs(luma(c) - luma(o)) >= contrast; }))
      return c;
  }
}

// stb's writer callback: context is the std::vector<uint8_t> being filled.
void append_bytes(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<uint8_t>*>(context);
  const auto* bytes = static_cast<const uint8_t*>(data);
  out->insert(out->end(), bytes, bytes + size);
}

void write_file(const std::filesystem::path& path, const void* data, size_t size) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(static_cast<const char*>(data), std::streamsize(size));
  out.close();
  THAW_CHECK(out.good(), "cannot write '{}'", path.string());
}

}  // namespace

std::vector<PatternClass> pattern_classes(PatternSet set) {
  // The (shape, texture) grid coloured like a chessboard: source takes the even squares, target the odd
  // ones, 40 each, of which the first 37 in shape-major order are used.
  std::vector<PatternClass> classes;
  const int parity = set == PatternSet::Source ? 0 : 1;
  for (int shape = 0; shape < kNumShapes; ++shape)
    for (int texture = 0; texture < kNumTextures; ++texture) {
      if ((shape + texture) % 2 != parity || int(classes.size()) == kClassesPerSet) continue;
      std::string name = fmt::format("{}_{}", kTextures[texture], kShapes[shape]);
      if (int(classes.size()) < kCatClasses) name[0] = char(std::toupper(name[0]));
      classes.push_back({name, shape, texture});
    }
  return classes;
}

Image render_pattern(const PatternClass& pattern, int64_t size, uint64_t seed) {
  THAW_CHECK(size >= 8, "render_pattern: image size {} is below 8", size);
  Generator gen(seed);
  const double s = double(size);
  const double cx = s * gen.next_uniform(0.38, 0.62), cy = s * gen.next_uniform(0.38, 0.62);
  const double radius = s * gen.next_uniform(0.30, 0.42);
  const double angle = gen.next_uniform(-12.0, 12.0) * M_PI / 180.0;
  const double cos_a = std::cos(angle), sin_a = std::sin(angle);
  const double period = s / 32.0 * gen.next_uniform(3.2, 4.8), phase = gen.next_uniform();
  const Rgb background = random_colour(gen);
  const Rgb ink = contrasting_colour(gen, {background}, 70.0);
  const Rgb paper = contrasting_colour(gen, {background, ink}, 45.0);

  Image image{size, size, std::vector<uint8_t>(size_t(size * size * 3))};
  for (int64_t y = 0; y < size; ++y)
    for (int64_t x = 0; x < size; ++x) {
      Rgb sum{0, 0, 0};
      for (int sub = 0; sub < 4; ++sub) {
        const double px = double(x) + 0.25 + 0.5 * (sub % 2) - cx,
                     py = double(y) + 0.25 + 0.5 * (sub / 2) - cy;
        const double a = cos_a * px + sin_a * py, b = -sin_a * px + cos_a * py;  // rotated frame, pixels
        const Rgb& c = !inside_shape(pattern.shape, a / radius, b / radius) ? background
                       : texture_on(pattern.texture, a, b, period, phase)   ? ink
                                                                            : paper;
        for (int k = 0; k < 3; ++k)
          sum[size_t(k)] += c[size_t(k)] / 4;
      }
      for (int k = 0; k < 3; ++k) {
        const double v = sum[size_t(k)] + 6.0 * gen.next_normal();
        image.pixels[size_t((y * size + x) * 3 + k)] = uint8_t(std::clamp(std::lround(v), 0L, 255L));
      }
    }
  return image;
}

void write_synthetic_dataset(const std::string& root, const SyntheticSpec& spec) {
  namespace fs = std::filesystem;
  THAW_CHECK(spec.trainval_per_class >= 1 && spec.test_per_class >= 1,
             "synthetic dataset: need at least one trainval and one test image per class (got {} and {})",
             spec.trainval_per_class, spec.test_per_class);
  std::error_code ec;
  fs::create_directories(fs::path(root) / "images", ec);
  fs::create_directories(fs::path(root) / "annotations", ec);
  THAW_CHECK(!ec, "cannot create the dataset directories under '{}': {}", root, ec.message());

  const std::vector<PatternClass> classes = pattern_classes(spec.set);
  const uint64_t set_salt = spec.set == PatternSet::Source ? 0 : 1;
  std::string list = "#Image CLASS-ID SPECIES BREED-ID (generated by thaw: data/synthetic.h)\n";
  std::string trainval, test;
  std::vector<uint8_t> jpeg;
  for (size_t k = 0; k < classes.size(); ++k) {
    const bool cat = int(k) < kCatClasses;
    const int64_t breed_id = cat ? int64_t(k) + 1 : int64_t(k) - kCatClasses + 1;
    for (int64_t n = 1; n <= spec.trainval_per_class + spec.test_per_class; ++n) {
      const std::string name = fmt::format("{}_{}", classes[k].name, n);
      const uint64_t seed = (spec.seed * 2 + set_salt) * 1000003ULL + k * 100003ULL + uint64_t(n);
      const Image image = render_pattern(classes[k], spec.image_size, seed);
      jpeg.clear();
      const int ok = stbi_write_jpg_to_func(append_bytes, &jpeg, int(image.width), int(image.height), 3,
                                            image.pixels.data(), 95);
      THAW_CHECK(ok, "cannot encode the JPEG for '{}'", name);
      write_file(fs::path(root) / "images" / (name + ".jpg"), jpeg.data(), jpeg.size());
      const std::string line = fmt::format("{} {} {} {}\n", name, k + 1, cat ? 1 : 2, breed_id);
      list += line;
      (n <= spec.trainval_per_class ? trainval : test) += line;
    }
  }
  write_file(fs::path(root) / "annotations" / "list.txt", list.data(), list.size());
  write_file(fs::path(root) / "annotations" / "trainval.txt", trainval.data(), trainval.size());
  write_file(fs::path(root) / "annotations" / "test.txt", test.data(), test.size());
}

}  // namespace thaw::data
