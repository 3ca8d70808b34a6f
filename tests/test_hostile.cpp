// What a hostile but realistic user found (the "no crash, no silent loss, no made-up number" issue), one test
// case per defect, each reproducing it: bad paths given to predict, demo and reproduce; a full disk while the
// optimizer state is written; two runs in one directory; NaN outputs; a byte-order mark; a seed above the
// maximum; weights files that inspect, eval and predict must judge as loading does; class weights naming
// the breed; singleton batches at small image sizes; NaN in a checkpoint; stale temporary files; the head
// kept from --weights; SIGTERM; eval --skip-bad; one --image-size range. Commands are run as a user runs them
// (THAW_EXE, through /bin/sh) where the exit status is the point.
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/hdf5_file.h"
#include "core/rng.h"
#include "data/image.h"
#include "data/pets.h"
#include "models/resnet.h"
#include "models/weights.h"
#include "optim/optimizer.h"
#include "tests/support/catch.h"
#include "tests/support/scratch.h"
#include "train/checkpoint.h"
#include "train/config.h"
#include "train/predict.h"
#include "train/run_dir.h"
#include "train/trained_model.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
using namespace thaw;
using namespace thaw::train;

namespace {

using test::error_of;

// 24 images per split at 32x32, batches of 8, one epoch, fc only: a run of a few seconds on a CPU.
TrainConfig small_config(const fs::path& runs_dir, const std::string& name, Overrides extra = {}) {
  Overrides o = {{"name", name},
                 {"runs_dir", runs_dir.string()},
                 {"data", test::pets_mini_dir().string()},
                 {"weights", "none"},
                 {"image_size", "32"},
                 {"batch_size", "8"},
                 {"epochs", "1"},
                 {"limit", "24"},
                 {"threads", "2"},
                 {"layers", "1"},
                 {"lr", "0.01"}};
  o.insert(o.end(), extra.begin(), extra.end());
  return load_train_config("", o);
}

void write(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string quoted(const std::string& s) {
  return "'" + s + "'";
}

struct CommandResult {
  int status = -1;  // the exit status; 128 + N when a signal N ended the command
  std::string output;
};

// Runs a /bin/sh command line with stdout and stderr together.
CommandResult run_shell(const std::string& command) {
  CommandResult r;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  REQUIRE(pipe);
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0;)
    r.output.append(buffer, n);
  const int status = ::pclose(pipe);
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

CommandResult run_thaw(const std::string& args) {
  return run_shell(quoted(THAW_EXE) + " " + args);
}

std::vector<std::string> pets_class_names() {
  const data::PetsDataset ds = data::read_pets(test::pets_mini_dir().string());
  return ds.class_names;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i)
    out += (i ? "\n" : "") + names[i];
  return out;
}

// A ResNet18 weights file as thaw train writes one (task, class_names, image_size, head), for 37 breeds.
std::string save_trained(const fs::path& path, models::ResNet& model,
                         std::map<std::string, std::string> strings, std::map<std::string, int64_t> ints) {
  models::save_weights(model, path.string(), "test_hostile", strings, ints);
  return path.string();
}

std::map<std::string, std::string> breeds_attrs(const std::vector<std::string>& names) {
  return {{"task", "breeds"}, {"class_names", joined(names)}, {"head", "softmax"}};
}

// A weights file written tensor by tensor, to make the ones save_weights cannot (wrong names or shapes).
void write_weights_file(const fs::path& path, const std::map<std::string, Tensor>& tensors,
                        const std::string& arch, int64_t num_classes) {
  H5File f = H5File::create(path.string());
  for (const auto& [name, t] : tensors)
    f.write(name, t);
  f.set_attr("format", std::string(models::kWeightsFormat));
  f.set_attr("arch", arch);
  f.set_attr("num_classes", num_classes);
  f.commit();
}

std::map<std::string, Tensor> state_of(const models::ResNet& model) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : model.state_dict())
    out[name] = t.clone();
  return out;
}

// A copy of part of pets-mini: the annotation lines `keep` accepts (class id as in the files, 1-based), the
// images linked.
fs::path pets_subset(const fs::path& root, const std::function<bool(int64_t class_id)>& keep) {
  fs::create_directories(root / "annotations");
  fs::create_directory_symlink(test::pets_mini_dir() / "images", root / "images");
  for (const char* file : {"list.txt", "trainval.txt", "test.txt"}) {
    std::ifstream in(test::pets_mini_dir() / "annotations" / file);
    std::ofstream out(root / "annotations" / file);
    for (std::string line; std::getline(in, line);) {
      if (line.empty() || line[0] == '#') continue;
      std::istringstream fields(line);
      std::string name;
      int64_t class_id = 0;
      fields >> name >> class_id;
      if (keep(class_id)) out << line << "\n";
    }
  }
  return root;
}

