// thaw bench kernels: the problem tables. Every op that one training step of ResNet18/50 at 224x224 runs
// (all layers trainable: forward, then backward), named by thaw's kernel and by the torchvision layers that
// run it, merged into distinct shapes with a use count per network. Pure C++: no CUDA, no cuDNN.
//
// What a row counts (float32 = 4 bytes, int64 labels = 8):
//   flops: conv: 2 N K P Q C R S multiply-adds as two FLOPs, the same for all three passes; the other ops:
//          a small per-element count (approximate: they are limited by memory, not arithmetic).
//   bytes: every tensor the op must read or write, each once: the least traffic any implementation needs.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace thaw::bench {

enum class OpKind {
  ConvForward,            // ops::conv2d_forward
  ConvBackwardData,       // ops::conv2d_backward_data
  ConvBackwardWeight,     // ops::conv2d_backward_weight
  BatchNormForward,       // ops::batch_norm_forward, train mode (batch statistics, running stats updated):
                          // a BN with no ReLU after it (the last of a block, a downsample's)
  BatchNormBackward,      // ops::batch_norm_backward with batch statistics, dx wanted
  BatchNormReluForward,   // ops::batch_norm_relu_forward: BN then ReLU fused (the stem, inside the blocks)
  BatchNormReluBackward,  // ops::batch_norm_relu_backward
  ReluBackward,           // ops::relu_backward: the gradient of add_relu, for both of its inputs
  MaxPoolForward,         // ops::max_pool2d_forward
  MaxPoolBackward,        // ops::max_pool2d_backward
  AvgPoolForward,         // ops::global_avg_pool2d_forward
  AvgPoolBackward,        // ops::global_avg_pool2d_backward
  AddReluForward,         // ops::add_relu_forward: relu(a + b), the residual join of every block
  Add,                    // ops::add in the backward: a block's input feeds conv1 and the shortcut, and
                          // autograd sums the two gradients
  CrossEntropyForward,    // ops::cross_entropy_forward (unweighted)
  CrossEntropyBackward,   // ops::cross_entropy_backward
};
const char* op_name(OpKind op);  // thaw's function name: "conv2d_forward", ...
bool is_conv(OpKind op);         // conv rows are measured in TFLOP/s, the others in GB/s

struct Problem {
  OpKind op = OpKind::ConvForward;
  // Input x: (n, c, h, w). Softmax-xent: logits (n, c), h = w = 1.
  int64_t n = 0, c = 0, h = 0, w = 0;
  // Conv: k filters of r x r, stride, padding pad. Max-pool: window r x r, stride, pad. Others: unused.
  int64_t k = 0, r = 0, stride = 1, pad = 0;
  std::vector<std::string> layers;      // "resnet18 layer1.0.conv1": every layer that runs this problem
  std::map<std::string, int64_t> uses;  // model -> times one training step of that model runs it

  Shape x_shape() const;
  Shape w_shape() const;          // conv only: (k, c, r, r)
  Shape y_shape() const;          // the forward output: conv (n, k, p, q), pools (n, c, p, q), others like x
  std::string shape_str() const;  // "64x64x56x56 k64 3x3/1", "64x37": the dims that define the problem
  std::string name() const;       // "conv2d_forward 64x64x56x56 k64 3x3/1"
  double flops() const;
  double bytes() const;
  bool same_problem(const Problem& other) const;  // op and every dimension equal (layers, uses ignored)
};

struct TableOptions {
  std::vector<std::string> models{"resnet18", "resnet50"};
  std::vector<int64_t> batches{32, 64};
  int64_t image_size = 224;
  int64_t classes = 37;  // the head's classes (Oxford-IIIT Pet breeds)
  // Keep a row when its name() or one of its layers contains one of these (case-insensitive); empty: all.
  std::vector<std::string> filters;
};

// Every op that one training step of model (resnet18 | resnet50) runs, in execution order (forward, then
// the backward ops in reverse), one entry per call: its layer named, uses[model] = 1. The ops are the ones
// models/resnet.cpp calls: a BatchNorm followed by a ReLU is one batch_norm_relu, the residual join one
// add_relu. The image needs no gradient, so conv1 runs no backward-data. The fc layer (cuBLAS GEMMs in thaw
// and in PyTorch) is left out.
std::vector<Problem> network_ops(const std::string& model, int64_t batch, int64_t image_size,
                                 int64_t classes);

// The distinct problems of the chosen models and batches: equal problems merged (layers appended, uses
// summed per model), then filtered. Order: by batch, then op kind, then the forward order of the layers.
std::vector<Problem> make_problems(const TableOptions& options);

}  // namespace thaw::bench
