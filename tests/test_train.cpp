// thaw train / eval end to end at small scale on pets-mini (64x64, a few dozen images, ResNet18 from random
// init): the outputs are written and well-formed, a resumed run equals an uninterrupted one bit for bit, a
// NaN loss stops the run with the checkpoint intact, config and run-directory errors name what is wrong.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/cuda_runtime.h"
#include "core/error.h"
#include "core/hdf5_file.h"
#include "data/synthetic.h"
#include "kernels/ops.h"
#include "models/weights.h"
#include "report/plots.h"
#include "tests/support/catch.h"
#include "tests/support/cuda.h"
#include "tests/support/scratch.h"
#include "train/checkpoint.h"
#include "train/config.h"
#include "train/trainer.h"

namespace fs = std::filesystem;
using namespace thaw;
using namespace thaw::train;

namespace {

using test::error_of;

// A 2-epoch run at 32x32, batch 16, on a synthetic dataset in `data`, into runs_dir/name.
TrainConfig synthetic_config(const fs::path& runs_dir, const fs::path& data, const std::string& name,
                             Overrides extra = {}) {
  Overrides o = {{"name", name},          {"runs_dir", runs_dir.string()},
                 {"data", data.string()}, {"weights", "none"},
                 {"image_size", "32"},    {"batch_size", "16"},
                 {"epochs", "2"},         {"threads", "2"}};
  o.insert(o.end(), extra.begin(), extra.end());
  return load_train_config("", o);
}

// 48 images per split, 3 steps of 16 per epoch, layer4 + fc train (BN in train mode: running stats change).
TrainConfig small_config(const fs::path& runs_dir, const std::string& name, Overrides extra = {}) {
  Overrides o = {{"name", name},
                 {"runs_dir", runs_dir.string()},
                 {"data", test::pets_mini_dir().string()},
                 {"weights", "none"},
                 {"image_size", "64"},
                 {"batch_size", "16"},
                 {"epochs", "2"},
                 {"limit", "48"},
                 {"threads", "2"},
                 {"layers", "2"},
                 {"lr", "0.01"}};
  o.insert(o.end(), extra.begin(), extra.end());
  return load_train_config("", o);
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::vector<std::string>> read_csv(const fs::path& path) {
  std::vector<std::vector<std::string>> rows;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> fields;
    std::stringstream ls(line);
    for (std::string f; std::getline(ls, f, ',');)
      fields.push_back(f);
    rows.push_back(fields);
  }
  return rows;
}

void require_same_weights(const fs::path& a, const fs::path& b) {
  const auto wa = models::read_weights(a.string()), wb = models::read_weights(b.string());
  REQUIRE(wa.tensors.size() == wb.tensors.size());
  for (const auto& [name, t] : wa.tensors) {
    INFO(name);
    REQUIRE(wb.tensors.count(name));
    CHECK(t.to_vector<float>() == wb.tensors.at(name).to_vector<float>());
  }
}

}  // namespace

