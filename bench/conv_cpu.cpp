// thaw bench conv-cpu (bench/conv_cpu.h).
#include "bench/conv_cpu.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "bench/timing.h"
#include "core/atomic_write.h"
#include "core/rng.h"
#include "kernels/ops.h"

namespace thaw::bench {

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

}  // namespace

void run_conv_cpu(const ConvCpuOptions& opt) {
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
    const double median = median_seconds(opt.repeat, [&] { ops::conv2d_forward(x, w, Tensor(), p); });
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
    write_text_atomic(
        opt.json_path,
        nlohmann::json{{"threads", ops::cpu_threads()}, {"repeat", opt.repeat}, {"rows", rows}}.dump(2) +
            "\n");
  }
}

}  // namespace thaw::bench
