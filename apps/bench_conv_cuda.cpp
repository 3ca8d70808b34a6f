// thaw bench conv-cuda: thaw's CUDA convolution kernels (forward, backward-data, backward-weight) on every
// distinct conv shape of ResNet18 and ResNet50 at 224x224, in ms and TFLOP/s. bench/conv2d_gpu.py runs it
// beside cuDNN (through PyTorch) on the same shapes, and once per forced tile shape (THAW_CONV_TILE) to check
// the kernels' tile choice.
#include <fmt/format.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "apps/bench_kernels_problems.h"
#include "core/cuda_runtime.h"
#include "core/error.h"
#include "core/rng.h"
#include "kernels/ops.h"

namespace thaw::apps {

namespace {

struct ConvShape {
  std::string layer;           // the first torchvision layer that has this shape ("r50 layer2.0.conv2")
  int64_t c, k, h, r, stride;  // input channels, filters, input H = W, kernel R = S, stride; padding R / 2
};

// Every distinct conv of ResNet18 and ResNet50 (torchvision v1.5) for 224x224 images: the 29 conv-forward
// rows of thaw bench kernels' problem table (apps/bench_kernels_problems.h), ResNet18's first.
std::vector<ConvShape> conv_shapes() {
  std::vector<ConvShape> shapes;
  bench::TableOptions table;
  table.batches = {1};
  table.filters = {"conv2d_forward"};
  for (const bench::Problem& p : bench::make_problems(table)) {
    std::string layer = p.layers.front();
    for (const auto& [model, short_name] : {std::pair{"resnet18 ", "r18 "}, std::pair{"resnet50 ", "r50 "}})
      if (layer.rfind(model, 0) == 0) layer = short_name + layer.substr(std::string(model).size());
    shapes.push_back({layer, p.c, p.k, p.h, p.r, p.stride});
  }
  return shapes;
}

struct Options {
  int64_t batch = 64;
  int repeat = 10;
  std::string json_path;
};

// Median seconds of f() over repeat runs after one warm-up, each ended by a device synchronisation.
template <typename F>
double median_seconds(int repeat, F&& f) {
  f();
  cuda_runtime::synchronize();
  std::vector<double> times;
  for (int i = 0; i < repeat; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    cuda_runtime::synchronize();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

void run_conv_cuda(const Options& opt) {
  THAW_CHECK(cuda_runtime::device_count() > 0, "bench conv-cuda: no CUDA device here{}",
             cuda_runtime::built_with_cuda() ? "" : " (this thaw was built without CUDA)");
  const Device gpu = Device::cuda();
  Generator gen(0);
  nlohmann::json rows = nlohmann::json::array();
  const char* tile = std::getenv("THAW_CONV_TILE");
  fmt::print("thaw conv2d on CUDA, batch {}, float32, median of {}; tile {}\n", opt.batch, opt.repeat,
             tile && *tile ? tile : "chosen per shape");
  fmt::print("{:<24} {:>22} {:>9} {:>9} {:>9} {:>7} {:>7} {:>7}\n", "layer", "C->K HxW RxS/stride", "fwd ms",
             "bwd-d ms", "bwd-w ms", "fwd TF", "bwd-d", "bwd-w");
  for (const ConvShape& s : conv_shapes()) {
    const Tensor x = Tensor::uniform({opt.batch, s.c, s.h, s.h}, -1, 1, gen).to(gpu);
    const Tensor w = Tensor::uniform({s.k, s.c, s.r, s.r}, -0.1, 0.1, gen).to(gpu);
    const ops::Conv2dParams p{s.stride, s.stride, s.r / 2, s.r / 2};
    const Shape y_shape = ops::conv2d_output_shape(x.shape(), w.shape(), p);
    const Tensor dy = Tensor::uniform(y_shape, -1, 1, gen).to(gpu);
    const double flops = 2.0 * double(shape_numel(y_shape)) * double(s.c * s.r * s.r);
    const double fwd = median_seconds(opt.repeat, [&] { ops::conv2d_forward(x, w, Tensor(), p); });
    const double bwd_data =
        median_seconds(opt.repeat, [&] { ops::conv2d_backward_data(dy, w, x.shape(), p); });
    const double bwd_weight =
        median_seconds(opt.repeat, [&] { ops::conv2d_backward_weight(dy, x, w.shape(), p); });
    fmt::print("{:<24} {:>22} {:>9.3f} {:>9.3f} {:>9.3f} {:>7.1f} {:>7.1f} {:>7.1f}\n", s.layer,
               fmt::format("{}->{} {}x{} {}x{}/{}", s.c, s.k, s.h, s.h, s.r, s.r, s.stride), fwd * 1e3,
               bwd_data * 1e3, bwd_weight * 1e3, flops / fwd * 1e-12, flops / bwd_data * 1e-12,
               flops / bwd_weight * 1e-12);
    rows.push_back({{"layer", s.layer},
                    {"c", s.c},
                    {"k", s.k},
                    {"h", s.h},
                    {"r", s.r},
                    {"stride", s.stride},
                    {"batch", opt.batch},
                    {"forward_ms", fwd * 1e3},
                    {"backward_data_ms", bwd_data * 1e3},
                    {"backward_weight_ms", bwd_weight * 1e3},
                    {"gflop", flops * 1e-9}});
  }
  if (!opt.json_path.empty()) {
    std::ofstream out(opt.json_path);
    THAW_CHECK(out.good(), "bench conv-cuda: cannot write {}", opt.json_path);
    out << nlohmann::json{{"tile", tile ? tile : ""}, {"repeat", opt.repeat}, {"rows", rows}}.dump(2) << "\n";
  }
}

}  // namespace

void add_bench_conv_cuda_command(CLI::App& bench) {
  auto opt = std::make_shared<Options>();
  auto* cmd = bench.add_subcommand(
      "conv-cuda", "CUDA conv2d forward/backward ms and TFLOP/s on every ResNet18/50 conv shape");
  cmd->add_option("--batch", opt->batch, "batch size")->check(CLI::Range(1, 1024));
  cmd->add_option("--repeat", opt->repeat, "timed repetitions (median reported)")->check(CLI::Range(1, 1000));
  cmd->add_option("--json", opt->json_path, "also write the results as JSON to this file");
  cmd->callback([opt] { run_conv_cuda(*opt); });
}

}  // namespace thaw::apps
