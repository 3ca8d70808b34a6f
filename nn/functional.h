// nn/functional.h: the differentiable ops. Each runs the forward kernel from kernels/ops.h and, when
// should_record() says so (grad mode on and some input requires grad), records a node whose backward
// calls the matching backward kernels. Nodes save only what their needed gradients use: a conv whose
// weight is frozen does not keep its input alive.
#pragma once

#include "core/tensor.h"
#include "kernels/ops.h"

namespace thaw::nn::functional {

// x: (N, C, H, W), w: (K, C, R, S), b: (K,) or undefined -> (N, K, P, Q)
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const ops::Conv2dParams& params);

// x: (N, C, H, W); gamma, beta, running_mean, running_var: (C,). use_batch_stats: normalise with the batch's
// statistics and update the running ones in place (train mode); otherwise use the running statistics
// (eval, or a BatchNorm frozen for fine-tuning). The running statistics are buffers: never differentiated.
Tensor batch_norm(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                  const Tensor& running_var, bool use_batch_stats, double momentum = 0.1, double eps = 1e-5);

// relu(batch_norm(x, ...)) in one op (kernels/ops.h batch_norm_relu_*): the same values and gradients.
Tensor batch_norm_relu(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                       const Tensor& running_var, bool use_batch_stats, double momentum = 0.1,
                       double eps = 1e-5);

Tensor relu(const Tensor& x);
Tensor max_pool2d(const Tensor& x, const ops::Pool2dParams& params);
Tensor global_avg_pool2d(const Tensor& x);  // AdaptiveAvgPool2d(1): (N, C, H, W) -> (N, C, 1, 1)
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b);  // x: (N, I), w: (O, I) -> (N, O)

Tensor add(const Tensor& a, const Tensor& b);  // same shapes (the residual connection)
// relu(add(a, b)) in one op (kernels/ops.h add_relu_forward): the same values and gradients.
Tensor add_relu(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);  // elementwise, same shapes
Tensor scale(const Tensor& x, double alpha);
Tensor sum(const Tensor& x);                          // 0-d
Tensor reshape(const Tensor& x, const Shape& shape);  // a view; gradients reshaped back
Tensor flatten(const Tensor& x);                      // (N, ...) -> (N, -1)

// Mean cross-entropy of softmax(logits) (N, C) against int64 labels (N,), PyTorch's weighted mean when
// class_weights (C,) is given. -> 0-d
Tensor cross_entropy(const Tensor& logits, const Tensor& labels, const Tensor& class_weights = Tensor());
// Mean binary cross-entropy of sigmoid(logits) against float targets of the same shape. -> 0-d
Tensor bce_with_logits(const Tensor& logits, const Tensor& targets);

}  // namespace thaw::nn::functional
