#include "data/pets.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <set>
#include <string_view>
#include <unordered_map>

#include "core/error.h"

namespace thaw::data {

namespace fs = std::filesystem;

Task parse_task(const std::string& name) {
  if (name == "breeds") return Task::Breeds;
  if (name == "species") return Task::Species;
  fail("unknown task '{}': expected 'breeds' (37 classes) or 'species' (cat/dog)", name);
}

const char* task_name(Task task) {
  return task == Task::Breeds ? "breeds" : "species";
}

int64_t num_classes(Task task) {
  return task == Task::Breeds ? kNumBreeds : 2;
}

int64_t label_of(const PetSample& sample, Task task) {
  return task == Task::Breeds ? sample.class_id : sample.species;
}

std::vector<int64_t> labels_of(const std::vector<PetSample>& samples, Task task) {
  std::vector<int64_t> labels;
  labels.reserve(samples.size());
  for (const PetSample& s : samples)
    labels.push_back(label_of(s, task));
  return labels;
}

std::string breed_of_name(const std::string& name) {
  const size_t underscore = name.rfind('_');
  const bool has_number = underscore != std::string::npos && underscore > 0 && underscore + 1 < name.size() &&
                          std::all_of(name.begin() + long(underscore) + 1, name.end(),
                                      [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
  THAW_CHECK(has_number, "image name '{}' does not end in _<number> (expected e.g. 'Abyssinian_12')", name);
  return name.substr(0, underscore);
}

std::string PetsDataset::images_dir() const {
  return (fs::path(root) / "images").string();
}

std::string PetsDataset::image_path(const PetSample& sample) const {
  return (fs::path(root) / "images" / (sample.name + ".jpg")).string();
}

std::vector<int64_t> count_per_class(const std::vector<PetSample>& samples) {
  std::vector<int64_t> counts(kNumBreeds, 0);
  for (const PetSample& s : samples)
    ++counts[size_t(s.class_id)];
  return counts;
}

namespace {

// One non-comment line of an annotation file, for error messages.
struct Line {
  const std::string& path;
  int64_t number;
  const std::string& text;
};

template <typename... Args>
[[noreturn]] void line_fail(const Line& line, fmt::format_string<Args...> format, Args&&... args) {
  fail("{}:{}: {} (line: '{}')", line.path, line.number, fmt::format(format, std::forward<Args>(args)...),
       line.text);
}

std::vector<std::string_view> split_fields(std::string_view text) {
  std::vector<std::string_view> fields;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i])))
      ++i;
    const size_t start = i;
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i])))
      ++i;
    if (i > start) fields.push_back(text.substr(start, i - start));
  }
  return fields;
}

// The integer in field `what`; only digits are accepted (no sign, no trailing characters).
int64_t parse_field(const Line& line, std::string_view field, const char* what) {
  int64_t value = 0;
  const auto [end, error] = std::from_chars(field.data(), field.data() + field.size(), value);
  const bool digits_only = std::all_of(field.begin(), field.end(),
                                       [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
  if (!digits_only || error != std::errc() || end != field.data() + field.size()) {
    line_fail(line, "{} '{}' is not a non-negative integer", what, field);
  }
  return value;
}

// What the files say about one class id, and where they first said it.
struct ClassEntry {
  std::string name;  // "" until a line uses the class id
  int64_t species = 0, breed_id = 0;
  std::string where;  // "path:line"
};

// Class ids -> breed names, shared by the files of one dataset so that they must agree.
struct ClassTable {
  std::vector<ClassEntry> entries = std::vector<ClassEntry>(kNumBreeds);
  std::unordered_map<std::string, int64_t> id_of_name;

  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const ClassEntry& e : entries)
      out.push_back(e.name);
    return out;
  }
};

void check_species_case(const Line& line, const std::string& breed, int64_t species) {
  const bool upper = std::isupper(static_cast<unsigned char>(breed[0]));
  if (species == 0 && !upper) {
    line_fail(line, "species is 1 (cat) but '{}' starts lower-case (cat names start upper-case)", breed);
  }
  if (species == 1 && upper) {
    line_fail(line, "species is 2 (dog) but '{}' starts upper-case (dog names start lower-case)", breed);
  }
}

// Records the sample's class in the table, or checks it against what an earlier line said.
void check_class(const Line& line, const PetSample& s, const std::string& breed, ClassTable& table) {
  ClassEntry& entry = table.entries[size_t(s.class_id)];
  const int64_t file_id = s.class_id + 1;
  if (entry.name.empty()) {
    const auto other = table.id_of_name.find(breed);
    if (other != table.id_of_name.end()) {
      line_fail(line, "breed '{}' has class id {} here but {} at {}", breed, file_id, other->second + 1,
                table.entries[size_t(other->second)].where);
    }
    entry = {breed, s.species, s.breed_id, fmt::format("{}:{}", line.path, line.number)};
    table.id_of_name[breed] = s.class_id;
    return;
  }
  if (entry.name != breed) {
    line_fail(line, "class id {} is '{}' at {} but '{}' here", file_id, entry.name, entry.where, breed);
  }
  if (entry.species != s.species) {
    line_fail(line, "class id {} ('{}') has species {} at {} but {} here", file_id, breed, entry.species + 1,
              entry.where, s.species + 1);
  }
  if (entry.breed_id != s.breed_id) {
    line_fail(line, "class id {} ('{}') has breed id {} at {} but {} here", file_id, breed,
              entry.breed_id + 1, entry.where, s.breed_id + 1);
  }
}