TEST_CASE("train: 2 epochs on pets-mini write well-formed metrics, summary, config and weights") {
  REQUIRE_PETS_MINI();
  test::TempDir tmp;
  const TrainConfig config = small_config(tmp.path, "small");
  REQUIRE(run_training(config, false, {.quiet = true}) == TrainStatus::Completed);
  const fs::path run = tmp.path / "small";

  const auto rows = read_csv(run / "metrics.csv");
  REQUIRE(rows.size() == 3);
  CHECK(rows[0] == std::vector<std::string>{"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr",
                                            "data_s", "compute_s", "images_per_s"});
  for (size_t r = 1; r < rows.size(); ++r) {
    REQUIRE(rows[r].size() == 9);
    CHECK(std::stoi(rows[r][0]) == int(r));
    for (const auto& f : rows[r])
      CHECK(std::isfinite(std::stod(f)));
    CHECK(std::stod(rows[r][1]) > 0);
    CHECK(std::stod(rows[r][2]) >= 0);
    CHECK(std::stod(rows[r][2]) <= 1);
    CHECK(std::stod(rows[r][4]) <= 1);
    CHECK(std::stod(rows[r][5]) == 0.01);
    CHECK(std::stod(rows[r][8]) > 0);
  }

  const auto summary = nlohmann::json::parse(read_text(run / "summary.json"));
  const double acc = summary.at("test_accuracy").get<double>();
  CHECK(acc >= 0);
  CHECK(acc <= 1);
  CHECK(std::isfinite(summary.at("test_loss").get<double>()));
  REQUIRE(summary.at("class_names").size() == 37);
  CHECK(summary.at("class_names")[0] == "Abyssinian");
  REQUIRE(summary.at("per_class_accuracy").size() == 37);
  REQUIRE(summary.at("confusion").size() == 37);
  int64_t total = 0, correct = 0;
  for (size_t i = 0; i < 37; ++i) {
    REQUIRE(summary["confusion"][i].size() == 37);
    for (size_t j = 0; j < 37; ++j)
      total += summary["confusion"][i][j].get<int64_t>();
    correct += summary["confusion"][i][i].get<int64_t>();
  }
  CHECK(total == 48);
  CHECK(correct == std::lround(acc * 48));
  CHECK(summary.at("history").size() == 2);

  const H5File weights = H5File::open((run / "weights.h5").string());
  CHECK(weights.attr_string("arch") == "resnet18");
  CHECK(weights.attr_int("num_classes") == 37);
  CHECK(weights.attr_string("task") == "breeds");
  CHECK(weights.attr_int("image_size") == 64);
  const std::string names = weights.attr_string("class_names");
  CHECK(std::count(names.begin(), names.end(), '\n') == 36);
  CHECK(names.rfind("Abyssinian\namerican_bulldog\n", 0) == 0);

  // metrics.csv and the checkpoint hold the same EpochMetrics (the times to the csv's rounding).
  const std::vector<EpochMetrics> from_csv = report::read_metrics_csv((run / "metrics.csv").string());
  const std::vector<EpochMetrics> from_checkpoint = load_checkpoint(run.string(), nullptr, nullptr).metrics;
  REQUIRE(from_csv.size() == 2);
  REQUIRE(from_checkpoint.size() == 2);
  for (size_t e = 0; e < 2; ++e) {
    const EpochMetrics &a = from_csv[e], &b = from_checkpoint[e];
    CHECK(a.epoch == b.epoch);
    CHECK(std::vector{a.train_loss, a.train_acc, a.val_loss, a.val_acc, a.lr} ==
          std::vector{b.train_loss, b.train_acc, b.val_loss, b.val_acc, b.lr});
    CHECK(std::abs(a.data_s - b.data_s) <= 1e-3);
    CHECK(std::abs(a.compute_s - b.compute_s) <= 1e-3);
    CHECK(std::abs(a.images_per_s - b.images_per_s) <= 0.1);
  }

  // The saved config is complete: it reads back to the same config.
  CHECK(train_config_diff(train_config_from_toml(read_text(run / "config.toml")), config).empty());
  CHECK(fs::exists(run / "checkpoint.h5"));
  // The plots of the run, one polyline per series (train, val) in each curve.
  for (const char* plot : {"loss.svg", "accuracy.svg"}) {
    const std::string svg = read_text(run / plot);
    INFO(plot);
    CHECK(svg.find("<svg") != std::string::npos);
    size_t polylines = 0;
    for (size_t at = svg.find("<polyline"); at != std::string::npos; at = svg.find("<polyline", at + 1))
      ++polylines;
    CHECK(polylines == 2);
  }
  CHECK(read_text(run / "index.html").find("confusion.svg") != std::string::npos);
  // A second run under the same name without --resume is refused.
  CHECK_THAT(error_of([&] { run_training(config, false, {.quiet = true}); }), ContainsSubstring("--resume"));
}

