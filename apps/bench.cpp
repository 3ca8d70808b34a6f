// thaw bench: timing programs; bench/*.py run them beside PyTorch with the same threads and print ratios.
//   thaw bench conv-cpu    CPU conv2d forward GFLOP/s on the ResNet18 3x3 shapes at 224x224
//   thaw bench conv-cuda   CUDA conv2d forward/backward on every ResNet18/50 shape (apps/bench_conv_cuda.cpp)
//   thaw bench kernels     every kernel of a training step checked and timed against cuDNN (apps/bench_kernels.cpp)
//   thaw bench resnet      ResNet18/50 images/s on the CPU or a GPU (--device): inference, and training steps
//                          with the head only, layer3 + layer4 + head, or everything trainable (SGD, Nesterov
//                          momentum); on a GPU also the peak device memory. (`resnet-cpu` is an alias.)
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "core/autograd.h"
#include "core/cuda_runtime.h"
#include "core/error.h"
#include "core/rng.h"
#include "kernels/ops.h"
#include "models/resnet.h"
#include "nn/losses.h"
#include "optim/freeze.h"
#include "optim/optimizer.h"

namespace thaw::apps {

void add_bench_loader_command(CLI::App& bench);     // apps/bench_loader.cpp
void add_bench_conv_cuda_command(CLI::App& bench);  // apps/bench_conv_cuda.cpp
void add_bench_kernels_command(CLI::App& bench);    // apps/bench_kernels.cpp

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

struct ResnetOptions {
  std::string arch = "resnet18";
  std::string mode = "inference";  // inference | train-head | train-l3 | train-full
  std::string device = "cpu";
  int64_t batch = 16, size = 224;
  int repeat = 3, threads = 0;
  std::string json_path;
};

// Trainable parameters of each training mode (optim::FreezeMask patterns).
std::string trainable_of(const std::string& mode) {
  if (mode == "train-head") return "fc";
  if (mode == "train-l3") return "layer3,layer4,fc";
  if (mode == "train-full") return "*";
  fail("bench resnet: mode '{}' is not inference, train-head, train-l3 or train-full", mode);
}

// One timed unit: a forward under NoGradGuard (inference), or zero_grad + forward + loss + backward + SGD
// step with the given trainable patterns. On CUDA the clock is read after a device synchronisation, and the
// peak device memory (thaw's caching allocator: bytes in tensors, and bytes obtained from cudaMalloc) covers
// the whole run, the model's weights included, as torch.cuda.max_memory_allocated does.
void run_resnet(const ResnetOptions& opt) {
  if (opt.threads > 0) ops::set_cpu_threads(opt.threads);
  const Device device = Device::parse(opt.device);
  if (device.is_cuda()) {
    THAW_CHECK(cuda_runtime::device_count() > device.index, "bench resnet: no CUDA device {} here ({} found)",
               device.str(), cuda_runtime::device_count());
    cuda_runtime::reset_peak_memory(device.index);
  }
  Generator gen(0);
  auto model = models::make_resnet(models::parse_arch(opt.arch), 1000, gen);
  model->to(device);
  const Tensor x = Tensor::normal({opt.batch, 3, opt.size, opt.size}, 0, 1, gen).to(device);
  std::vector<int64_t> labels(static_cast<size_t>(opt.batch));
  for (auto& y : labels)
    y = gen.next_int(0, 1000);
  const Tensor y = Tensor::from_data<int64_t>({opt.batch}, labels).to(device);
  const nn::NamedTensors params = model->named_parameters();
  std::unique_ptr<optim::SGD> sgd;
  if (opt.mode == "inference") {
    model->eval();
  } else {
    const std::string trainable = trainable_of(opt.mode);
    model->train();
    optim::FreezeMask::parse(trainable).apply(params);
    sgd = std::make_unique<optim::SGD>(std::vector<optim::ParamGroup>{{params, 1e-3, 0, "all"}}, 0.9, true);
  }
  const auto step = [&] {
    if (!sgd) {
      NoGradGuard no_grad;
      model->forward(x);
      return;
    }
    sgd->zero_grad();
    nn::CrossEntropyLoss()(model->forward(x), y).backward();
    sgd->step();
  };
  // Waits for the GPU's queued work; the CPU backend is synchronous (and a CUDA build may run on a
  // machine without a driver, where any CUDA call fails).
  auto wait_for_device = [&] {
    if (device.is_cuda()) cuda_runtime::synchronize();
  };
  step();  // warm-up (and on CUDA: fills the allocator's cache)
  wait_for_device();
  std::vector<double> times;
  for (int r = 0; r < opt.repeat; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    step();
    wait_for_device();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  const double median = times[times.size() / 2], images_per_s = double(opt.batch) / median;
  const cuda_runtime::MemoryStats memory =
      device.is_cuda() ? cuda_runtime::memory_stats(device.index) : cuda_runtime::MemoryStats{};
  const std::string where =
      device.is_cuda() ? device.str() : fmt::format("cpu, {} threads", ops::cpu_threads());
  fmt::print("thaw {} {} batch {} {}x{}, {}: {:.4f} s per step, {:.1f} img/s (median of {})", opt.arch,
             opt.mode, opt.batch, opt.size, opt.size, where, median, images_per_s, opt.repeat);
  if (device.is_cuda())
    fmt::print(", peak memory {:.0f} MiB in tensors, {:.0f} MiB reserved", memory.peak_in_use / 1048576.0,
               memory.peak_reserved / 1048576.0);
  fmt::print("\n");
  if (!opt.json_path.empty()) {
    std::ofstream out(opt.json_path);
    THAW_CHECK(out.good(), "cannot write {}", opt.json_path);
    out << nlohmann::json{{"arch", opt.arch},
                          {"mode", opt.mode},
                          {"device", device.str()},
                          {"batch", opt.batch},
                          {"size", opt.size},
                          {"threads", ops::cpu_threads()},
                          {"seconds", median},
                          {"images_per_s", images_per_s},
                          {"peak_bytes", memory.peak_in_use},
                          {"peak_reserved_bytes", memory.peak_reserved}}
               .dump(2)
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

  auto ropt = std::make_shared<ResnetOptions>();
  auto* resnet = bench->add_subcommand(
      "resnet", "ResNet18/50 images/s on the CPU or a GPU: inference and training steps");
  resnet->alias("resnet-cpu");
  resnet->add_option("--device", ropt->device, "cpu or cuda[:N]");
  resnet->add_option("--arch", ropt->arch, "resnet18 or resnet50");
  resnet->add_option("--mode", ropt->mode,
                     "inference, train-head (fc trainable), train-l3 (layer3, layer4, fc) or train-full");
  resnet->add_option("--batch", ropt->batch, "batch size")->check(CLI::Range(1, 1024));
  resnet->add_option("--size", ropt->size, "image height and width")->check(CLI::Range(32, 1024));
  resnet->add_option("--repeat", ropt->repeat, "timed steps (median reported)")->check(CLI::Range(1, 1000));
  resnet->add_option("--threads", ropt->threads, "CPU threads (default: all cores)")
      ->check(CLI::Range(1, 1024));
  resnet->add_option("--json", ropt->json_path, "also write the result as JSON to this file");
  resnet->callback([ropt] { run_resnet(*ropt); });
  add_bench_loader_command(*bench);     // apps/bench_loader.cpp
  add_bench_conv_cuda_command(*bench);  // apps/bench_conv_cuda.cpp
  add_bench_kernels_command(*bench);    // apps/bench_kernels.cpp
}

}  // namespace thaw::apps