std::string image(const char* name) {
  return (test::pets_mini_dir() / "images" / name).string();
}

}  // namespace

// ---- 1. predict on a directory or a FIFO
// -------------------------------------------------------------------

TEST_CASE("hostile 1: predict names a directory and a FIFO as bad images and still classifies the rest") {
  REQUIRE_PETS_MINI();
  test::TempDir dir;
  Generator gen(1);
  auto model = models::resnet18(3, gen);
  const std::string weights =
      save_trained(dir.path / "w.h5", *model, {{"class_names", "a\nb\nc"}}, {{"image_size", 32}});
  const fs::path fifo = dir.path / "fifo.jpg";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const std::string good = image("Abyssinian_1.jpg");
  // The good file first: its prediction must still come out.
  const PredictResult r = predict_images(weights, {good, dir.path.string(), fifo.string(), good});
  REQUIRE(r.images.size() == 4);
  CHECK(r.failed() == 2);
  CHECK(r.images[0].error.empty());
  CHECK(r.images[0].top.size() == 3);
  CHECK(r.images[3].error.empty());
  CHECK_THAT(r.images[1].error, ContainsSubstring(dir.path.string()) && ContainsSubstring("is a directory"));
  CHECK_THAT(r.images[2].error, ContainsSubstring(fifo.string()) && ContainsSubstring("not a regular file"));
  CHECK_THROWS_WITH(data::decode_image_file(dir.path.string()), ContainsSubstring("is a directory"));

  // The command: predictions on stdout, one error line per bad argument, exit status 1 (not an abort).
  const CommandResult cmd = run_thaw("predict " + quoted(weights) + " " + quoted(good) + " " +
                                     quoted(dir.path.string()) + " " + quoted(fifo.string()));
  INFO(cmd.output);
  CHECK(cmd.status == 1);
  CHECK_THAT(cmd.output, ContainsSubstring(good + "\n   1. "));
  CHECK_THAT(cmd.output, ContainsSubstring("thaw predict: error: cannot read image '" + dir.path.string() +
                                           "': it is a directory"));
  CHECK_THAT(cmd.output, ContainsSubstring("2 of 3 images failed"));
}

// ---- 2. demo and reproduce with an output directory that cannot be made
// ------------------------------------

TEST_CASE("hostile 2: demo and reproduce name an --out / --runs-dir that cannot be created, exit status 1") {
  test::TempDir dir;
  write(dir.path / "a_file", "not a directory\n");
  const std::string under_file = (dir.path / "a_file" / "out").string();
  for (const std::string& out : {under_file, std::string("/proc/thaw-demo")}) {
    const CommandResult demo = run_thaw("demo --out " + quoted(out));
    INFO(demo.output);
    CHECK(demo.status == 1);
    CHECK_THAT(demo.output, ContainsSubstring("thaw: error: --out '" + out + "': cannot "));
  }
  const CommandResult reproduce =
      run_thaw("reproduce --data /nonexistent --weights-dir none --only breeds_l1 --experiments " +
               quoted(std::string(THAW_SOURCE_DIR) + "/experiments") + " --runs-dir " + quoted(under_file));
  INFO(reproduce.output);
  CHECK(reproduce.status == 1);
  CHECK_THAT(reproduce.output, ContainsSubstring("--runs-dir '" + under_file + "' cannot be created"));
}

// ---- 3. a full disk while the optimizer state is written
// ---------------------------------------------------

TEST_CASE(
    "hostile 3: an HDF5 write that fails for lack of space is an error, and the process exits cleanly") {
  // In a child process with a 100 kB file-size limit (and SIGXFSZ ignored, so that write() fails with EFBIG
  // as it fails with ENOSPC on a full disk): before the fix HDF5 kept the failed file open and crashed in its
  // exit-time cleanup. The child checks the message and exits through exit(), which runs that cleanup.
  test::TempDir dir;
  const std::string path = (dir.path / "big.h5").string();
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    std::signal(SIGXFSZ, SIG_IGN);
    const rlimit limit{100000, 100000};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    int code = 2;  // no error at all
    try {
      H5File f = H5File::create(path);
      f.write("x", Tensor::ones({1000000}));
      f.commit();
    } catch (const Error& e) {
      const std::string message = e.what();
      code = message.find(path + ".tmp-") != std::string::npos &&
                     message.find("File too large") != std::string::npos
                 ? 0
                 : 3;
    }
    std::exit(code);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  INFO("child status " << status);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK_FALSE(fs::exists(path));
  for (const auto& entry : fs::directory_iterator(dir.path))
    CHECK(entry.path().filename().string().find(".tmp") == std::string::npos);
}

