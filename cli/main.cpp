// thaw: the command-line entry point. Subcommands live one per file in cli/ (see commands.h).
#include <fmt/format.h>

#include <CLI/CLI.hpp>

#include "cli/commands.h"
#include "core/cuda_runtime.h"
#include "core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"thaw: fine-tune pretrained ConvNets and see every line of what happens inside"};
  app.require_subcommand(1);
  app.set_version_flag("--version", fmt::format("thaw 0.1.0 (backends: CPU{})",
                                                thaw::cuda_runtime::built_with_cuda() ? " + CUDA" : ""));
  thaw::cli::add_smoke_command(app);
  thaw::cli::add_bench_command(app);
  thaw::cli::add_weights_command(app);
  thaw::cli::add_parity_command(app);
  thaw::cli::add_data_command(app);
  thaw::cli::add_predict_command(app);
  thaw::cli::add_plots_command(app);
  thaw::cli::add_train_command(app);
  thaw::cli::add_eval_command(app);
  thaw::cli::add_demo_command(app);
  thaw::cli::add_reproduce_command(app);
  thaw::cli::add_explain_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const thaw::Error& e) {
    fmt::print(stderr, "thaw: error: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    // Not a message thaw wrote (a std::filesystem or allocation failure that no check caught): still one
    // error line and status 1, never an abort. Each such case is a bug to turn into a thaw::Error.
    fmt::print(stderr, "thaw: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