PetSample parse_line(const Line& line, ClassTable& table) {
  const std::vector<std::string_view> fields = split_fields(line.text);
  if (fields.size() != 4) {
    line_fail(line, "expected 4 fields 'NAME CLASS-ID SPECIES BREED-ID', found {}", fields.size());
  }
  PetSample s;
  s.name = std::string(fields[0]);
  const int64_t class_id = parse_field(line, fields[1], "CLASS-ID");
  const int64_t species = parse_field(line, fields[2], "SPECIES");
  const int64_t breed_id = parse_field(line, fields[3], "BREED-ID");
  if (class_id < 1 || class_id > kNumBreeds) {
    line_fail(line, "class id {} is out of range 1..{}", class_id, kNumBreeds);
  }
  if (species != 1 && species != 2) line_fail(line, "species {} is not 1 (cat) or 2 (dog)", species);
  if (breed_id < 1) line_fail(line, "breed id {} is not positive", breed_id);
  s.class_id = class_id - 1;
  s.species = species - 1;
  s.breed_id = breed_id - 1;
  std::string breed;
  try {
    breed = breed_of_name(s.name);
  } catch (const Error& e) {
    line_fail(line, "{}", e.what());
  }
  check_species_case(line, breed, s.species);
  check_class(line, s, breed, table);
  return s;
}

// A parsed split file: its samples in file order and the line number of each name.
struct ParsedFile {
  std::string path;
  std::vector<PetSample> samples;
  std::unordered_map<std::string, int64_t> line_of;
};

ParsedFile parse_split_file(const std::string& path, const std::string& images_dir, ClassTable& table) {
  std::ifstream in(path);
  THAW_CHECK(in.good(),
             "{}: cannot open the annotation file (expected the Oxford-IIIT Pet layout: "
             "annotations/list.txt, trainval.txt, test.txt)",
             path);
  ParsedFile file{path, {}, {}};
  std::string text;
  for (int64_t number = 1; std::getline(in, text); ++number) {
    if (number == 1) {
      // A UTF-8 byte-order mark (Windows editors write one) is not part of the first name; UTF-16 is not
      // read at all, and said so rather than reported as a malformed first line.
      if (text.rfind("\xEF\xBB\xBF", 0) == 0) text.erase(0, 3);
      if (text.rfind("\xFF\xFE", 0) == 0 || text.rfind("\xFE\xFF", 0) == 0) {
        fail("{}: the file is UTF-16 (it starts with a UTF-16 byte-order mark); save it as UTF-8 or ASCII",
             path);
      }
    }
    if (!text.empty() && text.back() == '\r') text.pop_back();
    const size_t first = text.find_first_not_of(" \t");
    if (first == std::string::npos || text[first] == '#') continue;
    const Line line{path, number, text};
    PetSample s = parse_line(line, table);
    const auto [it, inserted] = file.line_of.emplace(s.name, number);
    if (!inserted) line_fail(line, "'{}' is listed twice (first at line {})", s.name, it->second);
    if (!images_dir.empty()) {
      const fs::path image = fs::path(images_dir) / (s.name + ".jpg");
      if (!fs::is_regular_file(image)) line_fail(line, "image file {} does not exist", image.string());
    }
    file.samples.push_back(std::move(s));
  }
  THAW_CHECK(!file.samples.empty(), "{}: lists no images", path);
  return file;
}

// The names of `split` must not appear in `other` (trainval and test are disjoint).
void check_disjoint(const ParsedFile& split, const ParsedFile& other) {
  for (const PetSample& s : split.samples) {
    const auto it = other.line_of.find(s.name);
    if (it != other.line_of.end()) {
      fail("{}:{}: '{}' is also in {} (line {}): trainval and test must not overlap", split.path,
           split.line_of.at(s.name), s.name, other.path, it->second);
    }
  }
}

}  // namespace

std::vector<PetSample> read_split_file(const std::string& path, const std::string& images_dir,
                                       std::vector<std::string>* class_names) {
  ClassTable table;
  ParsedFile file = parse_split_file(path, images_dir, table);
  if (class_names != nullptr) *class_names = table.names();
  return std::move(file.samples);
}

PetsDataset read_pets(const std::string& root, const ReadOptions& options) {
  PetsDataset dataset;
  dataset.root = root;
  const fs::path annotations = fs::path(root) / "annotations";
  const std::string images_dir = options.check_images ? dataset.images_dir() : "";
  ClassTable table;
  ParsedFile list = parse_split_file((annotations / "list.txt").string(), images_dir, table);
  ParsedFile trainval = parse_split_file((annotations / "trainval.txt").string(), images_dir, table);
  ParsedFile test = parse_split_file((annotations / "test.txt").string(), images_dir, table);
  check_disjoint(test, trainval);
  dataset.class_names = table.names();
  dataset.all = std::move(list.samples);
  dataset.trainval = std::move(trainval.samples);
  dataset.test = std::move(test.samples);
  return dataset;
}

std::vector<std::string> unlisted_images(const PetsDataset& dataset) {
  std::set<std::string> listed;
  for (const auto* split : {&dataset.all, &dataset.trainval, &dataset.test})
    for (const PetSample& s : *split)
      listed.insert(s.name + ".jpg");
  const fs::path dir = dataset.images_dir();
  THAW_CHECK(fs::is_directory(dir), "{}: not a directory (expected the dataset's images/)", dir.string());
  std::vector<std::string> unlisted;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory() && listed.count(name) == 0) unlisted.push_back(name);
  }
  std::sort(unlisted.begin(), unlisted.end());
  return unlisted;
}

}  // namespace thaw::data