TEST_CASE(
    "hostile 3: thaw train on a disk that fills up while the optimizer state is written: an error, no "
    "crash") {
  REQUIRE_PETS_MINI();
  test::TempDir dir;
  // layer4 + fc train: the optimizer state (momentum, 8.4 M values, 34 MB) is the first file over the limit
  // (20000 blocks of 512 bytes for dash's ulimit, of 1024 for bash's: 10 or 20 MB).
  const CommandResult r = run_shell("trap '' XFSZ; ulimit -f 20000; exec " + quoted(THAW_EXE) + " train " +
                                    quoted(std::string(THAW_SOURCE_DIR) + "/experiments/breeds_l2.toml") +
                                    " --data " + quoted(test::pets_mini_dir().string()) +
                                    " --weights none --name full --runs-dir " + quoted(dir.path.string()) +
                                    " --image-size 32 --batch-size 8 --epochs 1 --limit 16 --threads 2");
  INFO(r.output);
  CHECK(r.status == 1);
  CHECK_THAT(r.output,
             ContainsSubstring("thaw: error: " + (dir.path / "full").string() + "/optimizer-e1-s0.h5.tmp-"));
  CHECK_THAT(r.output, ContainsSubstring("File too large"));
  CHECK(r.output.find("Segmentation") == std::string::npos);
  for (const auto& entry : fs::directory_iterator(dir.path / "full"))
    CHECK(entry.path().filename().string().find(".tmp") == std::string::npos);
}

// ---- 4. two runs in one directory
// --------------------------------------------------------------------------

TEST_CASE(
    "hostile 4: a run owns its directory from its first moment, and a crashed run's lock file does not wedge "
    "it") {
  REQUIRE_PETS_MINI();
  test::TempDir tmp;
  const TrainConfig config = small_config(tmp.path, "shared");
  const fs::path run_dir = tmp.path / "shared";
  fs::create_directories(run_dir);
  {
    RunDirLock first(run_dir.string());  // a run that has started and has no checkpoint yet
    const std::string message = error_of([&] { run_training(config, false, {.quiet = true}); });
    CHECK_THAT(message,
               ContainsSubstring("run directory '" + run_dir.string() +
                                 "' is in use by another run (process " + std::to_string(::getpid()) + ")"));
    CHECK_THROWS_WITH(RunDirLock(run_dir.string()), ContainsSubstring("in use by another run"));
    CHECK_FALSE(fs::exists(run_dir / "config.toml"));  // nothing of the first run was touched
  }
  // What a killed run leaves: the lock file with its (dead) process id. Only a live owner blocks.
  write(run_dir_lock_path(run_dir.string()), "999999999\n");
  REQUIRE(run_training(config, false, {.quiet = true}) == TrainStatus::Completed);
  CHECK_THAT(error_of([&] { run_training(config, false, {.quiet = true}); }),
             ContainsSubstring("already has a checkpoint"));
}

// ---- 5. NaN outputs: no made-up accuracy
// -------------------------------------------------------------------

namespace {

// A ResNet18 for 37 classes with finite weights whose outputs in eval mode are not finite: its first
// BatchNorm's running mean is -3e38 and its running variance tiny, so (x - mean) / sqrt(var + eps)
// overflows to Inf, and the next convolution's mixed-sign weights make NaN of it. In train mode BatchNorm
// uses batch statistics, so training on it goes on with finite losses, and only evaluation meets the NaN
// (as after the lr 10, momentum 0.99 run of the issue).
std::shared_ptr<models::ResNet> diverging_model() {
  Generator gen(5);
  auto model = models::resnet18(37, gen);
  for (const auto& [name, t] : model->state_dict()) {
    if (name == "bn1.running_mean") t.copy_(Tensor::full(t.shape(), -3e38));
    if (name == "bn1.running_var") t.copy_(Tensor::full(t.shape(), 1e-30));
  }
  return model;
}

}  // namespace

