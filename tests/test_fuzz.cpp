// Mutated inputs for the four readers a user's files reach: the annotation parser (data/pets.h), the TOML
// config reader (train/config.h), the image decoders (data/image.h: libjpeg-turbo, stb_image) and the weights
// loader (models/weights.h over core/hdf5_file.h). Each case starts from valid files, makes a few hundred to
// a thousand and more mutants of them (bit flips, truncations, overwritten runs of random bytes, inserted
// and deleted bytes, all-random files), seeded so that every run feeds the same inputs, and requires of each
// one: no crash, no hang (ctest's timeout), and either success or a thaw::Error that names the file. Run
// under scripts/sanitize.sh (ASan + UBSan) too. The totals are printed, and summed in docs/testing.md.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/hdf5_file.h"
#include "core/rng.h"
#include "data/image.h"
#include "data/pets.h"
#include "models/resnet.h"
#include "models/weights.h"
#include "tests/support/catch.h"
#include "tests/support/scratch.h"
#include "train/config.h"

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#endif
#include <stb/stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

namespace fs = std::filesystem;
using namespace thaw;

namespace {

using Bytes = std::string;

// Seeded mutations of a seed input. Kind k of mutant i is i % 6, so every kind is fed in equal numbers.
class Mutator {
 public:
  explicit Mutator(uint64_t seed) : rng_(seed) {}

  Bytes mutate(const Bytes& seed, int64_t i) {
    Bytes b = seed;
    switch (i % 6) {
      case 0:  // flip 1..8 bits
        for (int64_t n = pick(1, 8); n > 0 && !b.empty(); --n)
          b[pos(b)] = char(uint8_t(b[pos(b)]) ^ uint8_t(1u << pick(0, 7)));
        break;
      case 1:  // truncate
        b.resize(size_t(pick(0, int64_t(b.size()))));
        break;
      case 2:  // overwrite a run of 1..32 bytes with random ones
        if (!b.empty()) {
          const size_t at = pos(b), n = std::min(b.size() - at, size_t(pick(1, 32)));
          for (size_t k = 0; k < n; ++k)
            b[at + k] = char(pick(0, 255));
        }
        break;
      case 3:  // insert 1..16 random bytes
        b.insert(b.empty() ? 0 : pos(b), random_bytes(pick(1, 16)));
        break;
      case 4:  // delete a run of 1..64 bytes
        if (!b.empty()) {
          const size_t at = pos(b);
          b.erase(at, std::min(b.size() - at, size_t(pick(1, 64))));
        }
        break;
      default:  // bit flips and a truncation together, or (every 25th mutant) random bytes only
        if (i % 25 == 5) return random_bytes(pick(0, 2 * int64_t(seed.size())));
        for (int64_t n = pick(1, 4); n > 0 && !b.empty(); --n)
          b[pos(b)] = char(uint8_t(b[pos(b)]) ^ uint8_t(1u << pick(0, 7)));
        b.resize(size_t(pick(int64_t(b.size()) / 2, int64_t(b.size()))));
        break;
    }
    return b;
  }

 private:
  int64_t pick(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng_); }
  size_t pos(const Bytes& b) { return size_t(pick(0, int64_t(b.size()) - 1)); }
  Bytes random_bytes(int64_t n) {
    Bytes out(size_t(n), '\0');
    for (char& c : out)
      c = char(pick(0, 255));
    return out;
  }
  std::mt19937_64 rng_;
};

