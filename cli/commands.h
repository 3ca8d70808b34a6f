// The thaw executable's subcommands: each file apps/<name>.cpp adds one with add_<name>_command().
#pragma once

#include <CLI/CLI.hpp>

namespace thaw::cli {

void add_smoke_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_weights_command(CLI::App& app);
void add_parity_command(CLI::App& app);
void add_data_command(CLI::App& app);       // cli/data.cpp: `thaw data check`, `thaw data download`
void add_predict_command(CLI::App& app);    // train/predict.cpp (train/predict.h)
void add_plots_command(CLI::App& app);      // report/plots.cpp (report/plots.h)
void add_train_command(CLI::App& app);      // cli/train.cpp (the run: train/trainer.h)
void add_eval_command(CLI::App& app);       // cli/eval.cpp
void add_demo_command(CLI::App& app);       // cli/demo.cpp: the README's main command
void add_reproduce_command(CLI::App& app);  // cli/reproduce.cpp (the tables: report/report_tables.h)
void add_explain_command(CLI::App& app);    // cli/explain.cpp (train/explain.h)

// --precision fp32|tf32|bf16 (core/precision.h) on a command that runs a model, into *value.
inline CLI::Option* add_precision_option(CLI::App* cmd, std::string* value) {
  return cmd
      ->add_option(
          "--precision", *value,
          "convolution arithmetic on CUDA: fp32 (exact), tf32 or bf16 (tensor cores); the CPU computes "
          "float32 in every precision")
      ->check(CLI::IsMember({"fp32", "tf32", "bf16"}));
}

}  // namespace thaw::cli
