// data/synthetic.h: the generated pattern datasets of `thaw demo`. The two class sets are disjoint and share
// every shape and texture, rendering is deterministic per seed, and a written dataset reads back through
// the Oxford-IIIT Pet reader (read_pets) with the classes, species and counts it was asked for.
#include <algorithm>
#include <filesystem>
#include <set>

#include "data/image.h"
#include "data/pets.h"
#include "data/synthetic.h"
#include "tests/support/catch.h"
#include "tests/support/scratch.h"

using namespace thaw;
using namespace thaw::data;

TEST_CASE("synthetic: the source and target sets are disjoint and share every shape and texture") {
  const std::vector<PatternClass> source = pattern_classes(PatternSet::Source);
  const std::vector<PatternClass> target = pattern_classes(PatternSet::Target);
  REQUIRE(source.size() == 37);
  REQUIRE(target.size() == 37);
  std::set<std::pair<int, int>> pairs;
  std::set<int> source_shapes, target_shapes, source_textures, target_textures;
  for (const PatternClass& c : source)
    pairs.insert({c.shape, c.texture}), source_shapes.insert(c.shape), source_textures.insert(c.texture);
  for (const PatternClass& c : target)
    pairs.insert({c.shape, c.texture}), target_shapes.insert(c.shape), target_textures.insert(c.texture);
  CHECK(pairs.size() == 74);  // no (shape, texture) pair in both sets
  CHECK(source_shapes.size() == 10);
  CHECK(target_shapes.size() == 10);
  CHECK(source_textures.size() == 8);
  CHECK(target_textures.size() == 8);
  // Oxford's naming: the first 12 classes are cats (capitalised), the rest dogs (lower-case).
  CHECK(source[0].name == "Solid_circle");
  CHECK(source[11].name[0] == std::toupper(source[11].name[0]));
  CHECK(source[12].name[0] == std::tolower(source[12].name[0]));
  CHECK(target[0].name == "Hstripes_circle");
}

TEST_CASE("synthetic: the same seed renders the same image, another seed another one") {
  const std::vector<PatternClass> source = pattern_classes(PatternSet::Source);
  const Image a = render_pattern(source[3], 32, 7);
  const Image b = render_pattern(source[3], 32, 7);
  const Image c = render_pattern(source[3], 32, 8);
  REQUIRE(a.height == 32);
  REQUIRE(a.width == 32);
  REQUIRE(a.pixels.size() == 32 * 32 * 3);
  CHECK(a.pixels == b.pixels);
  CHECK(a.pixels != c.pixels);
  // Not a flat image: a shape on a background has far apart pixel values.
  const auto [lo, hi] = std::minmax_element(a.pixels.begin(), a.pixels.end());
  CHECK(int(*hi) - int(*lo) > 60);
  CHECK_THROWS_WITH(render_pattern(source[0], 4, 1), Catch::Matchers::Contains("image size 4 is below 8"));
}

TEST_CASE("synthetic: a written dataset reads back as Oxford-IIIT Pet with the asked counts") {
  test::TempDir dir;
  const std::string root = (dir.path / "target").string();
  write_synthetic_dataset(root, {PatternSet::Target, 24, 3, 2, 5});
  const PetsDataset ds = read_pets(root);
  CHECK(ds.trainval.size() == 37 * 3);
  CHECK(ds.test.size() == 37 * 2);
  CHECK(ds.all.size() == 37 * 5);
  CHECK(ds.class_names[0] == "Hstripes_circle");
  CHECK(ds.class_names[36] == pattern_classes(PatternSet::Target)[36].name);
  CHECK(std::count_if(ds.all.begin(), ds.all.end(), [](const PetSample& s) { return s.species == 0; }) ==
        12 * 5);
  // The images are JPEGs of the asked size.
  const Image decoded = decode_image_file(root + "/images/Hstripes_circle_1.jpg");
  CHECK(decoded.height == 24);
  CHECK(decoded.width == 24);
  CHECK_THROWS_WITH(write_synthetic_dataset(root, {PatternSet::Target, 24, 0, 2, 5}),
                    Catch::Matchers::Contains("at least one trainval and one test image per class"));
}
