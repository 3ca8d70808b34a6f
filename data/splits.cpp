#include "data/splits.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/rng.h"

namespace thaw::data {

namespace {

int64_t round_count(double x) {
  return int64_t(std::floor(x + 0.5));
}

void check_fraction(double fraction, const char* what) {
  THAW_CHECK(fraction >= 0.0 && fraction <= 1.0, "{} {} is not in [0, 1]", what, fraction);
}

// Fisher-Yates from the back (splits.h).
void shuffle(std::vector<int64_t>& items, Generator& gen) {
  for (int64_t i = int64_t(items.size()) - 1; i > 0; --i)
    std::swap(items[size_t(i)], items[size_t(gen.next_int(0, i + 1))]);
}

void append(std::vector<int64_t>& to, std::vector<int64_t>::const_iterator begin,
            std::vector<int64_t>::const_iterator end) {
  to.insert(to.end(), begin, end);
}

Split sorted(Split split) {
  std::sort(split.train.begin(), split.train.end());
  std::sort(split.val.begin(), split.val.end());
  return split;
}

// Indices of the samples of each class: by_class[c] in increasing index order.
std::vector<std::vector<int64_t>> group_by_class(const std::vector<int64_t>& labels, int64_t num_classes) {
  std::vector<std::vector<int64_t>> by_class(static_cast<size_t>(num_classes));
  for (size_t i = 0; i < labels.size(); ++i) {
    THAW_CHECK(labels[i] >= 0 && labels[i] < num_classes, "label {} of sample {} is out of range [0, {})",
               labels[i], i, num_classes);
    by_class[size_t(labels[i])].push_back(int64_t(i));
  }
  return by_class;
}

bool is_minority(const PetSample& s, const ImbalanceOptions& options) {
  const bool cat = options.report_code_cat_list ? std::count(kReportCodeCatClassIds.begin(),
                                                             kReportCodeCatClassIds.end(), s.class_id) > 0
                                                : s.species == 0;
  return options.majority == Majority::Dogs ? cat : !cat;
}

Split imbalanced_shuffled(const std::vector<PetSample>& samples, const ImbalanceOptions& options) {
  std::vector<int64_t> class_ids;
  for (const PetSample& s : samples)
    class_ids.push_back(s.class_id);
  Generator gen(options.seed);
  Split split;
  for (std::vector<int64_t>& breed : group_by_class(class_ids, kNumBreeds)) {
    if (breed.empty()) continue;
    shuffle(breed, gen);
    const int64_t n = int64_t(breed.size());
    const int64_t rest = n - round_count(options.val_fraction * double(n));
    const bool minority = is_minority(samples[size_t(breed[0])], options);
    const int64_t keep = minority ? round_count(options.keep_fraction * double(rest)) : rest;
    append(split.train, breed.begin(), breed.begin() + keep);
    append(split.val, breed.begin() + rest, breed.end());
  }
  return split;
}

// The report's split_data (splits.h): first come, first served, in file order.
Split imbalanced_file_order(const std::vector<PetSample>& samples, const ImbalanceOptions& options) {
  struct Counts {
    int64_t train = 0, val = 0, seen = 0;
  };
  std::vector<Counts> per_class(kNumBreeds);
  const double majority_target = 1.0 - options.val_fraction;
  const double minority_target = majority_target * options.keep_fraction;
  Split split;
  for (size_t i = 0; i < samples.size(); ++i) {
    Counts& c = per_class[size_t(samples[i].class_id)];
    const double train_target = is_minority(samples[i], options) ? minority_target : majority_target;
    if (c.seen == 0 || double(c.train) / double(c.seen) < train_target) {
      split.train.push_back(int64_t(i));
      ++c.train;
    } else if (double(c.val) / double(c.seen) < options.val_fraction) {
      split.val.push_back(int64_t(i));
      ++c.val;
    }
    ++c.seen;
  }
  return split;
}

}  // namespace

std::vector<PetSample> subset(const std::vector<PetSample>& samples, const std::vector<int64_t>& indices) {
  std::vector<PetSample> out;
  out.reserve(indices.size());
  for (const int64_t i : indices) {
    THAW_CHECK(i >= 0 && i < int64_t(samples.size()), "subset: index {} is out of range for {} samples", i,
               samples.size());
    out.push_back(samples[size_t(i)]);
  }
  return out;
}

Split random_split(int64_t n, double val_fraction, uint64_t seed) {
  THAW_CHECK(n >= 0, "random_split: negative sample count {}", n);
  check_fraction(val_fraction, "random_split: val_fraction");
  std::vector<int64_t> order(static_cast<size_t>(n), 0);
  std::iota(order.begin(), order.end(), int64_t(0));
  Generator gen(seed);
  shuffle(order, gen);
  const int64_t n_train = n - round_count(val_fraction * double(n));
  Split split;
  append(split.train, order.begin(), order.begin() + n_train);
  append(split.val, order.begin() + n_train, order.end());
  return sorted(std::move(split));
}

Split stratified_split(const std::vector<int64_t>& labels, int64_t num_classes, double val_fraction,
                       uint64_t seed) {
  THAW_CHECK(num_classes > 0, "stratified_split: num_classes {} must be positive", num_classes);
  check_fraction(val_fraction, "stratified_split: val_fraction");
  Generator gen(seed);
  Split split;
  for (std::vector<int64_t>& members : group_by_class(labels, num_classes)) {
    shuffle(members, gen);
    const int64_t n = int64_t(members.size());
    const int64_t n_train = n - round_count(val_fraction * double(n));
    append(split.train, members.begin(), members.begin() + n_train);
    append(split.val, members.begin() + n_train, members.end());
  }
  return sorted(std::move(split));
}

const char* majority_name(Majority majority) {
  return majority == Majority::Dogs ? "dogs" : "cats";
}

Majority parse_majority(const std::string& name) {
  if (name == "dogs") return Majority::Dogs;
  if (name == "cats") return Majority::Cats;
  fail("unknown majority '{}': expected 'dogs' (few cat images) or 'cats' (few dog images)", name);
}

Split imbalanced_split(const std::vector<PetSample>& samples, const ImbalanceOptions& options) {
  check_fraction(options.val_fraction, "imbalanced_split: val_fraction");
  check_fraction(options.keep_fraction, "imbalanced_split: keep_fraction");
  return sorted(options.file_order ? imbalanced_file_order(samples, options)
                                   : imbalanced_shuffled(samples, options));
}

std::vector<int64_t> count_labels(const std::vector<int64_t>& labels, int64_t num_classes) {
  THAW_CHECK(num_classes > 0, "count_labels: num_classes {} must be positive", num_classes);
  std::vector<int64_t> counts;
  for (const std::vector<int64_t>& members : group_by_class(labels, num_classes))
    counts.push_back(int64_t(members.size()));
  return counts;
}

std::vector<double> class_weights(const std::vector<int64_t>& counts, ClassWeighting weighting,
                                  const std::vector<std::string>& class_names, const std::string& what) {
  THAW_CHECK(!counts.empty(), "{}: no classes", what);
  const double num_classes = double(counts.size());
  double total = 0;
  for (size_t c = 0; c < counts.size(); ++c) {
    if (counts[c] <= 0) {
      const std::string name =
          c < class_names.size() && !class_names[c].empty() ? fmt::format(" ({})", class_names[c]) : "";
      fail("{}: class {}{} has no samples; every class needs at least one to be weighted", what, c, name);
    }
    total += double(counts[c]);
  }
  std::vector<double> weights(counts.size());
  for (size_t c = 0; c < counts.size(); ++c) {
    weights[c] = weighting == ClassWeighting::Report ? (1.0 / num_classes) / double(counts[c])
                                                     : total / (num_classes * double(counts[c]));
  }
  if (weighting == ClassWeighting::Report) {
    const double sum = std::accumulate(weights.begin(), weights.end(), 0.0);
    for (double& w : weights)
      w /= sum;
  }
  return weights;
}

std::vector<double> sample_weights(const std::vector<int64_t>& labels,
                                   const std::vector<double>& class_weights) {
  std::vector<double> weights;
  weights.reserve(labels.size());
  for (size_t i = 0; i < labels.size(); ++i) {
    THAW_CHECK(labels[i] >= 0 && labels[i] < int64_t(class_weights.size()),
               "sample_weights: label {} of sample {} has no class weight ({} classes)", labels[i], i,
               class_weights.size());
    weights.push_back(class_weights[size_t(labels[i])]);
  }
  return weights;
}

WeightedSampler::WeightedSampler(std::vector<double> weights, uint64_t seed, int64_t num_samples)
    : seed_(seed), num_samples_(num_samples < 0 ? int64_t(weights.size()) : num_samples) {
  THAW_CHECK(!weights.empty(), "WeightedSampler: no weights");
  double total = 0;
  cumulative_.reserve(weights.size());
  for (size_t i = 0; i < weights.size(); ++i) {
    THAW_CHECK(std::isfinite(weights[i]) && weights[i] >= 0,
               "WeightedSampler: weight {} of sample {} is not "
               "finite and >= 0",
               weights[i], i);
    total += weights[i];
    cumulative_.push_back(total);
  }
  THAW_CHECK(total > 0, "WeightedSampler: all {} weights are 0", weights.size());
}

std::vector<int64_t> WeightedSampler::epoch(uint64_t epoch) const {
  Generator gen(seed_, epoch);
  const double total = cumulative_.back();
  // The last index with a positive weight: where u * total rounds up to total.
  const int64_t last =
      int64_t(std::lower_bound(cumulative_.begin(), cumulative_.end(), total) - cumulative_.begin());
  std::vector<int64_t> indices(static_cast<size_t>(num_samples_));
  for (int64_t& index : indices) {
    const double u = gen.next_uniform() * total;
    index = int64_t(std::upper_bound(cumulative_.begin(), cumulative_.end(), u) - cumulative_.begin());
    index = std::min(index, last);
  }
  return indices;
}

}  // namespace thaw::data
