// thaw bench: timing programs; bench/*.py run them beside PyTorch with the same threads and print ratios.
//   thaw bench conv-cpu    CPU conv2d forward GFLOP/s on the ResNet18 3x3 shapes (bench/conv_cpu.h)
//   thaw bench resnet      ResNet18/50 images/s on the CPU or a GPU (bench/resnet.h)
//   thaw bench loader      the data loader's images/s per epoch (bench/loader.h)
//   thaw bench train       a training run end to end, timed and taken apart (bench/train_run.h)
//   thaw bench kernels     every kernel of a training step checked and timed against cuDNN: runs the program
//                          thaw-bench-kernels (bench/kernels/main.cpp)
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "bench/conv_cpu.h"
#include "bench/loader.h"
#include "bench/resnet.h"
#include "bench/train_run.h"
#include "cli/commands.h"
#include "core/error.h"
#include "train/config.h"

namespace thaw::cli {

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

void add_bench_kernels_command(CLI::App& bench) {
  auto* cmd = bench.add_subcommand(
      "kernels",
      "every kernel of a ResNet18/50 training step checked and timed against cuDNN, shape by shape "
      "(runs thaw-bench-kernels; `thaw bench kernels --help` lists its options)");
  cmd->prefix_command();  // everything after `kernels` is the program's
  cmd->set_help_flag();   // so is --help
  cmd->callback([cmd] { exec_bench_kernels(cmd->remaining()); });
}

void add_bench_loader_command(CLI::App& bench) {
  auto opt = std::make_shared<bench::LoaderBenchOptions>();
  auto* cmd = bench.add_subcommand(
      "loader", "data loader images/s per epoch (first epoch decodes, later ones use the cache)");
  cmd->add_option("--data", opt->data, "dataset directory in the official layout (e.g. pets-mini)")
      ->required();
  cmd->add_option("--threads", opt->threads, "worker threads")->check(CLI::Range(1, 1024));
  cmd->add_option("--epochs", opt->epochs, "epochs to time")->check(CLI::Range(1, 1000));
  cmd->add_option("--batch", opt->batch, "batch size")->check(CLI::Range(1, 4096));
  cmd->add_option("--size", opt->size, "crop size")->check(CLI::Range(8, 1024));
  cmd->add_option("--limit", opt->limit, "use only the first N images of list.txt");
  cmd->add_flag("--no-cache", opt->no_cache, "decode every epoch");
  cmd->add_option("--json", opt->json_path, "also write the results as JSON to this file");
  cmd->callback([opt] { bench::run_loader(*opt); });
}

void add_bench_train_command(CLI::App& bench) {
  auto opt = std::make_shared<bench::TrainBenchOptions>();
  auto* cmd = bench.add_subcommand(
      "train",
      "a thaw train run end to end (decode, augment, train, evaluate): images/s and where the time went");
  cmd->allow_extras();
  cmd->footer(
      "Any config key of thaw train can follow CONFIG as --key value, e.g.\n"
      "  thaw bench train --data DIR --weights none --layers 3 --augment true --epochs 2 --device cuda\n"
      "The run goes to a temporary directory, removed afterwards. bench/train_pipeline.py runs it beside "
      "PyTorch.");
  cmd->add_option("--json", opt->json_path, "also write the report as JSON to this file");
  cmd->callback([cmd, opt] {
    // [CONFIG] [--key value ...]: CONFIG is optional, so it is taken from the extras here (a CLI11
    // positional would take the value of the first --key instead).
    std::vector<std::string> args = cmd->remaining();
    if (!args.empty() && !args.front().starts_with("-")) {
      opt->config_path = args.front();
      args.erase(args.begin());
    }
    opt->overrides = train::overrides_from_args(args);
    bench::run_train_bench(*opt);
  });
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "benchmarks (see bench/ for the side-by-side comparisons)");
  bench->require_subcommand(1);
  auto opt = std::make_shared<bench::ConvCpuOptions>();
  auto* conv = bench->add_subcommand("conv-cpu", "CPU conv2d forward GFLOP/s on the ResNet18 3x3 shapes");
  conv->add_option("--batch", opt->batch, "batch size")->check(CLI::Range(1, 1024));
  conv->add_option("--repeat", opt->repeat, "timed repetitions (median reported)")
      ->check(CLI::Range(1, 1000));
  conv->add_option("--threads", opt->threads, "CPU threads (default: all cores)")->check(CLI::Range(1, 1024));
  conv->add_option("--json", opt->json_path, "also write the results as JSON to this file");
  conv->callback([opt] { bench::run_conv_cpu(*opt); });

  auto ropt = std::make_shared<bench::ResnetBenchOptions>();
  auto* resnet = bench->add_subcommand(
      "resnet", "ResNet18/50 images/s on the CPU or a GPU: inference and training steps");
  resnet->alias("resnet-cpu");
  resnet->add_option("--device", ropt->device, "cpu or cuda[:N]");
  add_precision_option(resnet, &ropt->precision);
  resnet->add_option("--arch", ropt->arch, "resnet18 or resnet50");
  resnet->add_option("--mode", ropt->mode,
                     "inference, train-head (fc trainable), train-l3 (layer3, layer4, fc) or train-full");
  resnet->add_option("--batch", ropt->batch, "batch size")->check(CLI::Range(1, 1024));
  resnet->add_option("--size", ropt->size, "image height and width")->check(CLI::Range(32, 1024));
  resnet->add_option("--repeat", ropt->repeat, "timed steps (median reported)")->check(CLI::Range(1, 1000));
  resnet->add_option("--threads", ropt->threads, "CPU threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
  resnet->add_option("--json", ropt->json_path, "also write the result as JSON to this file");
  resnet->callback([ropt] { bench::run_resnet(*ropt); });
  add_bench_loader_command(*bench);
  add_bench_train_command(*bench);
  add_bench_kernels_command(*bench);
}

}  // namespace thaw::cli