TEST_CASE("hostile 5: NaN outputs are an error naming where they appeared, in train, eval and predict") {
  REQUIRE_PETS_MINI();
  test::TempDir tmp;
  const std::vector<std::string> names = pets_class_names();
  auto model = diverging_model();
  const std::string weights =
      save_trained(tmp.path / "diverged.h5", *model, breeds_attrs(names), {{"image_size", 32}});

  // eval: no accuracy from the argmax of NaN; the file and the image are named.
  EvalWeightsOptions options;
  options.threads = 2;
  const std::string eval_error =
      error_of([&] { evaluate_weights(weights, test::pets_mini_dir().string(), options); });
  CHECK_THAT(eval_error, ContainsSubstring(weights) &&
                             ContainsSubstring("the model's outputs are NaN for image '") &&
                             ContainsSubstring("pets-mini/images/"));

  // predict: every image's line is an error, and the exit status says so.
  const PredictResult p = predict_images(weights, {image("Abyssinian_1.jpg"), image("Abyssinian_10.jpg")});
  CHECK(p.failed() == 2);
  CHECK_THAT(p.images[0].error,
             ContainsSubstring("Abyssinian_1.jpg: the model's outputs are NaN for this image"));
  const CommandResult cmd = run_thaw("predict " + quoted(weights) + " " + quoted(image("Abyssinian_1.jpg")));
  CHECK(cmd.status == 1);
  CHECK(cmd.output.find("nan") == std::string::npos);

  // train: fine-tuning these weights trains on batch statistics, then the validation after epoch 1 meets
  // NaN: the run stops there, before that epoch's checkpoint, with no summary and no weights.
  const TrainConfig config = small_config(tmp.path, "nan_val", {{"weights", weights}});
  const std::string train_error = error_of([&] { run_training(config, false, {.quiet = true}); });
  CHECK_THAT(train_error, ContainsSubstring("val after epoch 1: the model's outputs are") &&
                              ContainsSubstring("for image '") &&
                              ContainsSubstring("the run stops; last good checkpoint: none"));
  CHECK_FALSE(fs::exists(tmp.path / "nan_val" / "summary.json"));
  CHECK_FALSE(fs::exists(tmp.path / "nan_val" / "checkpoint.h5"));
}

// ---- 6. a UTF-8 byte-order mark
// ----------------------------------------------------------------------------

TEST_CASE("hostile 6: a UTF-8 byte-order mark is skipped and a UTF-16 file is named as such") {
  test::TempDir tmp;
  const fs::path bom = tmp.path / "bom.txt";
  write(bom,
        "\xEF\xBB\xBF"
        "Abyssinian_1 1 1 1\r\namerican_bulldog_1 2 2 1\r\n");
  std::vector<std::string> names;
  const std::vector<data::PetSample> samples = data::read_split_file(bom.string(), "", &names);
  REQUIRE(samples.size() == 2);
  CHECK(samples[0].name == "Abyssinian_1");
  CHECK(names[0] == "Abyssinian");
  const fs::path utf16 = tmp.path / "utf16.txt";
  write(utf16, std::string("\xFF\xFE"
                           "A\0b\0",
                           6));
  CHECK_THROWS_WITH(data::read_split_file(utf16.string()),
                    ContainsSubstring(utf16.string() + ": the file is UTF-16"));
}

// ---- 7. seeds above the maximum
// ----------------------------------------------------------------------------

TEST_CASE("hostile 7: a seed above 2^53 is refused, not rounded") {
  const Overrides base = {{"name", "x"}, {"data", "d"}, {"weights", "none"}};
  Overrides big = base;
  big.push_back({"seed", "9007199254740993"});
  CHECK_THROWS_WITH(
      load_train_config("", big),
      ContainsSubstring(
          "seed = 9007199254740993 is not allowed; expected an integer in 0..9007199254740992"));
  Overrides max = base;
  max.push_back({"seed", "9007199254740992"});
  CHECK(load_train_config("", max).seed == 9007199254740992ull);
  test::TempDir tmp;
  write(tmp.path / "c.toml", "seed = 9007199254740993\n");
  CHECK_THROWS_WITH(load_train_config((tmp.path / "c.toml").string(), base),
                    ContainsSubstring("c.toml:1: seed = "));
}

// ---- 8. weights inspect reports what loading rejects
// -------------------------------------------------------

