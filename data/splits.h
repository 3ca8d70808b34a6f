// Seeded splits of a sample list, class weights and a weighted over-sampling sampler (docs/data.md "Splits").
//
// Every random choice comes from core/rng.h's Generator (Philox, counter-based), so a split is a pure
// function of (the samples in file order, the options, the seed): the same on every machine and thread count.
// Shuffles are Fisher-Yates from the back: for i = n-1 .. 1, j = gen.next_int(0, i+1), swap(p[i], p[j]).
// Counts are rounded half up: round(x) = floor(x + 0.5).
//
// A Split holds indices into the sample list it was made from, each part sorted ascending (the loader
// shuffles per epoch; sorted parts are easy to compare and to print).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "data/pets.h"

namespace thaw::data {

struct Split {
  std::vector<int64_t> train, val;
};

// The samples at `indices`, in that order.
std::vector<PetSample> subset(const std::vector<PetSample>& samples, const std::vector<int64_t>& indices);

// Like torch.utils.data.random_split(n, [n - v, v]) with v = round(val_fraction * n): one seeded shuffle of
// 0..n-1, the first n - v to train, the rest to val. The report's int(0.8 * 3680) = 2944 train, 736 val
// comes out the same (not the same images: torch's permutation comes from its own generator).
// Requires 0 <= val_fraction <= 1.
Split random_split(int64_t n, double val_fraction, uint64_t seed);

// Per class: round(val_fraction * n_c) of that class's samples to val. Classes in increasing label order, one
// Generator(seed): shuffle the class's indices, the first n_c - round(val_fraction * n_c) to train, the rest
// to val. labels[i] in [0, num_classes).
Split stratified_split(const std::vector<int64_t>& labels, int64_t num_classes, double val_fraction,
                       uint64_t seed);

// The report's imbalanced splits (docs/the-report.md, "The protocol"): per breed val_fraction of the images
// to validation; of the rest, keep keep_fraction of each minority breed's images for training (the others are
// unused); majority breeds keep all. Dog majority: the cats are the minority; cat majority: the dogs.
enum class Majority { Dogs, Cats };
const char* majority_name(Majority majority);
Majority parse_majority(const std::string& name);  // "dogs" or "cats"

// The 0-based class ids the report's code treated as cats: its list [1, 6, 7, ...] holds the 1-based ids of
// the cat breeds but was compared with torchvision's 0-based labels, so it selects 4 cat and 8 dog breeds
// (american_bulldog, Birman, Bombay, boxer, chihuahua, english_cocker_spaniel, miniature_pinscher,
// pomeranian, Russian_Blue, saint_bernard, Sphynx, staffordshire_bull_terrier).
inline constexpr std::array<int64_t, 12> kReportCodeCatClassIds = {1,  6,  7,  8,  10, 12,
                                                                   21, 24, 27, 28, 33, 34};

struct ImbalanceOptions {
  Majority majority = Majority::Dogs;
  double val_fraction = 0.2;
  double keep_fraction = 0.25;
  uint64_t seed = 42;
  // false: breeds in increasing class id, one Generator(seed): shuffle the breed's indices; the last
  //   round(val_fraction * n_b) go to val; of the first rest = n_b - that, a minority breed puts the first
  //   round(keep_fraction * rest) in train, a majority breed all of them. Validation does not depend on the
  //   majority.
  // true: the report's code (new_main.py split_data): no randomness; walk the samples in file order and,
  //   per breed with t (seen so far), tr, v (assigned so far), put a sample in train if t == 0 or tr/t <
  //   train_target (minority (1 - val_fraction) * keep_fraction, majority 1 - val_fraction), else in val if
  //   v/t < val_fraction, else leave it out.
  bool file_order = false;
  // true: the minority/majority breeds are those of the report's code (kReportCodeCatClassIds act as the
  // "cats"), not the real species. With file_order on full_trainval.txt this reproduces the report's table.
  bool report_code_cat_list = false;
};

Split imbalanced_split(const std::vector<PetSample>& samples, const ImbalanceOptions& options);

// Class weights from per-class sample counts (C = counts.size()). Every class needs at least one sample:
// an Error names the first empty class (its label, and class_names[c] when given) after `what`, the setting
// that asked for the weights (e.g. "oversample": "oversample: class 1 (american_bulldog) has no ...").
//   Report:           w_c = (1/C) / n_c, normalised to sum 1 (the report's weighted cross-entropy).
//   InverseFrequency: w_c = N / (C n_c), N = sum of counts (so the mean weight over the samples is 1).
enum class ClassWeighting { Report, InverseFrequency };
std::vector<double> class_weights(const std::vector<int64_t>& counts, ClassWeighting weighting,
                                  const std::vector<std::string>& class_names = {},
                                  const std::string& what = "class_weights");

// counts[c] = number of labels equal to c; labels in [0, num_classes).
std::vector<int64_t> count_labels(const std::vector<int64_t>& labels, int64_t num_classes);

// One weight per sample: class_weights[labels[i]] (the sampler's input for class-balanced over-sampling).
std::vector<double> sample_weights(const std::vector<int64_t>& labels,
                                   const std::vector<double>& class_weights);

// Draws num_samples indices in [0, weights.size()) with replacement, P(i) = weights[i] / sum(weights), like
// torch.utils.data.WeightedRandomSampler. Epoch e uses Generator(seed, stream = e): draw k takes u =
// gen.next_uniform() * total and returns the first i whose cumulative weight (summed in double, in index
// order) exceeds u. Weights must be finite, >= 0 and not all 0.
class WeightedSampler {
 public:
  // num_samples < 0: weights.size().
  WeightedSampler(std::vector<double> weights, uint64_t seed, int64_t num_samples = -1);

  int64_t size() const { return num_samples_; }  // indices per epoch
  std::vector<int64_t> epoch(uint64_t epoch) const;

 private:
  std::vector<double> cumulative_;
  uint64_t seed_;
  int64_t num_samples_;
};

}  // namespace thaw::data
