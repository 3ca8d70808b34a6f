// The thaw executable's subcommands: each file apps/<name>.cpp adds one with add_<name>_command().
#pragma once

#include <CLI/CLI.hpp>

namespace thaw::apps {

void add_smoke_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_weights_command(CLI::App& app);
void add_parity_command(CLI::App& app);
void add_data_command(CLI::App& app);  // apps/data.cpp: `thaw data check`, `thaw data download`
void add_predict_command(CLI::App& app);  // apps/predict.cpp (apps/predict.h)
void add_plots_command(CLI::App& app);    // apps/plots.cpp (apps/plots.h)
void add_train_command(CLI::App& app);    // apps/train.cpp (the run: apps/trainer.h)
void add_eval_command(CLI::App& app);     // apps/eval.cpp
void add_demo_command(CLI::App& app);     // apps/demo.cpp: the README's main command
void add_reproduce_command(CLI::App& app);  // apps/reproduce.cpp (the tables: apps/report_tables.h)

}  // namespace thaw::apps