TEST_CASE("hostile 8: thaw weights inspect fails, naming the problem, on every file loading rejects") {
  test::TempDir tmp;
  Generator gen(2);
  const auto good = state_of(*models::resnet18(4, gen));
  struct Case {
    std::string name, problem;
    std::map<std::string, Tensor> tensors;
    std::string arch = "resnet18";
    int64_t num_classes = 4;
  };
  std::vector<Case> cases;
  cases.push_back({"missing", "missing 'layer1.0.conv1.weight'", good});
  cases.back().tensors.erase("layer1.0.conv1.weight");
  cases.push_back({"extra", "unexpected 'layer5.weight'", good});
  cases.back().tensors["layer5.weight"] = Tensor::ones({2});
  cases.push_back(
      {"misshaped", "'layer1.0.bn1.weight' has shape [32] in the file, the model expects [64]", good});
  cases.back().tensors["layer1.0.bn1.weight"] = Tensor::ones({32});
  cases.push_back({"vgg", "attribute arch = 'vgg16' is not an architecture thaw builds", good, "vgg16"});
  cases.push_back(
      {"classes", "attribute num_classes = 37 disagrees with 'fc.weight' [4, 512]", good, "resnet18", 37});
  for (const Case& c : cases) {
    const fs::path path = tmp.path / (c.name + ".h5");
    write_weights_file(path, c.tensors, c.arch, c.num_classes);
    const CommandResult r = run_thaw("weights inspect " + quoted(path.string()));
    INFO(c.name << ": " << r.output);
    CHECK(r.status == 1);
    CHECK_THAT(r.output, ContainsSubstring("thaw: error: " + path.string()) && ContainsSubstring(c.problem));
  }
  const fs::path ok = tmp.path / "ok.h5";
  write_weights_file(ok, good, "resnet18", 4);
  const CommandResult r = run_thaw("weights inspect " + quoted(ok.string()));
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK_THAT(r.output, ContainsSubstring("loads as resnet18 with 4 classes"));
}

// ---- 9. eval and predict judge tampered attributes alike
// ---------------------------------------------------

TEST_CASE(
    "hostile 9: eval and predict refuse the same tampered attributes, naming the file and the attribute") {
  test::TempDir tmp;
  Generator gen(3);
  auto model = models::resnet18(37, gen);
  std::vector<std::string> names;
  for (int64_t c = 0; c < 37; ++c)
    names.push_back(data::kOfficialBreedNames[c]);
  struct Case {
    std::string name, attribute;
    std::map<std::string, std::string> strings;
    std::map<std::string, int64_t> ints;
  };
  const std::vector<Case> cases = {
      {"size0", "attribute image_size = 0 is not in 8..4096", breeds_attrs(names), {{"image_size", 0}}},
      {"classes0",
       "attribute num_classes = 0 is not >= 1",
       breeds_attrs(names),
       {{"image_size", 32}, {"num_classes", 0}}},
      {"classes2e40",
       "attribute num_classes = 1099511627776 disagrees with 'fc.weight'",
       breeds_attrs(names),
       {{"image_size", 32}, {"num_classes", int64_t(1) << 40}}},
      {"sigmoid",
       "attribute head = 'sigmoid' does not fit a head with 37 output(s)",
       {{"task", "breeds"}, {"class_names", joined(names)}, {"head", "sigmoid"}},
       {{"image_size", 32}}},
      {"birds",
       "attribute task = 'birds' is not one thaw trains",
       {{"task", "birds"}, {"class_names", joined(names)}},
       {{"image_size", 32}}},
      {"species37",
       "attribute task = 'species' has 2 classes, but the head has 37 output(s)",
       {{"task", "species"}, {"class_names", joined(names)}},
       {{"image_size", 32}}},
  };
  for (const Case& c : cases) {
    const std::string path = save_trained(tmp.path / (c.name + ".h5"), *model, c.strings, c.ints);
    INFO(c.name);
    const std::string from_predict = error_of([&] { predict_images(path, {image("Abyssinian_1.jpg")}); });
    const std::string from_eval = error_of([&] { evaluate_weights(path, "/nonexistent"); });
    CHECK_THAT(from_predict, ContainsSubstring(path + ": " + c.attribute));
    CHECK(from_eval == from_predict);
  }
}

// ---- 10. class weights name the breed and the setting
// ------------------------------------------------------

TEST_CASE(
    "hostile 10: a class without training images is named by its breed, after the setting that needs it") {
  REQUIRE_PETS_MINI();
  test::TempDir tmp;
  const fs::path data = pets_subset(tmp.path / "no_bulldogs", [](int64_t id) { return id != 2; });
  const Overrides no_limit = {{"data", data.string()}, {"limit", "0"}};
  Overrides oversample = no_limit;
  oversample.push_back({"oversample", "true"});
  CHECK_THAT(error_of([&] { run_training(small_config(tmp.path, "o", oversample), false, {.quiet = true}); }),
             ContainsSubstring("oversample: class 1 (american_bulldog) has no samples"));
  Overrides weighted = no_limit;
  weighted.push_back({"class_weights", "report"});
  CHECK_THAT(error_of([&] { run_training(small_config(tmp.path, "w", weighted), false, {.quiet = true}); }),
             ContainsSubstring("class_weights: class 1 (american_bulldog) has no samples"));
}

