// thaw explain [CONFIG] [--key value ...] [--ops | --over-layers | --timeline] [--measure [--steps N]]
// [--epoch E]: what one training step of a config does, layer by layer: the passes that run, the autograd
// nodes recorded, the bytes kept for the backward pass, the FLOPs, the trainable parameters
// (train/explain.h; docs/memory.md, "Freezing is cheaper, layer by layer"). --over-layers: the same for the
// report's l = 1..5 on ResNet18 and ResNet50. --timeline: the step's tensor memory event by event, as CSV.
// Analytic by default (no forward pass); --measure also times real steps on config.device and reads their
// peak tensor memory. Needs no dataset and no weights file: the model is randomly initialised.
#include <fmt/format.h>

#include "cli/commands.h"
#include "core/error.h"
#include "train/config.h"
#include "train/explain.h"

namespace thaw::cli {

namespace {

struct ExplainArgs {
  bool per_op = false, over_layers = false, timeline = false, measure = false;
  int steps = 3;
  int64_t epoch = 1;
};

// CONFIG is the first extra argument when it is not a --key: a declared positional would swallow the value
// of an unknown --key (`thaw explain --arch resnet50` would read resnet50 as CONFIG).
std::string config_path_of(std::vector<std::string>& extras) {
  if (extras.empty() || extras.front().rfind("-", 0) == 0) return "";
  std::string path = extras.front();
  extras.erase(extras.begin());
  return path;
}

// The config with what explain does not read filled in: it needs neither the dataset nor weights.
train::TrainConfig explain_config_of(std::vector<std::string> extras) {
  const std::string config_path = config_path_of(extras);
  train::Overrides overrides = {{"data", "(not read by explain)"}, {"weights", "none"}};
  if (config_path.empty()) overrides.emplace_back("name", "explain");
  for (auto& o : train::overrides_from_args(extras))
    overrides.push_back(std::move(o));
  return train::load_train_config(config_path, overrides);
}

void run_explain(const ExplainArgs& a, const std::vector<std::string>& extras) {
  THAW_CHECK(int(a.per_op) + int(a.over_layers) + int(a.timeline) <= 1,
             "thaw explain: --ops, --over-layers and --timeline do not go together: choose one");
  THAW_CHECK(!(a.timeline && a.measure),
             "thaw explain: --timeline prints CSV only; --measure goes without it");
  const train::TrainConfig config = explain_config_of(extras);
  if (a.over_layers) {
    fmt::print("thaw explain: the last l layers train (trainable = last_layers, layers = l)\n");
    fmt::print("{}", train::format_over_layers(train::explain_over_layers(config, a.measure, a.steps)));
    return;
  }
  auto model = train::make_explained_model(config, a.epoch);
  train::StepExplanation e = train::explain_step(*model, config.batch_size, config.image_size, config.loss);
  e.trainable = train::trainable_patterns(config, a.epoch);
  e.feature_cache = train::describe_feature_cache(config, *model);
  if (a.timeline) {
    fmt::print("{}", train::format_timeline_csv(e));
    return;
  }
  fmt::print("{}", train::format_step_explanation(e, a.per_op));
  if (!a.measure) return;
  const train::StepMeasurement m = train::measure_step(*model, config, a.steps);
  fmt::print(
      "\nmeasured on {}: median of {} steps {:.1f} ms; tensors at the peak {:.2f} MiB ({:.2f} MiB above "
      "the {:.2f} MiB held between steps)\n",
      m.device, m.steps, m.median_ms, m.peak_bytes / 1048576.0, (m.peak_bytes - m.start_bytes) / 1048576.0,
      m.start_bytes / 1048576.0);
}

}  // namespace

void add_explain_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "explain", "what one training step does per layer: passes, nodes, bytes kept, FLOPs (no data needed)");
  cmd->allow_extras();
  cmd->footer(
      "CONFIG: a TOML config (experiments/*.toml), first; without one, the config keys' defaults.\n"
      "Any config key can follow CONFIG as --key value, as for thaw train (--arch resnet50, --layers 3,\n"
      "--batch-size 64, --image-size 224, --bn-mode frozen, --device cuda), e.g.\n"
      "  thaw explain experiments/breeds_l3.toml --batch-size 64\n"
      "  thaw explain experiments/breeds_l3.toml --over-layers --measure --device cuda\n"
      "  thaw explain experiments/breeds_l3.toml --timeline > timeline.csv\n"
      "What the numbers mean: docs/memory.md.");
  auto a = std::make_shared<ExplainArgs>();
  cmd->add_flag("--ops", a->per_op, "one row per op instead of per layer");
  cmd->add_flag("--over-layers", a->over_layers, "a table over l = 1..5 for ResNet18 and ResNet50");
  cmd->add_flag("--timeline", a->timeline,
                "the step's tensor memory, event by event (forward ops, backward nodes, optimizer), as CSV");
  cmd->add_flag("--measure", a->measure,
                "also run real steps on the config's device: median time, peak memory");
  cmd->add_option("--steps", a->steps, "timed steps for --measure (after one warm-up step)")
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--epoch", a->epoch,
                  "the epoch (1-based) whose mask and BatchNorm mode to explain (gradual)")
      ->check(CLI::Range(1, 100000));
  cmd->callback([cmd, a] { run_explain(*a, cmd->remaining()); });
}

}  // namespace thaw::cli