TEST_CASE("train: interrupted mid-epoch and resumed equals an uninterrupted run bit for bit") {
  REQUIRE_PETS_MINI();
  test::TempDir tmp;
  const TrainConfig whole = small_config(tmp.path, "whole");
  REQUIRE(run_training(whole, false, {.quiet = true}) == TrainStatus::Completed);

  const TrainConfig split = small_config(tmp.path, "split");
  // Ctrl-C during step 2 of epoch 1: the step finishes, a checkpoint is written, the run returns.
  const TrainHooks ctrl_c_at_step_2 = {
      .interrupt_after = [](int64_t global_step) { return global_step == 2; }, .quiet = true};
  REQUIRE(run_training(split, false, ctrl_c_at_step_2) == TrainStatus::Interrupted);
  const CheckpointState saved = load_checkpoint((tmp.path / "split").string(), nullptr, nullptr);
  CHECK(saved.epoch == 0);
  CHECK(saved.step == 2);
  CHECK_FALSE(fs::exists(tmp.path / "split" / "weights.h5"));
  REQUIRE(run_training(split, true, {.quiet = true}) == TrainStatus::Completed);

  require_same_weights(tmp.path / "whole" / "weights.h5", tmp.path / "split" / "weights.h5");
  const auto a = read_csv(tmp.path / "whole" / "metrics.csv"),
             b = read_csv(tmp.path / "split" / "metrics.csv");
  REQUIRE(a.size() == b.size());
  for (size_t r = 0; r < a.size(); ++r)
    for (size_t c = 0; c < 6; ++c)
      CHECK(a[r][c] == b[r][c]);  // epoch .. lr (not the times)
  const auto sa = nlohmann::json::parse(read_text(tmp.path / "whole" / "summary.json"));
  const auto sb = nlohmann::json::parse(read_text(tmp.path / "split" / "summary.json"));
  CHECK(sa["test_accuracy"] == sb["test_accuracy"]);
  CHECK(sa["test_loss"] == sb["test_loss"]);
  CHECK(sa["confusion"] == sb["confusion"]);

  // Resuming with a changed key (other than epochs/threads) is refused, naming it.
  const TrainConfig changed = small_config(tmp.path, "split", {{"lr", "0.1"}});
  CHECK_THAT(error_of([&] { run_training(changed, true, {.quiet = true}); }),
             ContainsSubstring("lr: 0.01 -> 0.1"));
}

TEST_CASE("train: a NaN loss stops the run naming epoch and step, and keeps the last good checkpoint") {
  REQUIRE_PETS_MINI();
  test::TempDir tmp;
  const TrainConfig config = small_config(tmp.path, "nan");
  // Step 5 = epoch 2, step 2 (3 steps per epoch).
  const TrainHooks nan_at_step_5 = {
      .filter_loss = [](int64_t global_step, double loss) { return global_step == 5 ? std::nan("") : loss; },
      .quiet = true};
  const std::string message = error_of([&] { run_training(config, false, nan_at_step_5); });
  CHECK_THAT(message, ContainsSubstring("loss is NaN at epoch 2 step 2"));
  CHECK_THAT(message, ContainsSubstring("last good checkpoint"));
  CHECK_THAT(message, ContainsSubstring("checkpoint.h5 (epoch 1 done)"));
  const CheckpointState saved = load_checkpoint((tmp.path / "nan").string(), nullptr, nullptr);
  CHECK(saved.epoch == 1);
  CHECK(saved.step == 0);
  CHECK(saved.metrics.size() == 1);
  CHECK_FALSE(fs::exists(tmp.path / "nan" / "weights.h5"));
  // ... and that checkpoint resumes to the end.
  REQUIRE(run_training(config, true, {.quiet = true}) == TrainStatus::Completed);
}