// ---- 11. singleton batches at small image sizes
// ------------------------------------------------------------

TEST_CASE("hostile 11: image sizes down to 8 train, and batch_size 1 at <= 32 is refused before training") {
  REQUIRE_PETS_MINI();
  test::TempDir tmp;
  // 9 training images in batches of 4: the last batch holds one image, which BatchNorm cannot normalise at
  // 1x1 feature maps; it is dropped, and the epoch trains 2 batches.
  for (const char* size : {"32", "8"}) {
    INFO("image_size " << size);
    const TrainConfig c = small_config(tmp.path, std::string("s") + size,
                                       {{"image_size", size}, {"batch_size", "4"}, {"limit", "9"}});
    REQUIRE(run_training(c, false, {.quiet = true}) == TrainStatus::Completed);
    CHECK(fs::exists(tmp.path / (std::string("s") + size) / "weights.h5"));
  }
  CHECK_THAT(error_of([&] {
               run_training(small_config(tmp.path, "one", {{"batch_size", "1"}}), false, {.quiet = true});
             }),
             ContainsSubstring("batch_size: 1 with image_size 32"));
  CHECK_FALSE(fs::exists(tmp.path / "one" / "config.toml"));
  // At 33 the last feature maps are 2x2: a batch of one image works and nothing is dropped.
  REQUIRE(
      run_training(small_config(tmp.path, "s33", {{"image_size", "33"}, {"batch_size", "4"}, {"limit", "9"}}),
                   false, {.quiet = true}) == TrainStatus::Completed);
}

// ---- 12. a checkpoint holding NaN
// ----------------------------------------------------------------------------

namespace {

// checkpoint.h5 rewritten with one value of model/<tensor> replaced by NaN (everything else as it was).
void poison_checkpoint(const fs::path& run_dir, const std::string& tensor) {
  const std::string path = checkpoint_path(run_dir.string());
  const H5File in = H5File::open(path);
  H5File out = H5File::create(path);
  for (const std::string& name : in.datasets("model")) {
    Tensor t = in.read("model/" + name);
    if (name == tensor) t.data<float>()[0] = std::nanf("");
    out.write("model/" + name, t);
  }
  if (in.has("metrics")) out.write("metrics", in.read("metrics"));
  for (const char* attr : {"format", "config", "optimizer_file"})
    out.set_attr(attr, in.attr_string(attr));
  for (const char* attr : {"epoch", "step", "train_correct", "train_seen"})
    out.set_attr(attr, in.attr_int(attr));
  for (const char* attr : {"train_loss_sum", "data_s", "compute_s"})
    out.set_attr(attr, in.attr_double(attr));
  out.commit();
}

}  // namespace

TEST_CASE("hostile 12: a checkpoint holding NaN is refused on --resume, and never written") {
  REQUIRE_PETS_MINI();
  test::TempDir tmp;
  const TrainConfig one = small_config(tmp.path, "poisoned");
  REQUIRE(run_training(one, false, {.quiet = true}) == TrainStatus::Completed);
  poison_checkpoint(tmp.path / "poisoned", "fc.bias");
  TrainConfig two = one;
  two.epochs = 2;
  CHECK_THAT(error_of([&] { run_training(two, true, {.quiet = true}); }),
             ContainsSubstring(
                 "checkpoint.h5': 'model/fc.bias' holds a non-finite value (NaN or Inf) at element 0"));

  // save_checkpoint refuses a model holding NaN, and leaves the checkpoint on disk as it was.
  const fs::path dir = tmp.path / "direct";
  fs::create_directories(dir);
  Generator gen(4);
  auto model = models::resnet18(2, gen);
  optim::SGD sgd({{model->named_parameters(), 0.1, 0, "all"}}, 0.9, false);
  CheckpointState state;
  state.config_toml = "# test\n";
  save_checkpoint(dir.string(), state, *model, sgd);
  for (const auto& [name, t] : model->state_dict())
    if (name == "fc.bias") t.copy_(Tensor::full(t.shape(), std::nan("")));
  state.epoch = 1;
  CHECK_THROWS_WITH(
      save_checkpoint(dir.string(), state, *model, sgd),
      ContainsSubstring("checkpoint not written: the model's 'fc.bias' holds a non-finite value"));
  CHECK(load_checkpoint(dir.string(), nullptr, nullptr).epoch == 0);
}

