// thaw bench kernels: runs the thaw-bench-kernels program built next to the thaw binary, with the same
// arguments (its options and output: apps/bench_kernels_main.cpp, docs/benchmarks.md). It is a program of
// its own because it links cuDNN, which the thaw binary that trains must never load.
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "core/error.h"

namespace thaw::apps {

namespace {

// The folder of the running executable (Linux: /proc/self/exe).
std::filesystem::path own_folder() {
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  THAW_CHECK(!ec, "bench kernels: cannot find the thaw executable's folder (/proc/self/exe: {})",
             ec.message());
  return exe.parent_path();
}

[[noreturn]] void exec_bench_kernels(const std::vector<std::string>& args) {
  const std::filesystem::path program = own_folder() / "thaw-bench-kernels";
  THAW_CHECK(std::filesystem::exists(program),
             "bench kernels: {} was not found. It is built next to thaw by the thaw_bench_kernels target: "
             "cmake --build BUILD --target thaw_bench_kernels",
             program.string());
  std::vector<std::string> storage{program.string()};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& s : storage)
    argv.push_back(s.data());
  argv.push_back(nullptr);
  execv(program.c_str(), argv.data());
  fail("bench kernels: cannot run {}: {}", program.string(), std::strerror(errno));
}

}  // namespace

void add_bench_kernels_command(CLI::App& bench) {
  auto* cmd = bench.add_subcommand(
      "kernels",
      "every kernel of a ResNet18/50 training step checked and timed against cuDNN, shape by shape "
      "(runs thaw-bench-kernels; `thaw bench kernels --help` lists its options)");
  cmd->prefix_command();  // everything after `kernels` is the program's
  cmd->set_help_flag();   // so is --help
  cmd->callback([cmd] { exec_bench_kernels(cmd->remaining()); });
}

}  // namespace thaw::apps
