// thaw reproduce --data DIR --weights-dir DIR [--only NAME,...] [--key value ...]: runs the report's
// experiments (experiments/*.toml, the ones report/report_tables.cpp names) one after another with
// `thaw train`'s own code, and prints the report's tables with thaw's numbers and times beside the report's.
//
// The tables are also written to RUNS_DIR/report.md after every experiment, so a long suite shows its
// progress and survives an interruption: run the same command again and finished experiments are reused
// (when their config is the same), an interrupted one resumes from its checkpoint, the rest run.
#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "cli/commands.h"
#include "core/atomic_write.h"
#include "core/cuda_runtime.h"
#include "core/error.h"
#include "report/report_tables.h"
#include "report/run_summary.h"
#include "train/checkpoint.h"
#include "train/config.h"
#include "train/trainer.h"

namespace thaw::cli {

namespace {

namespace fs = std::filesystem;

struct ReproduceArgs {
  std::string data, weights_dir, experiments_dir = "experiments", runs_dir = "runs/reproduce";
  std::vector<std::string> only;
  train::Overrides overrides;  // --key value pairs for every experiment (e.g. --epochs 1 --device cuda)
};

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The experiments to run, each checked to exist as experiments_dir/<name>.toml.
std::vector<std::string> selected_experiments(const ReproduceArgs& a) {
  const std::vector<std::string> known = report::report_experiments();
  const std::vector<std::string> names = a.only.empty() ? known : a.only;
  for (const std::string& name : names) {
    THAW_CHECK(std::find(known.begin(), known.end(), name) != known.end(),
               "--only: '{}' is not one of the report's experiments: {}", name, fmt::join(known, ", "));
    THAW_CHECK(fs::exists(a.experiments_dir + "/" + name + ".toml"),
               "'{}/{}.toml' does not exist (run from the thaw repository's root, or give --experiments DIR)",
               a.experiments_dir, name);
  }
  return names;
}

train::TrainConfig experiment_config(const ReproduceArgs& a, const std::string& name) {
  train::Overrides keys = {{"data", a.data}, {"weights", "none"}, {"runs_dir", a.runs_dir}, {"name", name}};
  keys.insert(keys.end(), a.overrides.begin(), a.overrides.end());
  train::TrainConfig c = train::load_train_config(a.experiments_dir + "/" + name + ".toml", keys);
  // The weights file follows the architecture, which the experiment (or an --arch override) decides.
  if (a.weights_dir != "none") c.weights = a.weights_dir + "/" + c.arch + ".h5";
  return c;
}

// Runs one experiment, or reuses / resumes what an earlier reproduce left in its run directory.
report::ExperimentResult run_experiment(const train::TrainConfig& c, bool& interrupted) {
  report::ExperimentResult r;
  try {
    if (report::run_finished(c.run_dir())) {
      const std::vector<std::string> diff =
          train::train_config_diff(train::train_config_from_toml(read_text(c.run_dir() + "/config.toml")), c);
      THAW_CHECK(diff.empty(),
                 "'{}' holds a finished run with another config ({}); remove it or choose another --runs-dir",
                 c.run_dir(), fmt::join(diff, "; "));
      fmt::print("  finished before, with the same config: reusing {}\n", c.run_dir());
    } else {
      train::TrainHooks hooks;
      hooks.brief = true;
      const bool resume = fs::exists(train::checkpoint_path(c.run_dir()));
      if (train::run_training(c, resume, hooks) == train::TrainStatus::Interrupted) {
        interrupted = true;
        return r;
      }
    }
    r.outcome = report::read_run_outcome(c.run_dir());
    r.state = report::ExperimentResult::State::Finished;
  } catch (const Error& e) {
    r.state = report::ExperimentResult::State::Failed;
    r.error = e.what();
    fmt::print("  failed: {}\n", e.what());
  }
  return r;
}

std::string header_text(const ReproduceArgs& a, const std::string& device) {
  std::vector<std::string> keys;
  for (const auto& [key, value] : a.overrides)
    keys.push_back(fmt::format("{} = {}", key, value));
  return fmt::format(
      "- date: {:%Y-%m-%d %H:%M}\n- thaw 0.1.0 ({}) on {}, data: `{}`, weights: `{}`\n- overrides of the "
      "experiments' configs: {}\n- thaw time: training (data + compute) of all epochs, as the report's "
      "\"compute time\"; the report's runs used a GTX 1080.\n",
      fmt::localtime(std::time(nullptr)), cuda_runtime::built_with_cuda() ? "CPU + CUDA" : "CPU", device,
      a.data, a.weights_dir,
      keys.empty() ? "none (the report's protocol)" : fmt::format("{}", fmt::join(keys, ", ")));
}

int run_reproduce(const ReproduceArgs& a) {
  THAW_CHECK(a.weights_dir == "none" || fs::is_directory(a.weights_dir),
             "--weights-dir '{}' is not a directory (it should hold resnet18.h5 and resnet50.h5: "
             "weights_tools/README.md; 'none' trains from random weights)",
             a.weights_dir);
  const std::vector<std::string> names = selected_experiments(a);
  std::vector<train::TrainConfig> configs;
  for (const std::string& name : names) {
    configs.push_back(experiment_config(a, name));
    const std::string& weights = configs.back().weights;
    THAW_CHECK(weights == "none" || fs::exists(weights), "{}: the weights file '{}' does not exist", name,
               weights);
  }
  std::error_code ec;
  fs::create_directories(a.runs_dir, ec);
  THAW_CHECK(!ec, "--runs-dir '{}' cannot be created: {}; choose another --runs-dir", a.runs_dir,
             ec.message());
  const std::string header = header_text(a, configs.front().device);
  std::map<std::string, report::ExperimentResult> results;
  bool interrupted = false;
  std::string md;  // report.md as last written: after every experiment
  for (size_t i = 0; i < configs.size(); ++i) {
    fmt::print("\n[{}/{}] {}\n", i + 1, configs.size(), names[i]);
    std::fflush(stdout);
    const report::ExperimentResult r = run_experiment(configs[i], interrupted);
    if (interrupted) break;
    if (r.state == report::ExperimentResult::State::Finished)
      fmt::print("  test accuracy {:.2f}%  ({:.0f} s)\n", 100 * r.outcome.test_accuracy,
                 r.outcome.train_seconds);
    results[names[i]] = r;
    md = report::report_tables_markdown(results, header);
    write_text_atomic(a.runs_dir + "/report.md", md);
  }
  if (!md.empty()) fmt::print("\n{}\nwritten: {}/report.md\n", md, a.runs_dir);
  if (interrupted) {
    fmt::print("interrupted: run the same command again to resume\n");
    return 130;
  }
  for (const auto& [name, r] : results)
    if (r.state == report::ExperimentResult::State::Failed) return 1;
  return 0;
}

}  // namespace

void add_reproduce_command(CLI::App& app) {
  auto* cmd =
      app.add_subcommand("reproduce", "run the report's experiments and print its tables beside thaw's");
  cmd->allow_extras();
  cmd->footer(
      "Any train config key can follow as --key value and applies to every experiment, e.g. a quick run:\n"
      "  thaw reproduce --data DIR --weights-dir DIR --only breeds_l1,breeds_l3 --epochs 2 --device cuda\n"
      "docs/reproduce.md explains the tables.");
  auto a = std::make_shared<ReproduceArgs>();
  cmd->add_option("--data", a->data, "Oxford-IIIT Pet root (images/, annotations/)")->required();
  cmd->add_option("--weights-dir", a->weights_dir,
                  "holds resnet18.h5 and resnet50.h5 (torchvision's, converted); 'none': random weights")
      ->required();
  cmd->add_option("--only", a->only, "run only these experiments (comma-separated names)")->delimiter(',');
  cmd->add_option("--experiments", a->experiments_dir, "where the experiment TOML files are (experiments)");
  cmd->add_option("--runs-dir", a->runs_dir, "where the runs and report.md go (runs/reproduce)");
  cmd->callback([cmd, a] {
    a->overrides = train::overrides_from_args(cmd->remaining());
    for (const auto& [key, value] : a->overrides)
      THAW_CHECK(key != "data" && key != "weights" && key != "runs_dir" && key != "name",
                 "--{}: reproduce sets it for every experiment; use --data, --weights-dir or --runs-dir",
                 key);
    if (const int status = run_reproduce(*a); status != 0) throw CLI::RuntimeError(status);
  });
}

}  // namespace thaw::cli
