// thaw bench resnet: ResNet18/50 images/s on the CPU or a GPU, for inference and for training steps with the
// head only, layer3 + layer4 + head, or everything trainable (SGD with Nesterov momentum); on a GPU also the
// peak device memory. bench/resnet_cpu.py and bench/resnet_gpu.py run it beside PyTorch.
#pragma once

#include <cstdint>
#include <string>

namespace thaw::bench {

struct ResnetBenchOptions {
  std::string arch = "resnet18";
  std::string mode = "inference";  // inference | train-head | train-l3 | train-full
  std::string device = "cpu";
  std::string precision = "fp32";  // of the convolutions (core/precision.h)
  int64_t batch = 16, size = 224;
  int repeat = 3, threads = 0;
  std::string json_path;
};

void run_resnet(const ResnetBenchOptions& opt);

}  // namespace thaw::bench