void write_file(const fs::path& path, const Bytes& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

Bytes read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

struct Tally {
  int64_t inputs = 0, accepted = 0, rejected = 0;
};

// Feeds `count` mutants of each seed to `read` (which gets the mutant's bytes and the path it was written
// to); a rejection must be a thaw::Error for which `named` holds. Returns the tally; prints it.
Tally fuzz(const std::string& what, const std::vector<Bytes>& seeds, int64_t count, uint64_t rng_seed,
           const fs::path& path, const std::function<void(const Bytes&, const std::string&)>& read,
           const std::function<bool(const std::string& message)>& named) {
  Mutator mutator(rng_seed);
  Tally t;
  for (size_t s = 0; s < seeds.size(); ++s) {
    for (int64_t i = 0; i < count; ++i) {
      const Bytes input = mutator.mutate(seeds[s], i);
      write_file(path, input);
      ++t.inputs;
      try {
        read(input, path.string());
        ++t.accepted;
      } catch (const Error& e) {
        ++t.rejected;
        if (!named(e.what())) {
          INFO(what << ": seed " << s << ", mutant " << i << " (" << input.size() << " bytes)");
          FAIL_CHECK("the error does not name the file: " << e.what());
        }
      } catch (const std::exception& e) {
        INFO(what << ": seed " << s << ", mutant " << i << " (" << input.size() << " bytes)");
        FAIL_CHECK("not a thaw::Error: " << e.what());
      }
    }
  }
  std::cout << "fuzz " << what << ": " << t.inputs << " inputs, " << t.accepted << " accepted, " << t.rejected
            << " rejected with a named error" << std::endl;
  return t;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("fuzz: the annotation parser rejects mutated files with file:line, never crashes") {
  test::TempDir tmp;
  const std::vector<Bytes> seeds = {
      "#Image CLASS-ID SPECIES BREED-ID\n#comment\nAbyssinian_1 1 1 1\namerican_bulldog_10 2 2 1\n"
      "Abyssinian_2 1 1 1\n\nbasset_hound_3 4 2 3\n",
      "\xEF\xBB\xBF"
      "Bengal_1 6 1 2\r\nBengal_2 6 1 2\r\nyorkshire_terrier_9 37 2 25\r\n",
  };
  const Tally t = fuzz(
      "annotations", seeds, 750, 11, tmp.path / "trainval.txt",
      [](const Bytes&, const std::string& path) {
        std::vector<std::string> names;
        const auto samples = data::read_split_file(path, "", &names);
        REQUIRE(names.size() == size_t(data::kNumBreeds));
        for (const auto& s : samples)
          REQUIRE((s.class_id >= 0 && s.class_id < data::kNumBreeds && (s.species == 0 || s.species == 1)));
      },
      [&](const std::string& m) { return contains(m, (tmp.path / "trainval.txt").string()); });
  CHECK(t.inputs == 1500);
  CHECK(t.rejected > 0);
  CHECK(t.accepted > 0);
}

TEST_CASE("fuzz: the TOML config reader rejects mutated configs naming the file or the key, never crashes") {
  test::TempDir tmp;
  std::vector<Bytes> seeds;
  for (const char* name : {"breeds_l3.toml", "gradual_layerwise_lr.toml", "imbalanced_l3_weighted_loss.toml"})
    seeds.push_back(read_file(fs::path(THAW_SOURCE_DIR) / "experiments" / name));
  seeds.push_back(train::train_config_toml(
      train::load_train_config("", {{"name", "n"}, {"data", "d"}, {"weights", "none"}})));
  for (const Bytes& seed : seeds)
    REQUIRE(!seed.empty());
  const fs::path path = tmp.path / "exp.toml";
  // A rejection names the file ("exp.toml:3: ..."), or a key the resolved config lacks ("data: not set").
  std::vector<std::string> keys;
  for (std::string line; const auto& c : {train::train_config_keys_markdown()}) {
    std::istringstream in(c);
    while (std::getline(in, line))
      if (line.rfind("| `", 0) == 0) keys.push_back(line.substr(3, line.find('`', 3) - 3));
  }
  REQUIRE(keys.size() > 40);
  const Tally t = fuzz(
      "config", seeds, 375, 12, path,
      [](const Bytes&, const std::string& p) {
        train::load_train_config(p, {{"data", "d"}, {"weights", "none"}});
      },
      [&](const std::string& m) {
        if (contains(m, path.string())) return true;
        return std::any_of(keys.begin(), keys.end(),
                           [&](const std::string& k) { return m.rfind(k + ": ", 0) == 0; });
      });
  CHECK(t.inputs == 1500);
  CHECK(t.rejected > 0);
  CHECK(t.accepted > 0);
}

namespace {

void append_bytes(void* context, void* data, int size) {
  static_cast<Bytes*>(context)->append(static_cast<const char*>(data), size_t(size));
}

// A 16x12 image with a gradient and a few edges, encoded as JPEG, PNG and BMP (stb_image_write), and a
// small GIF.
std::vector<Bytes> image_seeds() {
  const int w = 16, h = 12;
  std::vector<uint8_t> rgb(size_t(w * h * 3));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = rgb.data() + (y * w + x) * 3;
      p[0] = uint8_t(x * 16), p[1] = uint8_t(y * 20), p[2] = uint8_t((x ^ y) & 1 ? 255 : 0);
    }
  Bytes jpeg, png, bmp;
  REQUIRE(stbi_write_jpg_to_func(append_bytes, &jpeg, w, h, 3, rgb.data(), 90));
  REQUIRE(stbi_write_png_to_func(append_bytes, &png, w, h, 3, rgb.data(), w * 3));
  REQUIRE(stbi_write_bmp_to_func(append_bytes, &bmp, w, h, 3, rgb.data()));
  // A 4x3 GIF87a with a palette of 4 (red, green, blue, white), as Pillow 9.4 writes it.
  const Bytes gif(
      "\x47\x49\x46\x38\x37\x61\x04\x00\x03\x00\x81\x00\x00\xff\x00\x00\x00\xff\x00\x00\x00\xff\xff\xff"
      "\xff\x2c\x00\x00\x00\x00\x04\x00\x03\x00\x00\x08\x0e\x00\x01\x04\x10\x30\x60\x80\x80\x00\x02\x07"
      "\x0a\x08\x08\x00\x3b",
      53);
  return {jpeg, png, bmp, gif};
}

}  // namespace

TEST_CASE("fuzz: the image decoders reject mutated JPEG, PNG, BMP and GIF files naming them, never crash") {
  test::TempDir tmp;
  const std::vector<Bytes> seeds = image_seeds();
  for (const Bytes& seed : seeds) {  // every seed decodes as it is
    const data::Image image =
        data::decode_image_memory(reinterpret_cast<const uint8_t*>(seed.data()), seed.size(), "seed");
    CHECK(image.pixels.size() == size_t(image.height * image.width * 3));
  }
  const fs::path path = tmp.path / "image.jpg";
  // Mostly from memory (decode_image_memory); one mutant in 8 through the file (decode_image_file).
  int64_t n = 0;
  const Tally t = fuzz(
      "images", seeds, 400, 13, path,
      [&](const Bytes& bytes, const std::string& p) {
        const data::Image image =
            ++n % 8 == 0
                ? data::decode_image_file(p)
                : data::decode_image_memory(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), p);
        REQUIRE(image.pixels.size() == size_t(image.height * image.width * 3));
        REQUIRE(image.height * image.width > 0);
      },
      [&](const std::string& m) { return contains(m, path.string()); });
  CHECK(t.inputs == 1600);
  CHECK(t.rejected > 0);
  CHECK(t.accepted > 0);
}