// ---- 13. what kill -9 leaves behind
// --------------------------------------------------------------------------

TEST_CASE("hostile 13: temporary and orphaned files a killed run left are removed when the run resumes") {
  REQUIRE_PETS_MINI();
  test::TempDir tmp;
  const TrainConfig config = small_config(tmp.path, "killed", {{"epochs", "2"}});
  const fs::path run = tmp.path / "killed";
  REQUIRE(run_training(config, false,
                       {.interrupt_after = [](int64_t step) { return step == 2; }, .quiet = true}) ==
          TrainStatus::Interrupted);
  // kill -9 during a checkpoint write, during a text file's write, and between the optimizer state and the
  // checkpoint that would have named it.
  const std::vector<std::string> stale = {"checkpoint.h5.tmp-4242", "metrics.csv.tmp", "optimizer-e0-s3.h5",
                                          "optimizer-e0-s3.h5.tmp-4242"};
  for (const std::string& name : stale)
    write(run / name, "half a file");
  const std::string named = H5File::open(checkpoint_path(run.string())).attr_string("optimizer_file");
  REQUIRE(run_training(config, true, {.quiet = true}) == TrainStatus::Completed);
  for (const std::string& name : stale) {
    INFO(name);
    CHECK_FALSE(fs::exists(run / name));
  }
  CHECK_FALSE(fs::exists(run / named));  // replaced by the next checkpoint's, as always
  CHECK(fs::exists(run / H5File::open(checkpoint_path(run.string())).attr_string("optimizer_file")));
  CHECK(remove_stale_temp_files(run.string()).empty());
}

// ---- 14. the head of --weights
// -------------------------------------------------------------------------------

TEST_CASE(
    "hostile 14: --weights keeps a head that fits the task unless new_head, and one that does not is "
    "replaced") {
  REQUIRE_PETS_MINI();
  test::TempDir tmp;
  REQUIRE(run_training(small_config(tmp.path, "first"), false, {.quiet = true}) == TrainStatus::Completed);
  const std::string first = (tmp.path / "first" / "weights.h5").string();
  Generator gen(9);
  auto imagenet = models::resnet18(1000, gen);
  const std::string thousand = (tmp.path / "imagenet.h5").string();
  models::save_weights(*imagenet, thousand, "test_hostile");

  // lr 0: the fc of each run's weights.h5 is the one it started from.
  const auto fc_of = [&](const std::string& name, Overrides extra) {
    extra.push_back({"lr", "0"});
    REQUIRE(run_training(small_config(tmp.path, name, extra), false, {.quiet = true}) ==
            TrainStatus::Completed);
    const models::WeightsFile w = models::read_weights((tmp.path / name / "weights.h5").string());
    return w.tensors.at("fc.weight").to_vector<float>();
  };
  const std::vector<float> original = models::read_weights(first).tensors.at("fc.weight").to_vector<float>();
  CHECK(fc_of("kept", {{"weights", first}}) == original);
  const std::vector<float> fresh = fc_of("fresh", {{"weights", first}, {"new_head", "true"}});
  CHECK(fresh != original);
  // A head of another shape is replaced by the same seeded one that new_head gives.
  CHECK(fc_of("replaced", {{"weights", thousand}}) == fresh);
  // The line that says which, on the command line.
  const CommandResult r = run_thaw(
      "train " + quoted(std::string(THAW_SOURCE_DIR) + "/experiments/breeds_l1.toml") + " --data " +
      quoted(test::pets_mini_dir().string()) + " --weights " + quoted(thousand) + " --name cli --runs-dir " +
      quoted(tmp.path.string()) + " --image-size 32 --batch-size 8 --epochs 1 --limit 16 --threads 2");
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK_THAT(r.output,
             ContainsSubstring("weights: fc.weight and fc.bias of " + thousand +
                               " replaced by a new head (seed 42): the file's fc.weight is [1000, 512], "
                               "the task needs [37, 512]"));
}

// ---- also expected: SIGTERM, eval --skip-bad, one --image-size range --------------------------------------

