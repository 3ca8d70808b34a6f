// thaw parity: runs exactly what a parity input file describes and writes what it computed, in the layout
// of weights_tools/README.md (the parity files), so that a test can compare it tensor by tensor with
// PyTorch's own output (weights_tools/make_golden.py writes both the input and PyTorch's output).
//
// Input file: /weights/<name> (torchvision state dict), /x (N,3,H,W), /y int64 (N,), optional
// /class_weights (C,); root attributes arch, num_classes, mode (train|eval), bn_mode (train|frozen),
// trainable (comma-separated name patterns), optimizer (sgd|adam|adamw), lr, momentum, nesterov,
// weight_decay, beta1, beta2, eps, steps K, loss (cross_entropy|bce_with_logits).
// Output file, in the run's dtype (float32, or float64 with --dtype float64): /logits, /loss (first
// forward), /grads/<name> (every trainable parameter after the first backward), /losses (K,) (the loss of
// each of K optimizer steps on the same batch), /params/<name> and /buffers/<name> (running statistics) after
// the K steps. PyTorch's expected file (make_golden.py --float64-reference) has these in float32 and again in
// float64 (/logits64, /grads64/<name>, /params64/<name>, ...), plus both after the first step
// (/params_step1/<name>, /params64_step1/<name>, ...): tests/test_parity_resnet.cpp compares thaw's float64
// run with PyTorch's, and thaw's float32 run of one step (--steps 1) with PyTorch's float64 first step.
#pragma once

#include <string>

#include "core/device.h"
#include "core/dtype.h"

namespace thaw::train {

// What a run may change of the file's description: the dtype of the whole run (float64 on the CPU: every
// parameter, buffer, activation and optimizer state in double, the parity test's trajectories) and the
// number of optimizer steps (-1: the file's K). Outputs are written in the run's dtype.
struct ParityOverrides {
  DType dtype = DType::Float32;
  int64_t steps = -1;
};

void run_parity(const std::string& in_path, const std::string& out_path, Device device,
                const ParityOverrides& overrides = {});

}  // namespace thaw::train
