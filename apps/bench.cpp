// thaw bench: timing programs. `thaw bench conv-cpu` times the CPU conv2d forward on the ResNet18 3x3
// shapes at 224x224 and prints GFLOP/s per shape (and JSON with --json). bench/conv2d_cpu.py runs it
// beside PyTorch with the same threads and prints the ratio.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "core/error.h"
#include "core/rng.h"
#include "kernels/ops.h"

namespace thaw::apps {

namespace {

struct ConvShape {
  const char* layer;  // a torchvision layer name that has this shape
  int64_t c, k, h, stride;
};

// Every distinct 3x3 conv of ResNet18 at 224x224 input (padding 1).
constexpr ConvShape kResnet18Conv3x3[] = {
    {"layer1.0.conv1", 64, 64, 56, 1},   {"layer2.0.conv1", 64, 128, 56, 2},
    {"layer2.0.conv2", 128, 128, 28, 1}, {"layer3.0.conv1", 128, 256, 28, 2},
    {"layer3.0.conv2", 256, 256, 14, 1}, {"layer4.0.conv1", 256, 512, 14, 2},
    {"layer4.0.conv2", 512, 512, 7, 1},
};

struct Options {
  int64_t batch = 8;
  int repeat = 5;
  int threads = 0;
  std::string json_path;
};

void run_conv_cpu(const Options& opt) {
  if (opt.threads > 0) ops::set_cpu_threads(opt.threads);
  Generator gen(0);
  nlohmann::json rows = nlohmann::json::array();
  fmt::print("thaw conv2d forward on the CPU: ResNet18 3x3 shapes, batch {}, {} threads, median of {}\n",
             opt.batch, ops::cpu_threads(), opt.repeat);
  fmt::print("{:<16} {:>18} {:>10} {:>10}\n", "layer", "C->K HxW/stride", "ms", "GFLOP/s");
  for (const ConvShape& s : kResnet18Conv3x3) {
    const Tensor x = Tensor::uniform({opt.batch, s.c, s.h, s.h}, -1, 1, gen);
    const Tensor w = Tensor::uniform({s.k, s.c, 3, 3}, -0.1, 0.1, gen);
    const ops::Conv2dParams p{s.stride, s.stride, 1, 1};
    const Shape y_shape = ops::conv2d_output_shape(x.shape(), w.shape(), p);
    const double flops = 2.0 * double(shape_numel(y_shape)) * double(s.c * 9);
    ops::conv2d_forward(x, w, Tensor(), p);  // warm-up
    std::vector<double> times;
    for (int r = 0; r < opt.repeat; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      ops::conv2d_forward(x, w, Tensor(), p);
      times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(times.begin(), times.end());
    const double median = times[times.size() / 2];
    const double gflops = flops / median * 1e-9;
    fmt::print("{:<16} {:>18} {:>10.2f} {:>10.1f}\n", s.layer,
               fmt::format("{}->{} {}x{}/{}", s.c, s.k, s.h, s.h, s.stride), median * 1e3, gflops);
    rows.push_back({{"layer", s.layer},
                    {"c", s.c},
                    {"k", s.k},
                    {"h", s.h},
                    {"stride", s.stride},
                    {"batch", opt.batch},
                    {"ms", median * 1e3},
                    {"gflops", gflops}});
  }
  if (!opt.json_path.empty()) {
    std::ofstream out(opt.json_path);
    THAW_CHECK(out.good(), "cannot write {}", opt.json_path);
    out << nlohmann::json{{"threads", ops::cpu_threads()}, {"repeat", opt.repeat}, {"rows", rows}}.dump(2)
        << "\n";
  }
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "benchmarks (see bench/ for the side-by-side comparisons)");
  bench->require_subcommand(1);
  auto opt = std::make_shared<Options>();
  auto* conv = bench->add_subcommand("conv-cpu", "CPU conv2d forward GFLOP/s on the ResNet18 3x3 shapes");
  conv->add_option("--batch", opt->batch, "batch size")->check(CLI::Range(1, 1024));
  conv->add_option("--repeat", opt->repeat, "timed repetitions (median reported)")
      ->check(CLI::Range(1, 1000));
  conv->add_option("--threads", opt->threads, "CPU threads (default: all cores)")->check(CLI::Range(1, 1024));
  conv->add_option("--json", opt->json_path, "also write the results as JSON to this file");
  conv->callback([opt] { run_conv_cpu(*opt); });
}

}  // namespace thaw::apps
