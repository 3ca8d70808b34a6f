// thaw data check DIR (data/check.h): reads the annotations, counts images per breed and split, lists
// files that no annotation mentions and files whose content is not what the .jpg name says, decodes every
// listed image, and ends with a verdict; the exit status is 0 when the dataset is usable, 1 when not.
#include "data/check.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <memory>
#include <set>
#include <thread>

#include "core/error.h"
#include "data/image.h"
#include "data/pets.h"

namespace thaw::data {

namespace {

namespace fs = std::filesystem;

// list.txt, trainval.txt and test.txt together, each name once, in that order.
std::vector<data::PetSample> listed_samples(const data::PetsDataset& dataset) {
  std::vector<data::PetSample> listed;
  std::set<std::string> seen;
  for (const auto* split : {&dataset.all, &dataset.trainval, &dataset.test})
    for (const data::PetSample& s : *split)
      if (seen.insert(s.name).second) listed.push_back(s);
  return listed;
}

std::vector<BreedRow> breed_rows(const data::PetsDataset& dataset) {
  std::vector<BreedRow> rows(data::kNumBreeds);
  for (int64_t c = 0; c < data::kNumBreeds; ++c) {
    rows[size_t(c)].class_id = c;
    rows[size_t(c)].name = dataset.class_names[size_t(c)];
  }
  for (const data::PetSample& s : dataset.all)
    rows[size_t(s.class_id)].species = s.species;
  for (const data::PetSample& s : dataset.trainval)
    ++rows[size_t(s.class_id)].trainval;
  for (const data::PetSample& s : dataset.test)
    ++rows[size_t(s.class_id)].test;
  return rows;
}

// Files in images/: how many, which no list mentions, which .jpg files are not JPEG.
void scan_images_dir(const data::PetsDataset& dataset, DataCheckResult& result) {
  std::vector<std::string> files;
  for (const fs::directory_entry& entry : fs::directory_iterator(dataset.images_dir()))
    if (!entry.is_directory()) files.push_back(entry.path().filename().string());
  std::sort(files.begin(), files.end());
  result.image_files = int64_t(files.size());
  const auto format_of = [&](const std::string& file) {
    return data::sniff_image_format((fs::path(dataset.images_dir()) / file).string());
  };
  for (const std::string& file : files) {
    const data::ImageFormat format = format_of(file);
    if (file.ends_with(".jpg") && format != data::ImageFormat::Jpeg) {
      result.odd_formats.emplace_back(file, data::image_format_name(format));
    }
  }
  for (const std::string& file : data::unlisted_images(dataset))
    result.unlisted.emplace_back(file, data::image_format_name(format_of(file)));
}

// Decodes the images at `paths` on `threads` threads; records the failures (in path order).
void decode_all(const std::vector<std::string>& paths, int threads, DataCheckResult& result) {
  std::vector<std::string> errors(paths.size());
  std::atomic<size_t> next{0};
  const auto work = [&] {
    for (size_t i = next++; i < paths.size(); i = next++) {
      try {
        data::decode_image_file(paths[i]);
      } catch (const Error& e) {
        errors[i] = e.what();
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back(work);
  for (std::thread& t : pool)
    t.join();
  for (size_t i = 0; i < paths.size(); ++i) {
    if (errors[i].empty()) {
      ++result.decoded;
    } else {
      result.unreadable.emplace_back(fs::path(paths[i]).filename().string(), errors[i]);
    }
  }
}

int decode_threads(const DataCheckOptions& options) {
  if (options.threads > 0) return options.threads;
  return int(std::clamp(std::thread::hardware_concurrency(), 1u, 8u));
}

// Prints at most `limit` items, then how many more there are.
template <typename Item, typename Format>
void print_items(std::FILE* out, const std::vector<Item>& items, Format format, size_t limit = 20) {
  for (size_t i = 0; i < std::min(items.size(), limit); ++i)
    fmt::print(out, "  {}\n", format(items[i]));
  if (items.size() > limit) fmt::print(out, "  ... and {} more\n", items.size() - limit);
}

void print_breed_table(const DataCheckResult& r, std::FILE* out) {
  std::vector<int64_t> unused;
  for (const BreedRow& row : r.breeds)
    if (row.name.empty()) unused.push_back(row.class_id + 1);
  if (!unused.empty()) fmt::print(out, "class ids used by no annotation line: {}\n", fmt::join(unused, " "));
  fmt::print(out, "\n{:>3}  {:<28} {:<7} {:>8} {:>6} {:>6}\n", "id", "breed", "species", "trainval", "test",
             "total");
  for (const BreedRow& row : r.breeds) {
    if (row.name.empty()) continue;
    fmt::print(out, "{:>3}  {:<28} {:<7} {:>8} {:>6} {:>6}\n", row.class_id + 1, row.name,
               row.species == 0 ? "cat" : "dog", row.trainval, row.test, row.trainval + row.test);
  }
  fmt::print(out, "{:>3}  {:<28} {:<7} {:>8} {:>6} {:>6}\n\n", "", "total", "", r.trainval, r.test,
             r.trainval + r.test);
}

}  // namespace

std::vector<std::string> DataCheckResult::problems() const {
  std::vector<std::string> out;
  if (!annotation_error.empty()) return {"the annotations cannot be read"};
  if (images_dir_missing) out.push_back("no images/ directory");
  if (!missing_images.empty())
    out.push_back(fmt::format("{} listed image(s) missing", missing_images.size()));
  if (!unreadable.empty())
    out.push_back(fmt::format("{} listed image(s) cannot be decoded", unreadable.size()));
  for (const BreedRow& row : breeds) {
    if (!row.name.empty() && row.trainval == 0) {
      out.push_back(fmt::format("breed {} ({}) has no trainval images", row.class_id + 1, row.name));
    }
  }
  return out;
}

DataCheckResult check_pets_dir(const std::string& root, const DataCheckOptions& options) {
  DataCheckResult result;
  result.root = root;
  data::PetsDataset dataset;
  try {
    dataset = data::read_pets(root, data::ReadOptions{.check_images = false});
  } catch (const Error& e) {
    result.annotation_error = e.what();
    return result;
  }
  result.listed = int64_t(dataset.all.size());
  result.trainval = int64_t(dataset.trainval.size());
  result.test = int64_t(dataset.test.size());
  result.breeds = breed_rows(dataset);
  result.images_dir_missing = !fs::is_directory(dataset.images_dir());
  if (!result.images_dir_missing) scan_images_dir(dataset, result);
  std::vector<std::string> present;
  for (const data::PetSample& s : listed_samples(dataset)) {
    const std::string path = dataset.image_path(s);
    if (fs::is_regular_file(path)) {
      present.push_back(path);
    } else {
      result.missing_images.push_back(s.name + ".jpg");
    }
  }
  result.decode_skipped = !options.decode;
  if (options.decode) decode_all(present, decode_threads(options), result);
  return result;
}

void print_data_check(const DataCheckResult& r, std::FILE* out) {
  fmt::print(out, "thaw data check {}\n", r.root);
  if (!r.annotation_error.empty()) {
    fmt::print(out, "annotation error: {}\n", r.annotation_error);
    fmt::print(out, "verdict: NOT usable: the annotations cannot be read (fix the line named above)\n");
    return;
  }
  fmt::print(out, "annotations: {} images in list.txt, {} in trainval.txt, {} in test.txt\n", r.listed,
             r.trainval, r.test);
  print_breed_table(r, out);
  if (r.images_dir_missing) fmt::print(out, "images/: missing\n");
  fmt::print(out, "images/: {} files, {} in no annotation list\n", r.image_files, r.unlisted.size());
  print_items(out, r.unlisted, [](const auto& f) { return fmt::format("{} ({})", f.first, f.second); });
  fmt::print(out, "named .jpg but not JPEG (decoded by their content): {}\n", r.odd_formats.size());
  print_items(out, r.odd_formats, [](const auto& f) { return fmt::format("{} is {}", f.first, f.second); });
  fmt::print(out, "listed images missing: {}\n", r.missing_images.size());
  print_items(out, r.missing_images, [](const std::string& f) { return f; });
  if (r.decode_skipped) {
    fmt::print(out, "decoded: skipped (--no-decode): undecodable files are not found\n");
  } else {
    fmt::print(out, "decoded: {} listed images, {} cannot be decoded\n", r.decoded, r.unreadable.size());
  }
  print_items(out, r.unreadable, [](const auto& f) { return f.second; });
  const std::vector<std::string> problems = r.problems();
  if (problems.empty()) {
    fmt::print(
        out, "verdict: usable: {} trainval and {} test images in {} breeds\n", r.trainval, r.test,
        std::count_if(r.breeds.begin(), r.breeds.end(), [](const BreedRow& b) { return b.trainval > 0; }));
  } else {
    fmt::print(out, "verdict: NOT usable: {}\n", fmt::join(problems, "; "));
  }
}

}  // namespace thaw::data
