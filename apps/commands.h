// The thaw executable's subcommands: each file apps/<name>.cpp adds one with add_<name>_command().
#pragma once

#include <CLI/CLI.hpp>

namespace thaw::apps {

void add_smoke_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_weights_command(CLI::App& app);
void add_parity_command(CLI::App& app);
void add_data_command(CLI::App& app);  // apps/data.cpp: `thaw data check`, `thaw data download`

}  // namespace thaw::apps