// The report's code put BatchNorm on its running statistics from epoch 2 (docs/the-report.md). With
// bn_frozen_from_epoch = 2, epoch 1 trains as usual and epoch 2 leaves every running statistic as epoch 1
// left it, while the weights go on training: so the 2-epoch run's running statistics equal, bit for bit,
// those of the same run stopped after epoch 1, and its weights do not. A resume from inside epoch 2 freezes
// again.
TEST_CASE("train: bn_frozen_from_epoch keeps the running statistics from that epoch on") {
  REQUIRE_PETS_MINI();
  test::TempDir tmp;
  const TrainHooks quiet{.quiet = true};
  REQUIRE(run_training(small_config(tmp.path, "one", {{"epochs", "1"}}), false, quiet) ==
          TrainStatus::Completed);
  REQUIRE(run_training(small_config(tmp.path, "two", {{"bn_frozen_from_epoch", "2"}}), false, quiet) ==
          TrainStatus::Completed);
  const auto one = models::read_weights((tmp.path / "one" / "weights.h5").string());
  const auto two = models::read_weights((tmp.path / "two" / "weights.h5").string());
  int64_t stats = 0, trained = 0;
  for (const auto& [name, t] : one.tensors) {
    INFO(name);
    const bool running = name.ends_with("running_mean") || name.ends_with("running_var");
    const bool same = t.to_vector<float>() == two.tensors.at(name).to_vector<float>();
    if (running) {
      CHECK(same);
      ++stats;
    } else if (name.starts_with("layer4") || name.starts_with("fc")) {
      CHECK(!same);  // trainable: epoch 2 moved it
      ++trained;
    }
  }
  CHECK(stats == 2 * 20);  // ResNet18: 20 BatchNorm layers
  CHECK(trained > 0);

  // Interrupted inside epoch 2 and resumed: the same run, bit for bit (BatchNorm frozen again on resume).
  const TrainConfig split = small_config(tmp.path, "split", {{"bn_frozen_from_epoch", "2"}});
  REQUIRE(run_training(split, false,
                       {.interrupt_after = [](int64_t step) { return step == 5; }, .quiet = true}) ==
          TrainStatus::Interrupted);
  REQUIRE(run_training(split, true, quiet) == TrainStatus::Completed);
  require_same_weights(tmp.path / "two" / "weights.h5", tmp.path / "split" / "weights.h5");
}

TEST_CASE("train config: threads sets the compute pool the loader is sized to, 0 keeps the pool's default") {
  const int before = ops::cpu_threads();
  CHECK(train::apply_threads(3) == 3);
  CHECK(ops::cpu_threads() == 3);
  CHECK(train::apply_threads(0) == 3);  // 0: whatever the pool has
  CHECK(train::apply_threads(1) == 1);
  CHECK(ops::cpu_threads() == 1);
  CHECK_THROWS_WITH(train::apply_threads(-1), ContainsSubstring("threads: -1"));
  ops::set_cpu_threads(before);
}

// toml++ 3.3 has undefined behaviour on some non-ASCII characters where it expects whitespace
// (train/config.cpp toml_refusal): they are refused, naming file, line and column, before it parses; strings
// and comments keep them.
TEST_CASE("train config: non-ASCII outside strings and comments is refused by position, inside them kept") {
  test::TempDir tmp;
  const fs::path file = tmp.path / "exp.toml";
  const Overrides base = {{"data", "d"}, {"weights", "none"}};
  auto load_file = [&](const std::string& text, Overrides o) {
    std::ofstream(file) << text;
    return load_train_config(file.string(), o);
  };
  auto error_loading = [&](const std::string& text) { return error_of([&] { load_file(text, base); }); };
  CHECK(load_file("name = \"caf\xc3\xa9\" # \xc2\xa7 comment\n", base).name == "caf\xc3\xa9");
  CHECK(load_file("name = 'a\\\"\xc2\xa7'\n", base).name == "a\\\"\xc2\xa7");  // literal: no escapes
  CHECK_THAT(error_loading("epochs = 3\n\xc3\xa9 = 1\n"),
             ContainsSubstring("exp.toml: line 2, column 1: a non-ASCII character outside a string"));
  CHECK_THAT(error_loading("name = \"a\\\" \xc2\xa7\"\nlr = 1\xc2\xa7\n"),
             ContainsSubstring("line 2, column 7"));
  CHECK_THAT(error_loading("name = \"\"\"\\\n\xc2\xa7\"\"\"\n"),
             ContainsSubstring("line 2, column 1: a non-ASCII character in a multi-line string"));
  Overrides named = base;
  named.push_back({"name", "caf\xc3\xa9"});
  CHECK(load_train_config("", named).name == "caf\xc3\xa9");  // a string key takes the bare text
  Overrides bad = base;
  bad.push_back({"lr", "\xc2\xa7"});
  CHECK_THAT(error_of([&] { load_train_config("", bad); }),
             ContainsSubstring("--lr: '\xc2\xa7' is not a TOML value"));
}