TEST_CASE("hostile extra: SIGTERM stops a run at a checkpoint like Ctrl-C, with exit status 143") {
  REQUIRE_PETS_MINI();
  test::TempDir tmp;
  for (const int signal : {SIGTERM, SIGINT}) {
    const std::string name = signal == SIGTERM ? "term" : "int";
    // The signal arrives while step 2 runs (raised from the hook after step 1): the step finishes, then the
    // checkpoint is written.
    const TrainHooks signal_in_step_2 = {.interrupt_after =
                                             [signal](int64_t step) {
                                               if (step == 1) std::raise(signal);
                                               return false;
                                             },
                                         .quiet = true};
    REQUIRE(run_training(small_config(tmp.path, name), false, signal_in_step_2) == TrainStatus::Interrupted);
    CHECK(interrupt_exit_status() == 128 + signal);
    const CheckpointState saved = load_checkpoint((tmp.path / name).string(), nullptr, nullptr);
    CHECK(saved.epoch == 0);
    CHECK(saved.step == 2);
  }
}

TEST_CASE("hostile extra: thaw eval --skip-bad leaves an undecodable image out and lists it") {
  REQUIRE_PETS_MINI();
  test::TempDir tmp;
  const fs::path data = tmp.path / "data";
  fs::create_directories(data / "annotations");
  fs::create_directories(data / "images");
  const std::string lines = "Abyssinian_1 1 1 1\namerican_bulldog_100 2 2 1\n";
  const std::string test_lines = "Abyssinian_10 1 1 1\nAbyssinian_100 1 1 1\namerican_bulldog_101 2 2 1\n";
  write(data / "annotations" / "trainval.txt", lines);
  write(data / "annotations" / "test.txt", test_lines);
  write(data / "annotations" / "list.txt", lines + test_lines);
  for (const char* name : {"Abyssinian_1", "american_bulldog_100", "Abyssinian_10", "american_bulldog_101"})
    fs::create_symlink(test::pets_mini_dir() / "images" / (std::string(name) + ".jpg"),
                       data / "images" / (std::string(name) + ".jpg"));
  const fs::path empty = data / "images" / "Abyssinian_100.jpg";
  write(empty, "");
  Generator gen(6);
  auto model = models::resnet18(37, gen);
  std::vector<std::string> names;
  for (int64_t c = 0; c < 37; ++c)
    names.push_back(data::kOfficialBreedNames[c]);
  const std::string weights =
      save_trained(tmp.path / "w.h5", *model, breeds_attrs(names), {{"image_size", 32}});

  EvalWeightsOptions options;
  options.threads = 2;
  CHECK_THAT(error_of([&] { evaluate_weights(weights, data.string(), options); }),
             ContainsSubstring(empty.string()) && ContainsSubstring("empty"));
  options.skip_bad = true;
  const EvalWeightsResult r = evaluate_weights(weights, data.string(), options);
  CHECK(r.samples == 3);
  CHECK(r.eval.images == 2);
  CHECK(r.bad_files == std::vector<std::string>{empty.string()});
  const CommandResult cmd =
      run_thaw("eval " + quoted(weights) + " --data " + quoted(data.string()) + " --skip-bad --threads 2");
  INFO(cmd.output);
  CHECK(cmd.status == 0);
  CHECK_THAT(cmd.output, ContainsSubstring("skip_bad: left out 1 undecodable files: " + empty.string()));
  CHECK_THAT(cmd.output, ContainsSubstring("(2/2 images)") || ContainsSubstring("(1/2 images)") ||
                             ContainsSubstring("(0/2 images)"));
}

TEST_CASE("hostile extra: one --image-size range (8..4096) for train, eval and predict") {
  CHECK(kMinImageSize == 8);
  CHECK(kMaxImageSize == 4096);
  const Overrides base = {{"name", "x"}, {"data", "d"}, {"weights", "none"}};
  for (const char* size : {"7", "4097"}) {
    Overrides o = base;
    o.push_back({"image_size", size});
    CHECK_THROWS_WITH(load_train_config("", o), ContainsSubstring("expected an integer in 8..4096"));
    INFO(size);
    for (const char* command : {"predict w.h5 x.jpg --image-size ", "eval w.h5 --data d --image-size "}) {
      const CommandResult r = run_thaw(std::string(command) + size);
      INFO(r.output);
      CHECK(r.status != 0);
      CHECK_THAT(r.output,
                 ContainsSubstring("--image-size: Value ") && ContainsSubstring(" not in range 8 to 4096"));
    }
  }
  PredictOptions options;
  options.image_size = 7;
  CHECK_THROWS_WITH(predict_images("w.h5", {"x.jpg"}, options),
                    ContainsSubstring("--image-size: 7 is not in 8..4096"));
  EvalWeightsOptions eval;
  eval.image_size = 4097;
  CHECK_THROWS_WITH(evaluate_weights("w.h5", "d", eval),
                    ContainsSubstring("--image-size: 4097 is not in 8..4096"));
}
