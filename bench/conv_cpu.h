// thaw bench conv-cpu: the CPU conv2d forward, ms and GFLOP/s, on every distinct 3x3 convolution of ResNet18
// at 224x224. bench/conv2d_cpu.py runs it beside PyTorch's CPU convolution with the same threads.
#pragma once

#include <cstdint>
#include <string>

namespace thaw::bench {

struct ConvCpuOptions {
  int64_t batch = 8;
  int repeat = 5;
  int threads = 0;
  std::string json_path;
};

void run_conv_cpu(const ConvCpuOptions& opt);

}  // namespace thaw::bench
