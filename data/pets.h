// The Oxford-IIIT Pet dataset as released: images/<Name>_<n>.jpg and annotations/{list,trainval,test}.txt,
// one image per line, `NAME CLASS-ID SPECIES BREED-ID` (class 1..37, species 1 cat / 2 dog, breed id 1..12
// within cats, 1..25 within dogs); lines starting with '#' are comments, blank lines are ignored. A UTF-8
// byte-order mark at the start of a file is skipped; a UTF-16 file is an error that says so.
//
// Reading checks every line and fails with thaw::Error "path:line: what is wrong (line: '...')": wrong field
// count, a field that is not an integer, class id out of 1..37, species not 1/2, breed id < 1, a name without
// the trailing _<number>, a breed name whose case disagrees with the species (cat names start upper-case, dog
// names lower-case), a class id whose breed name, species or breed id disagrees with an earlier line or a
// breed name with a second class id (in any of the three files: so a line of trainval.txt or test.txt cannot
// disagree with list.txt), a name listed twice in one file, a name in both trainval.txt and test.txt, and
// (unless turned off) a listed image whose file images/<name>.jpg does not exist.
//
// BREED-ID is not range-checked: the official release numbers breeds within each species (1..12 cats, 1..25
// dogs), pets-mini's files repeat the class id there. Labels never use it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace thaw::data {

constexpr int64_t kNumBreeds = 37;

// The official release's breed of each class id (0-based here: its CLASS-ID minus 1), as its image names
// spell them: the name for a class id that no annotation line of a dataset uses (e.g. a subset).
// clang-format off
inline constexpr const char* kOfficialBreedNames[kNumBreeds] = {
    "Abyssinian", "american_bulldog", "american_pit_bull_terrier", "basset_hound", "beagle", "Bengal",
    "Birman", "Bombay", "boxer", "British_Shorthair", "chihuahua", "Egyptian_Mau", "english_cocker_spaniel",
    "english_setter", "german_shorthaired", "great_pyrenees", "havanese", "japanese_chin", "keeshond",
    "leonberger", "Maine_Coon", "miniature_pinscher", "newfoundland", "Persian", "pomeranian", "pug",
    "Ragdoll", "Russian_Blue", "saint_bernard", "samoyed", "scottish_terrier", "shiba_inu", "Siamese",
    "Sphynx", "staffordshire_bull_terrier", "wheaten_terrier", "yorkshire_terrier"};
// clang-format on

// breeds: 37 classes, label = class_id; species: 2 classes, label = species (0 cat, 1 dog).
enum class Task { Breeds, Species };
Task parse_task(const std::string& name);  // "breeds" or "species"; anything else is an Error naming both
const char* task_name(Task task);
int64_t num_classes(Task task);  // 37 or 2

// One annotation line. All ids are 0-based here: class_id 0..36 (the file's 1..37 minus 1), species 0 cat /
// 1 dog (the file's 1/2 minus 1), breed_id the file's BREED-ID minus 1.
struct PetSample {
  std::string name;  // image name without extension, e.g. "Abyssinian_12"
  int64_t class_id = 0;
  int64_t species = 0;
  int64_t breed_id = 0;
};

int64_t label_of(const PetSample& sample, Task task);
std::vector<int64_t> labels_of(const std::vector<PetSample>& samples, Task task);

// Breed name of an image name: the name minus its trailing "_<number>" ("american_bulldog_12" ->
// "american_bulldog"). Requires the trailing number; throws Error otherwise.
std::string breed_of_name(const std::string& name);

struct ReadOptions {
  // Check that images/<name>.jpg exists for every listed name. Turn off to read split lists whose images
  // are not on disk (e.g. pets-mini's full_trainval.txt, the official split of the whole dataset).
  bool check_images = true;
};

struct PetsDataset {
  std::string root;
  // class_names[class_id]: the breed name as the image names spell it ("Abyssinian", "american_bulldog");
  // 37 entries, "" for a class id that no file uses.
  std::vector<std::string> class_names;
  std::vector<PetSample> trainval, test;  // in file order
  std::vector<PetSample> all;             // list.txt, in file order

  std::string image_path(const PetSample& sample) const;  // root/images/<name>.jpg
  std::string images_dir() const;                         // root/images
};

// Reads root/annotations/{list,trainval,test}.txt (all three required) with the checks above; class names
// must agree across the three files.
PetsDataset read_pets(const std::string& root, const ReadOptions& options = {});

// One split file on its own (e.g. annotations/full_trainval.txt), with the same line checks. images_dir: the
// directory whose <name>.jpg must exist for every line; "" skips that check. class_names (optional): filled
// with the breed names the file defines (37 entries, "" where unused).
std::vector<PetSample> read_split_file(const std::string& path, const std::string& images_dir = "",
                                       std::vector<std::string>* class_names = nullptr);

// Files in the dataset's images/ directory that no list mentions: any file whose name is not <name>.jpg for
// a name in list.txt, trainval.txt or test.txt (the official release has two such .jpg files and three .mat
// files). Sorted file names, relative to images/.
std::vector<std::string> unlisted_images(const PetsDataset& dataset);

// Per class id, how many samples have it (kNumBreeds entries).
std::vector<int64_t> count_per_class(const std::vector<PetSample>& samples);

}  // namespace thaw::data
