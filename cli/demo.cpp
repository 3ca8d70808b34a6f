// thaw demo: transfer learning, start to finish, in a few minutes on a laptop CPU with nothing to download.
//
//   1. Generate two small datasets in the Oxford-IIIT Pet layout (data/synthetic.h): a *source* set of 37
//      pattern classes with many images, and a *target* set of 37 other pattern classes with few images.
//   2. Pretrain a ResNet18 from random weights on the source set and save its weights (HDF5): our stand-in
//      for ImageNet pretraining.
//   3. Fine-tune on the target set four ways, exactly as `thaw train` does for the report's experiments:
//      head only (l = 1), the last three layers (l = 3), gradual unfreezing, and from scratch.
//   4. Print the comparison, write demo.md, comparison.svg and every run's own plots, and fail unless
//      pretraining clearly helps (so CI notices when transfer learning breaks).
//
// With --data DIR, the fine-tuning runs use that dataset (e.g. pets-mini) as the target instead; the
// pretraining stays on the generated source set.
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <iterator>

#include "cli/commands.h"
#include "core/atomic_write.h"
#include "core/error.h"
#include "data/synthetic.h"
#include "report/plots.h"
#include "report/run_summary.h"
#include "train/config.h"
#include "train/trainer.h"

namespace thaw::cli {

namespace {

namespace fs = std::filesystem;

struct DemoOptions {
  std::string out = "runs/demo", data, device = "cpu", precision = "fp32";
  int64_t threads = 0, image_size = 32, source_per_class = 60, target_per_class = 10, test_per_class = 10;
  int64_t source_epochs = 3, target_epochs = 8;
  uint64_t seed = 1;
  double min_gain = 0.15;  // pretrained head-only must beat from-scratch by this much test accuracy
};

// One fine-tuning run of the comparison: a name, what trains, and its config keys beyond the base ones.
struct TargetRun {
  std::string name, what;
  bool pretrained;
  train::Overrides keys;
};

const TargetRun kTargetRuns[] = {
    {"head_only",
     "fc only; the pretrained backbone frozen (the report's l = 1)",
     true,
     {{"trainable", "last_layers"}, {"layers", "1"}}},
    {"last_3",
     "layer3, layer4 and fc (the report's l = 3)",
     true,
     {{"trainable", "last_layers"}, {"layers", "3"}}},
    {"gradual",
     "fc, then one more layer every epoch (gradual unfreezing)",
     true,
     {{"trainable", "gradual"}, {"unfreeze_every", "1"}}},
    {"from_scratch", "everything, from random weights: no transfer", false, {{"trainable", "all"}}},
};

// The output directory may be reused only if an earlier demo made it (it holds the marker file). Every
// file-system failure (a parent that is a file, no permission, a read-only file system) is an Error naming
// --out and the reason.
void prepare_out_dir(const std::string& out) {
  const fs::path marker = fs::path(out) / ".thaw-demo";
  std::error_code ec;
  const auto check = [&](const char* what) {
    THAW_CHECK(!ec, "--out '{}': cannot {}: {}; choose another --out", out, what, ec.message());
  };
  const bool exists = fs::exists(out, ec);
  check("look at it");
  if (exists) {
    THAW_CHECK(fs::is_directory(out, ec), "--out '{}' exists and is not a directory; choose another --out",
               out);
    const bool empty = fs::is_empty(out, ec);
    check("list it");
    if (!empty) {
      THAW_CHECK(fs::exists(marker, ec),
                 "--out '{}' exists and was not made by thaw demo; choose another --out (the demo replaces "
                 "what it wrote before, nothing else)",
                 out);
      for (const char* entry : {"data", "pretrain"}) {
        fs::remove_all(fs::path(out) / entry, ec);
        check("remove the previous demo's files");
      }
      for (const TargetRun& run : kTargetRuns) {
        fs::remove_all(fs::path(out) / run.name, ec);
        check("remove the previous demo's files");
      }
    }
  }
  fs::create_directories(out, ec);
  check("create it");
  write_text_atomic(marker.string(), "made by thaw demo; thaw demo --out here replaces its runs\n");
}

// A run's config as `thaw train` would read it: the same keys, checked the same way.
train::TrainConfig demo_config(const DemoOptions& o, const std::string& name, const std::string& data,
                               const std::string& weights, int64_t epochs, const train::Overrides& keys) {
  train::Overrides all = {{"name", name},
                          {"runs_dir", o.out},
                          {"data", data},
                          {"weights", weights},
                          {"device", o.device},
                          {"precision", o.precision},
                          {"arch", "resnet18"},
                          {"task", "breeds"},
                          {"image_size", std::to_string(o.image_size)},
                          {"resize_size", std::to_string(o.image_size)},
                          {"batch_size", "32"},
                          {"epochs", std::to_string(epochs)},
                          {"threads", std::to_string(o.threads)},
                          {"seed", std::to_string(o.seed)},
                          {"cache", "true"},
                          {"optimizer", "adam"},
                          {"lr", "0.001"},
                          {"schedule", "cosine"}};
  all.insert(all.end(), keys.begin(), keys.end());
  return train::load_train_config("", all);
}

report::RunOutcome train(const train::TrainConfig& c, const std::string& step, const std::string& what) {
  fmt::print("\n{} {}: {}\n", step, c.name, what);
  std::fflush(stdout);
  train::TrainHooks hooks;
  hooks.brief = true;
  THAW_CHECK(train::run_training(c, false, hooks) == train::TrainStatus::Completed, "thaw demo: interrupted");
  const report::RunOutcome r = report::read_run_outcome(c.run_dir());
  fmt::print("  test accuracy {:.1f}%  ({:.0f} s)\n", 100 * r.test_accuracy, r.train_seconds);
  return r;
}

std::string percent_list(const std::vector<double>& fractions) {
  std::vector<std::string> parts;
  for (double f : fractions)
    parts.push_back(fmt::format("{:.0f}", 100 * f));
  return fmt::format("{}", fmt::join(parts, " "));
}

// "cpu", or "cuda, tf32" when a precision other than fp32 was asked for.
std::string where(const DemoOptions& o) {
  return o.precision == "fp32" ? o.device : o.device + ", " + o.precision;
}

int run_demo(const DemoOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  prepare_out_dir(o.out);
  const std::string source_dir = o.out + "/data/source", generated_target = o.out + "/data/target";
  const std::string target_dir = o.data.empty() ? generated_target : o.data;

  fmt::print("thaw demo: pretrain a ResNet18 on one task, fine-tune it on another ({}, {} threads)\n",
             where(o), train::apply_threads(o.threads));
  data::write_synthetic_dataset(
      source_dir, {data::PatternSet::Source, o.image_size, o.source_per_class, o.test_per_class, o.seed});
  fmt::print("  source: {} (37 pattern classes, {} + {} images each, {}x{})\n", source_dir,
             o.source_per_class, o.test_per_class, o.image_size, o.image_size);
  if (o.data.empty()) {
    data::write_synthetic_dataset(generated_target, {data::PatternSet::Target, o.image_size,
                                                     o.target_per_class, o.test_per_class, o.seed});
    fmt::print("  target: {} (37 other classes, only {} + {} images each)\n", generated_target,
               o.target_per_class, o.test_per_class);
  } else {
    fmt::print("  target: {} (given with --data)\n", target_dir);
  }

  const train::TrainConfig pre =
      demo_config(o, "pretrain", source_dir, "none", o.source_epochs, {{"trainable", "all"}});
  const report::RunOutcome pretrain =
      train(pre, "[1/5]", "ResNet18 from random weights on the source classes");
  const std::string pretrained_weights = pre.run_dir() + "/weights.h5";

  std::vector<report::RunOutcome> results;
  for (size_t i = 0; i < std::size(kTargetRuns); ++i) {
    const TargetRun& run = kTargetRuns[i];
    const train::TrainConfig c = demo_config(
        o, run.name, target_dir, run.pretrained ? pretrained_weights : "none", o.target_epochs, run.keys);
    results.push_back(train(c, fmt::format("[{}/5]", i + 2), run.what));
  }

  // The comparison: terminal, demo.md, comparison.svg.
  std::string table = fmt::format(
      "| run | trains | test accuracy | val accuracy by epoch (%) | time |\n"
      "|---|---|---|---|---|\n"
      "| pretrain (source task) | everything | {:.1f}% | {} | {:.0f} s |\n",
      100 * pretrain.test_accuracy, percent_list(pretrain.val_accuracy), pretrain.train_seconds);
  std::vector<report::NamedCurve> curves;
  for (size_t i = 0; i < results.size(); ++i) {
    table += fmt::format("| {} | {} | {:.1f}% | {} | {:.0f} s |\n", kTargetRuns[i].name, kTargetRuns[i].what,
                         100 * results[i].test_accuracy, percent_list(results[i].val_accuracy),
                         results[i].train_seconds);
    curves.emplace_back(kTargetRuns[i].name, results[i].val_accuracy);
  }
  const double total_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("\n{}\n", table);
  write_text_atomic(o.out + "/comparison.svg",
                    report::val_accuracy_comparison_svg("Fine-tuning on the target task", curves));

  const double gain = results[0].test_accuracy - results.back().test_accuracy;
  const bool transfer_shows = gain >= o.min_gain;
  std::string verdict =
      fmt::format("Pretrained head-only beats from-scratch by {:.1f} points of test accuracy{}.", 100 * gain,
                  transfer_shows ? "" : fmt::format(" (expected at least {:.0f})", 100 * o.min_gain));
  write_text_atomic(
      o.out + "/demo.md",
      fmt::format("# thaw demo\n\n{}\n{}\n\nValidation accuracy per run: comparison.svg. Each run's curves "
                  "and confusion matrix: <run>/index.html. Total time {:.0f} s on {}.\n",
                  table, verdict, total_s, where(o)));
  fmt::print(
      "{}\nwritten: {}/demo.md, {}/comparison.svg, and per run {}/<run>/index.html  ({:.0f} s in all)\n",
      verdict, o.out, o.out, o.out, total_s);
  if (!o.data.empty() || transfer_shows) return 0;
  fmt::print(stderr, "thaw demo: pretraining did not clearly help: this is a regression\n");
  return 1;
}

}  // namespace

void add_demo_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "demo", "transfer learning in a few minutes on a CPU: pretrain, then fine-tune four ways and compare");
  auto o = std::make_shared<DemoOptions>();
  cmd->add_option("--out", o->out, "output directory (runs/demo)");
  cmd->add_option("--data", o->data,
                  "fine-tune on this dataset (Oxford-IIIT layout) instead of a generated one");
  cmd->add_option("--device", o->device, "cpu or cuda");
  add_precision_option(cmd, &o->precision);
  cmd->add_option("--threads", o->threads, "CPU threads: compute and loader (0: all this process may use)")
      ->check(CLI::Range(0, 256));
  cmd->add_option("--seed", o->seed, "seed of the datasets, initialisation and shuffling");
  cmd->add_option("--image-size", o->image_size, "image height and width (32)")->check(CLI::Range(16, 512));
  cmd->add_option("--source-epochs", o->source_epochs, "pretraining epochs (3)")->check(CLI::Range(1, 1000));
  cmd->add_option("--target-epochs", o->target_epochs, "fine-tuning epochs (8)")->check(CLI::Range(1, 1000));
  cmd->add_option("--source-images", o->source_per_class, "source train+val images per class (60)")
      ->check(CLI::Range(5, 100000));
  cmd->add_option("--target-images", o->target_per_class, "target train+val images per class (10)")
      ->check(CLI::Range(5, 100000));
  cmd->callback([o] {
    if (const int status = run_demo(*o); status != 0) throw CLI::RuntimeError(status);
  });
}

}  // namespace thaw::cli
