// thaw train CONFIG [--key value ...] [--resume]: one training run from a TOML config (docs/training.md).
// thaw train --list-keys: every config key, its default, what it allows and means (the table of training.md).
// Any config key can be given as a flag after CONFIG (--lr 0.01, --batch-size 16, --weights none); flags
// override the file. The run itself is train/trainer.cpp.
#include <fmt/format.h>

#include "cli/commands.h"
#include "core/error.h"
#include "train/config.h"
#include "train/trainer.h"

namespace thaw::cli {

void add_train_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "fine-tune a ResNet on Oxford-IIIT Pet from a TOML config");
  cmd->allow_extras();
  cmd->footer(
      "Any config key can follow CONFIG as --key value (or --key=value; '-' and '_' are the same), e.g.\n"
      "  thaw train experiments/breeds_l3.toml --data DIR --weights resnet18.h5 --epochs 2 --device cuda\n"
      "Keys, defaults and outputs: docs/training.md.");
  auto config_path = std::make_shared<std::string>();
  auto resume = std::make_shared<bool>(false), list_keys = std::make_shared<bool>(false);
  cmd->add_option("CONFIG", *config_path, "TOML config (experiments/*.toml)");
  cmd->add_flag("--resume", *resume, "continue the run from runs/<name>/checkpoint.h5");
  cmd->add_flag("--list-keys", *list_keys, "print every config key as a markdown table, and stop");
  cmd->callback([cmd, config_path, resume, list_keys] {
    if (*list_keys) {
      fmt::print("{}", train::train_config_keys_markdown());
      return;
    }
    THAW_CHECK(!config_path->empty(),
               "thaw train: CONFIG is required (a TOML file such as experiments/breeds_l3.toml)");
    const train::TrainConfig config =
        train::load_train_config(*config_path, train::overrides_from_args(cmd->remaining()));
    if (train::run_training(config, *resume) == train::TrainStatus::Interrupted)
      throw CLI::RuntimeError(train::interrupt_exit_status());
  });
}

}  // namespace thaw::cli
