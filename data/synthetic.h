// Generated image datasets in the Oxford-IIIT Pet layout (pets.h), for `thaw demo` and tests: no download,
// deterministic from a seed, and a task that needs spatial features, so that transfer learning shows.
//
// Each image is a shape filled with a texture on a plain background:
//   shapes   (10): circle, square, triangle, diamond, cross, ring, hexagon, halfdisc, ellipse, frame
//   textures (8):  solid, hstripes, vstripes, diagonal, antidiagonal, checker, dots, grid
// A class is one (texture, shape) pair. The 80 pairs are dealt, by a fixed permutation, into two disjoint
// sets of 37 classes (6 pairs are unused): the *source* set and the *target* set. Every shape and texture
// occurs in both, in different combinations, so a network that learned to see shapes and textures on the
// source classes has the features a linear head needs for the target classes; a network that starts from
// random weights must learn them from the target's few images.
//
// Colours (background, texture foreground and background), position, size, rotation (+-12 degrees),
// stripe period and phase and pixel noise are drawn per image, so neither colour nor position tells the
// classes apart. Classes 1..12 are "cats" (capitalised names, species 1), 13..37 "dogs" (lower-case, species
// 2), as the official release spells them; names are "<texture>_<shape>", e.g. "Checker_ring".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/image.h"

namespace thaw::data {

enum class PatternSet { Source, Target };

struct PatternClass {
  std::string name;    // breed name as it appears in image names, e.g. "Checker_ring" or "dots_circle"
  int shape, texture;  // indices into the lists above
};

// The 37 classes of a set, class id i + 1 for entry i.
std::vector<PatternClass> pattern_classes(PatternSet set);

// One image of class `pattern`, size x size RGB; `seed` fixes every random choice (same seed, same image).
Image render_pattern(const PatternClass& pattern, int64_t size, uint64_t seed);

struct SyntheticSpec {
  PatternSet set = PatternSet::Source;
  int64_t image_size = 32;
  int64_t trainval_per_class = 40, test_per_class = 10;
  uint64_t seed = 0;
};

// Writes root/images/<name>_<n>.jpg (JPEG, quality 95) and root/annotations/{list,trainval,test}.txt for
// 37 classes. Existing files of the same names are overwritten; throws thaw::Error naming a file that
// cannot be written.
void write_synthetic_dataset(const std::string& root, const SyntheticSpec& spec);

}  // namespace thaw::data