TEST_CASE("train config: unknown keys, bad values and missing keys are errors naming the key") {
  test::TempDir tmp;
  const fs::path file = tmp.path / "exp.toml";
  auto load_file = [&](const std::string& text, Overrides o = {{"data", "d"}, {"weights", "none"}}) {
    std::ofstream(file) << text;
    return error_of([&] { load_train_config(file.string(), o); });
  };
  const std::string unknown = load_file("epochs = 3\nlearning_rate = 0.1\n");
  CHECK_THAT(unknown, ContainsSubstring("exp.toml:2"));
  CHECK_THAT(unknown, ContainsSubstring("unknown key 'learning_rate'"));
  CHECK_THAT(unknown, ContainsSubstring("lr,"));
  const std::string choice = load_file("optimizer = \"rmsprop\"\n");
  CHECK_THAT(choice, ContainsSubstring("optimizer = 'rmsprop'"));
  CHECK_THAT(choice, ContainsSubstring("sgd|adam|adamw"));
  CHECK_THAT(load_file("epochs = 0\n"), ContainsSubstring("an integer in 1..100000"));
  CHECK_THAT(load_file("augment = \"yes\"\n"),
             ContainsSubstring("augment = 'yes' is not allowed; expected true or false"));
  CHECK_THAT(load_file("lr = \n"), ContainsSubstring("exp.toml:1"));  // TOML syntax error, with its line
  CHECK_THAT(load_file("momentum = 0.0\n"), ContainsSubstring("nesterov: true needs momentum > 0"));
  CHECK(load_file("momentum = 0.0\nnesterov = false\n") == "(no error)");
  CHECK_THAT(load_file("", {{"data", "d"}, {"weights", "none"}, {"batch_size", "big"}}),
             ContainsSubstring("--batch_size"));
  CHECK_THAT(load_file("", {{"data", "d"}, {"weights", "none"}, {"colour", "1"}}),
             ContainsSubstring("unknown key 'colour'"));
  CHECK_THAT(load_file("", {{"data", "d"}}), ContainsSubstring("weights: not set"));
  CHECK_THAT(load_file("", {{"weights", "none"}}), ContainsSubstring("data: not set"));
  CHECK_THAT(load_file("", {{"data", "d"}, {"weights", "none"}, {"device", "tpu"}}),
             ContainsSubstring("device"));
  CHECK_THAT(load_file("task = \"breeds\"\nloss = \"bce\"\n"),
             ContainsSubstring("bce needs task = \"species\""));
  CHECK_THAT(load_file("bn_mode = \"frozen\"\nbn_frozen_from_epoch = 2\n"),
             ContainsSubstring("bn_frozen_from_epoch: 2 needs bn_mode = \"train\""));
  CHECK_THAT(load_file("epochs = 3\nbn_frozen_from_epoch = 4\n"),
             ContainsSubstring("bn_frozen_from_epoch: 4 is after the last epoch (3)"));
  CHECK_THAT(
      load_file("cache = true\ncache_on_device = true\n"),
      ContainsSubstring("cache_on_device: keeps the decoded-image cache on the device, so it needs cache = "
                        "true and device_transforms = true (cache is true, device_transforms false)"));
  CHECK(load_file("cache = true\ndevice_transforms = true\ncache_on_device = true\n") == "(no error)");

  // Overrides win over the file; types follow the key; the name defaults to the file's stem.
  std::ofstream(file) << "epochs = 3\nlr = 0.5\n";
  const TrainConfig c = load_train_config(
      file.string(), {{"data", "d"}, {"weights", "none"}, {"lr", "0.01"}, {"layer_lrs", "[]"}});
  CHECK(c.name == "exp");
  CHECK(c.epochs == 3);
  CHECK(c.lr == 0.01);
  CHECK(c.loss == "cross_entropy");  // auto, resolved
  CHECK(c.schedule == "step");
  CHECK(config_key_of_flag("--batch-size") == "batch_size");
}

