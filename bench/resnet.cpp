// thaw bench resnet (bench/resnet.h).
#include "bench/resnet.h"

#include <fmt/format.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "bench/timing.h"
#include "core/atomic_write.h"
#include "core/autograd.h"
#include "core/cuda_runtime.h"
#include "core/error.h"
#include "core/rng.h"
#include "kernels/ops.h"
#include "models/resnet.h"
#include "nn/losses.h"
#include "nn/precision.h"
#include "optim/freeze.h"
#include "optim/optimizer.h"

namespace thaw::bench {

namespace {

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
}  // namespace

void run_resnet(const ResnetBenchOptions& opt) {
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
  const Precision requested = parse_precision(opt.precision);
  const Precision precision = ops::conv2d_precision(requested, device);
  nn::set_precision(*model, precision);
  const Tensor x = Tensor::normal({opt.batch, 3, opt.size, opt.size}, 0, 1, gen).to(device);
  std::vector<int64_t> labels(static_cast<size_t>(opt.batch));
  for (auto& y : labels)
    y = gen.next_int(0, 1000);
  const Tensor y = Tensor::from_data<int64_t>({opt.batch}, labels).to(device);
  const nn::NamedTensors params = model->named_parameters();
  std::unique_ptr<optim::SGD> sgd;
  if (opt.mode == "inference") {
    model->eval();
    optim::FreezeMask().apply(params);  // nothing trains: conv + BatchNorm pairs fold (nn/conv_bn.h)
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
  const double median = median_seconds(opt.repeat, step, wait_for_device);
  const double images_per_s = double(opt.batch) / median;
  const cuda_runtime::MemoryStats memory =
      device.is_cuda() ? cuda_runtime::memory_stats(device.index) : cuda_runtime::MemoryStats{};
  const std::string note = ops::conv2d_precision_note(requested, device);
  const std::string where =
      (device.is_cuda() ? device.str() : fmt::format("cpu, {} threads", ops::cpu_threads())) +
      (note.empty() ? "" : ", " + note);
  fmt::print("thaw {} {} batch {} {}x{}, {}: {:.4f} s per step, {:.1f} img/s (median of {})", opt.arch,
             opt.mode, opt.batch, opt.size, opt.size, where, median, images_per_s, opt.repeat);
  if (device.is_cuda())
    fmt::print(", peak memory {:.0f} MiB in tensors, {:.0f} MiB reserved", memory.peak_in_use / 1048576.0,
               memory.peak_reserved / 1048576.0);
  fmt::print("\n");
  if (!opt.json_path.empty()) {
    write_text_atomic(opt.json_path, nlohmann::json{{"arch", opt.arch},
                                                    {"mode", opt.mode},
                                                    {"device", device.str()},
                                                    {"precision", opt.precision},
                                                    {"computed_precision", precision_name(precision)},
                                                    {"batch", opt.batch},
                                                    {"size", opt.size},
                                                    {"threads", ops::cpu_threads()},
                                                    {"seconds", median},
                                                    {"images_per_s", images_per_s},
                                                    {"peak_bytes", memory.peak_in_use},
                                                    {"peak_reserved_bytes", memory.peak_reserved}}
                                             .dump(2) +
                                         "\n");
  }
}

}  // namespace thaw::bench