TEST_CASE("fuzz: the weights loader rejects mutated HDF5 weights files naming them, never crashes") {
  test::TempDir tmp;
  // A small weights file in the real layout: format, arch, num_classes, source; a few tensors with
  // ResNet18's names (most missing, so that a mutant that reads is still refused by strict loading).
  const fs::path good = tmp.path / "good.h5";
  {
    H5File f = H5File::create(good.string());
    Generator gen(1);
    f.write("fc.weight", Tensor::normal({2, 512}, 0, 0.1, gen).reshape({2, 512}));
    f.write("fc.bias", Tensor::zeros({2}));
    f.write("bn1.running_mean", Tensor::zeros({64}));
    f.write("bn1.num_batches_tracked", Tensor::from_data<int64_t>({}, std::vector<int64_t>{3}));
    f.set_attr("format", std::string(models::kWeightsFormat));
    f.set_attr("arch", std::string("resnet18"));
    f.set_attr("num_classes", int64_t(2));
    f.set_attr("source", std::string("test_fuzz"));
    f.commit();
  }
  const Bytes seed = read_file(good);
  REQUIRE(models::read_weights(good.string()).tensors.size() == 3);
  Generator gen(2);
  auto model = models::resnet18(2, gen);
  const fs::path path = tmp.path / "weights.h5";
  const Tally t = fuzz(
      "weights", {seed}, 1200, 14, path,
      [&](const Bytes&, const std::string& p) {
        const models::WeightsFile file = models::read_weights(p);
        models::assign_weights(*model, file.tensors, p);  // strict: the missing tensors are refused
      },
      [&](const std::string& m) { return contains(m, path.string()); });
  CHECK(t.inputs == 1200);
  CHECK(t.accepted == 0);  // no mutant of a file that does not fit ResNet18 may load into it
}