// docs/training.md lists every key as train_config_keys_markdown() does: the table cannot drift from the
// code.
TEST_CASE("train config: docs/training.md's table of keys is the code's") {
  const std::string doc = read_text(fs::path(THAW_SOURCE_DIR) / "docs" / "training.md");
  const std::string table = train_config_keys_markdown();
  INFO("the table docs/training.md must hold (print it with thaw train --list-keys):\n" << table);
  CHECK(doc.find(table) != std::string::npos);
}

TEST_CASE("train config: every experiments/*.toml loads") {
  int files = 0;
  for (const auto& entry : fs::directory_iterator(fs::path(THAW_SOURCE_DIR) / "experiments")) {
    if (entry.path().extension() != ".toml") continue;
    INFO(entry.path());
    ++files;
    const TrainConfig c = load_train_config(entry.path().string(), {{"data", "d"}, {"weights", "w.h5"}});
    CHECK(c.name == entry.path().stem().string());
  }
  CHECK(files >= 30);
}

TEST_CASE("train: an unwritable run directory is an error before any data is read") {
  test::TempDir tmp;
  std::ofstream(tmp.path / "a_file") << "not a directory";
  TrainConfig c = load_train_config("", {{"name", "x"},
                                         {"runs_dir", (tmp.path / "a_file" / "runs").string()},
                                         {"data", (tmp.path / "no_data_here").string()},
                                         {"weights", "none"}});
  CHECK_THAT(error_of([&] { run_training(c, false, {.quiet = true}); }), ContainsSubstring("run directory"));
}

namespace {

// A copy of part of pets-mini (annotation lines and links to its images) in which one training image is a
// zero-byte file.
fs::path dataset_with_an_empty_image(const fs::path& root) {
  const fs::path mini = test::pets_mini_dir();
  fs::create_directories(root / "images");
  fs::create_directories(root / "annotations");
  std::ofstream list(root / "annotations" / "list.txt");
  std::string empty_name;
  for (const auto& [file, count] : {std::pair<const char*, int>{"trainval.txt", 30}, {"test.txt", 20}}) {
    std::ifstream in(mini / "annotations" / file);
    std::ofstream out(root / "annotations" / file);
    std::string line;
    for (int kept = 0; kept < count && std::getline(in, line);) {
      if (line.empty() || line[0] == '#') continue;
      out << line << "\n";
      list << line << "\n";
      const std::string name = line.substr(0, line.find(' '));
      const fs::path image = root / "images" / (name + ".jpg");
      if (empty_name.empty()) {
        empty_name = name;
        std::ofstream(image, std::ios::binary).close();  // zero bytes
      } else {
        fs::create_symlink(mini / "images" / (name + ".jpg"), image);
      }
      ++kept;
    }
  }
  return root / "images" / (empty_name + ".jpg");
}

}  // namespace

TEST_CASE("train: skip_bad leaves an undecodable image out and without it the run stops naming the file") {
  REQUIRE_PETS_MINI();
  test::TempDir tmp;
  const fs::path empty = dataset_with_an_empty_image(tmp.path / "data");
  const Overrides small = {{"data", (tmp.path / "data").string()},
                           {"limit", "0"},
                           {"epochs", "1"},
                           {"image_size", "32"},
                           {"batch_size", "8"}};
  Overrides skipping = small;
  skipping.push_back({"skip_bad", "true"});
  REQUIRE(run_training(small_config(tmp.path, "skip", skipping), false, {.quiet = true}) ==
          TrainStatus::Completed);
  CHECK(fs::exists(tmp.path / "skip" / "weights.h5"));
  const std::string message =
      error_of([&] { run_training(small_config(tmp.path, "stop", small), false, {.quiet = true}); });
  CHECK_THAT(message, ContainsSubstring(empty.string()));
  CHECK_THAT(message, ContainsSubstring("empty"));
}

