// thaw eval WEIGHTS --data DIR [--split test|trainval] [--skip-bad]: accuracy, per-class table and confusion
// matrix of a weights file written by `thaw train` (its attributes arch, num_classes, task, image_size,
// class_names say how to build the model and read the labels). The work is train/trained_model.h's
// evaluate_weights; this file is the command line and the printing.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "cli/commands.h"
#include "core/device.h"
#include "core/precision.h"
#include "kernels/ops.h"
#include "train/config.h"
#include "train/trained_model.h"

namespace thaw::cli {

namespace {

struct EvalArgs {
  std::string weights, data, device = "cpu", precision = "fp32";
  train::EvalWeightsOptions options;
};

void run_eval(const EvalArgs& a) {
  train::EvalWeightsOptions options = a.options;
  options.device = Device::parse(a.device);
  options.precision = parse_precision(a.precision);
  const train::EvalWeightsResult r = train::evaluate_weights(a.weights, a.data, options);
  const std::string precision = ops::conv2d_precision_note(options.precision, options.device);
  fmt::print("thaw eval {}: {} {} on the {} split of {} ({} images, {}x{}, {}{})\n", a.weights, r.arch,
             r.task, r.split, a.data, r.samples, r.image_size, r.image_size, options.device.str(),
             precision.empty() ? "" : ", " + precision);
  if (!r.bad_files.empty())
    fmt::print("skip_bad: left out {} undecodable files: {}\n", r.bad_files.size(),
               fmt::join(r.bad_files, ", "));
  fmt::print("{}", train::format_eval_report(r.eval, r.class_names));
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "accuracy, per-class table and confusion matrix of trained weights");
  auto a = std::make_shared<EvalArgs>();
  cmd->add_option("WEIGHTS", a->weights, "weights file written by thaw train (runs/<name>/weights.h5)")
      ->required();
  cmd->add_option("--data", a->data, "Oxford-IIIT Pet root")->required();
  cmd->add_option("--split", a->options.split, "test or trainval")
      ->check(CLI::IsMember({"test", "trainval"}));
  cmd->add_option("--device", a->device, "cpu, cuda or cuda:N");
  add_precision_option(cmd, &a->precision);
  cmd->add_option("--batch-size", a->options.batch_size, "images per batch")->check(CLI::Range(1, 65536));
  cmd->add_option("--image-size", a->options.image_size, "crop size (default: the weights file's image_size)")
      ->check(CLI::Range(train::kMinImageSize, train::kMaxImageSize));
  cmd->add_option("--threads", a->options.threads,
                  "CPU threads: compute and loader (0: all this process may use)")
      ->check(CLI::Range(0, 256));
  cmd->add_flag("--skip-bad", a->options.skip_bad,
                "leave undecodable image files out (and list them) instead of stopping at the first");
  cmd->callback([a] { run_eval(*a); });
}

}  // namespace thaw::cli
