// thaw parity: runs exactly what a parity input file describes and writes what it computed, in the layout
// of DESIGN.md "Parity file", so that a test can compare it tensor by tensor with PyTorch's own output
// (weights_tools/make_golden.py writes both the input and PyTorch's output).
//
// Input file: /weights/<name> (torchvision state dict), /x (N,3,H,W), /y int64 (N,), optional
// /class_weights (C,); root attributes arch, num_classes, mode (train|eval), bn_mode (train|frozen),
// trainable (comma-separated name patterns), optimizer (sgd|adam|adamw), lr, momentum, nesterov,
// weight_decay, beta1, beta2, eps, steps K, loss (cross_entropy|bce_with_logits).
// Output file: /logits, /loss (first forward), /grads/<name> (every trainable parameter after the first
// backward), /losses (K,) (the loss of each of K optimizer steps on the same batch), /params/<name> and
// /buffers/<name> (running statistics) after the K steps. PyTorch's expected file (make_golden.py
// --float64-reference) adds float64 references that thaw does not write: /logits64, /loss64, /grads64/<name>
// (the first forward/backward) and, with K > 0, /losses64 and /params64/<name> (the K steps in float64).
#pragma once

#include <string>

#include "core/device.h"

namespace thaw::apps {

void run_parity(const std::string& in_path, const std::string& out_path, Device device);

}  // namespace thaw::apps