// The whole training path on a GPU (forward, loss, backward, optimizer, BatchNorm statistics, evaluation, the
// checkpoint and weights files) against the same run on the CPU, on a small generated dataset (so that it
// runs on the lent GPU machine, which has no pets-mini: scripts/gpu-check.sh). The two backends sum in
// different orders, so the numbers agree to float32 rounding grown over 14 SGD steps, not bit for bit.
TEST_CASE("train on CUDA: a short run matches the same run on the CPU", "[cuda]") {
  THAW_SKIP_WITHOUT_CUDA("the CUDA training run");
  test::TempDir tmp;
  const fs::path data = tmp.path / "patterns";
  data::write_synthetic_dataset(data.string(), {.set = data::PatternSet::Target,
                                                .image_size = 32,
                                                .trainval_per_class = 4,
                                                .test_per_class = 2,
                                                .seed = 3});
  const auto config_on = [&](const std::string& device) {
    return synthetic_config(tmp.path, data, device, {{"device", device}, {"lr", "0.01"}});
  };
  REQUIRE(run_training(config_on("cpu"), false, {.quiet = true}) == TrainStatus::Completed);
  REQUIRE(run_training(config_on("cuda"), false, {.quiet = true}) == TrainStatus::Completed);

  const auto cpu_rows = read_csv(tmp.path / "cpu" / "metrics.csv");
  const auto cuda_rows = read_csv(tmp.path / "cuda" / "metrics.csv");
  REQUIRE(cpu_rows.size() == 3);
  REQUIRE(cuda_rows.size() == 3);
  for (size_t r = 1; r < 3; ++r) {
    INFO("epoch " << r);
    for (size_t column : {1, 3}) {  // train_loss, val_loss
      const double cpu = std::stod(cpu_rows[r][column]), cuda = std::stod(cuda_rows[r][column]);
      CHECK(std::isfinite(cuda));
      CHECK(std::abs(cuda - cpu) <= 1e-3 * std::max(1.0, std::abs(cpu)));
    }
  }
  const auto cpu_summary = nlohmann::json::parse(read_text(tmp.path / "cpu" / "summary.json"));
  const auto cuda_summary = nlohmann::json::parse(read_text(tmp.path / "cuda" / "summary.json"));
  // 74 test images: a near-tie may flip a prediction or two.
  CHECK(std::abs(cuda_summary.at("test_accuracy").get<double>() -
                 cpu_summary.at("test_accuracy").get<double>()) <= 2.5 / 74);

  const auto cpu_weights = models::read_weights((tmp.path / "cpu" / "weights.h5").string());
  const auto cuda_weights = models::read_weights((tmp.path / "cuda" / "weights.h5").string());
  REQUIRE(cuda_weights.tensors.size() == cpu_weights.tensors.size());
  for (const auto& [name, t] : cpu_weights.tensors) {
    INFO(name);
    REQUIRE(cuda_weights.tensors.count(name));
    const std::vector<float> a = t.to_vector<float>(), b = cuda_weights.tensors.at(name).to_vector<float>();
    double worst = 0, scale = 1e-6;
    for (size_t i = 0; i < a.size(); ++i) {
      worst = std::max(worst, double(std::abs(a[i] - b[i])));
      scale = std::max(scale, double(std::abs(a[i])));
    }
    CHECK(worst <= 1e-3 * scale);
  }
}

TEST_CASE("train: precision tf32 on the CPU computes float32 and gives the fp32 run numbers and says so") {
  test::TempDir tmp;
  const fs::path data = tmp.path / "patterns";
  data::write_synthetic_dataset(data.string(), {.set = data::PatternSet::Target,
                                                .image_size = 16,
                                                .trainval_per_class = 2,
                                                .test_per_class = 1,
                                                .seed = 5});
  const auto config_in = [&](const std::string& precision) {
    return load_train_config("", {{"name", precision},
                                  {"runs_dir", tmp.path.string()},
                                  {"data", data.string()},
                                  {"weights", "none"},
                                  {"precision", precision},
                                  {"image_size", "16"},
                                  {"batch_size", "16"},
                                  {"epochs", "1"},
                                  {"threads", "2"}});
  };
  REQUIRE(run_training(config_in("fp32"), false, {.quiet = true}) == TrainStatus::Completed);
  REQUIRE(run_training(config_in("tf32"), false, {.quiet = true}) == TrainStatus::Completed);
  const auto fp32 = nlohmann::json::parse(read_text(tmp.path / "fp32" / "summary.json"));
  const auto tf32 = nlohmann::json::parse(read_text(tmp.path / "tf32" / "summary.json"));
  CHECK(fp32.at("precision") == nlohmann::json{{"requested", "fp32"}, {"computed", "fp32"}});
  CHECK(tf32.at("precision") == nlohmann::json{{"requested", "tf32"}, {"computed", "fp32"}});
  const auto rows_fp32 = read_csv(tmp.path / "fp32" / "metrics.csv");
  const auto rows_tf32 = read_csv(tmp.path / "tf32" / "metrics.csv");
  REQUIRE(rows_fp32.size() == 2);
  REQUIRE(rows_tf32.size() == 2);
  for (size_t column : {1, 2, 3, 4})  // train_loss, train_acc, val_loss, val_acc: the same bits
    CHECK(rows_tf32[1][column] == rows_fp32[1][column]);
  require_same_weights(tmp.path / "fp32" / "weights.h5", tmp.path / "tf32" / "weights.h5");
  CHECK_THAT(read_text(tmp.path / "tf32" / "index.html"),
             ContainsSubstring("<tr><th>precision</th><td>tf32 (computed in fp32)</td></tr>"));
}

TEST_CASE("train: device_transforms and cache_on_device give the run of cache = true bit for bit") {
  test::TempDir tmp;
  const fs::path data = tmp.path / "patterns";
  data::write_synthetic_dataset(data.string(), {.set = data::PatternSet::Target,
                                                .image_size = 40,
                                                .trainval_per_class = 2,
                                                .test_per_class = 1,
                                                .seed = 6});
  const auto config_with = [&](const std::string& name, const std::string& device, bool device_transforms,
                               bool cache_on_device = false) {
    return synthetic_config(tmp.path, data, name,
                            {{"device", device},
                             {"augment", "true"},
                             {"cache", "true"},
                             {"device_transforms", device_transforms ? "true" : "false"},
                             {"cache_on_device", cache_on_device ? "true" : "false"}});
  };
  const auto same_runs = [&](const std::string& a, const std::string& b) {
    const auto rows_a = read_csv(tmp.path / a / "metrics.csv"),
               rows_b = read_csv(tmp.path / b / "metrics.csv");
    REQUIRE(rows_a.size() == 3);
    REQUIRE(rows_b.size() == 3);
    for (size_t r = 1; r < 3; ++r)
      for (size_t column : {1, 2, 3, 4})  // train_loss, train_acc, val_loss, val_acc
        CHECK(rows_a[r][column] == rows_b[r][column]);
    require_same_weights(tmp.path / a / "weights.h5", tmp.path / b / "weights.h5");
  };
  REQUIRE(run_training(config_with("workers", "cpu", false), false, {.quiet = true}) ==
          TrainStatus::Completed);
  REQUIRE(run_training(config_with("packed", "cpu", true), false, {.quiet = true}) == TrainStatus::Completed);
  same_runs("workers", "packed");
  CHECK_THAT(read_text(tmp.path / "packed" / "config.toml"), ContainsSubstring("device_transforms = true"));
  REQUIRE(run_training(config_with("cached", "cpu", true, true), false, {.quiet = true}) ==
          TrainStatus::Completed);
  same_runs("workers", "cached");

  if (cuda_runtime::built_with_cuda() && cuda_runtime::device_count() > 0) {
    // On one card the CUDA run's steps are deterministic: the same batches give the same run.
    REQUIRE(run_training(config_with("cuda_workers", "cuda", false), false, {.quiet = true}) ==
            TrainStatus::Completed);
    REQUIRE(run_training(config_with("cuda_packed", "cuda", true), false, {.quiet = true}) ==
            TrainStatus::Completed);
    same_runs("cuda_workers", "cuda_packed");
    REQUIRE(run_training(config_with("cuda_cached", "cuda", true, true), false, {.quiet = true}) ==
            TrainStatus::Completed);
    same_runs("cuda_workers", "cuda_cached");
  }
}
