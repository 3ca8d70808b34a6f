// The CUDA backend: twins of kernels/cpu/cpu_ops.h with the same names and parameters. Plain C++ header
// (no CUDA types) so that kernels/<op>.cpp can dispatch to it. float32 only (float64 stays on the CPU, for
// gradient checks). Arguments are already checked by kernels/<op>.cpp; outputs are allocated by the caller
// on the same device and fully overwritten here. Everything runs on one stream, the default stream
// (launch.h: stream()), so work is ordered and freed memory may be reused at once; every launch is checked,
// naming the op.
//
// One op per file: kernels/cuda/<op>.cu holds the __global__ kernels, their launchers and these entries.
#pragma once

#include <string>

#include "core/tensor.h"
#include "kernels/ops.h"

namespace thaw::cuda {

// elementwise.cu
void add(const Tensor& a, const Tensor& b, const Tensor& y);
void add_(const Tensor& y, const Tensor& x, double alpha);
void mul(const Tensor& a, const Tensor& b, const Tensor& y);
void scale(const Tensor& x, double alpha, const Tensor& y);
void fill_(const Tensor& y, double value);
// reduce.cu
void sum(const Tensor& x, const Tensor& y);
void sum_to_channels(const Tensor& dy, const Tensor& db);

// conv2d_forward.cu, conv2d_backward_data.cu, conv2d_backward_weight.cu (tiled implicit GEMM)
void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, const ops::Conv2dParams& p,
                    const Tensor& y);
void conv2d_backward_data(const Tensor& dy, const Tensor& w, const ops::Conv2dParams& p, const Tensor& dx);
void conv2d_backward_weight(const Tensor& dy, const Tensor& x, const ops::Conv2dParams& p, const Tensor& dw);
// The precision the current card runs for a requested one (tf32/bf16 need compute capability 8.0).
Precision conv2d_precision(Precision requested);
// Forces the block tile of every later convolution: "128x128", "64x128", "64x64", or "" for the measured
// choice again (as the environment variable THAW_CONV_TILE does at start-up). For tests that compare tiles.
void force_conv2d_tile(const std::string& tile);

// batch_norm.cu
void batch_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                        const Tensor& running_var, bool use_batch_stats, double momentum, double eps,
                        const Tensor& y, const Tensor& mean, const Tensor& invstd);
void batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const Tensor& mean,
                         const Tensor& invstd, bool used_batch_stats, const Tensor& dx /* may be undefined */,
                         const Tensor& dgamma, const Tensor& dbeta);
// batch_norm.cu too: batch_norm_relu, the ReLU applied in the normalize pass and its mask in the backward's
// reads of dy (the twins of cpu/batch_norm_relu.cpp).
void batch_norm_relu_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                             const Tensor& running_mean, const Tensor& running_var, bool use_batch_stats,
                             double momentum, double eps, const Tensor& y, const Tensor& mean,
                             const Tensor& invstd);
void batch_norm_relu_backward(const Tensor& dy, const Tensor& y, const Tensor& x, const Tensor& gamma,
                              const Tensor& mean, const Tensor& invstd, bool used_batch_stats,
                              const Tensor& dx /* may be undefined */, const Tensor& dgamma,
                              const Tensor& dbeta);

// relu.cu
void relu_forward(const Tensor& x, const Tensor& y);
// add_relu.cu
void add_relu_forward(const Tensor& a, const Tensor& b, const Tensor& y);
void relu_backward(const Tensor& dy, const Tensor& y, const Tensor& dx);

// max_pool2d.cu, global_avg_pool2d.cu
void max_pool2d_forward(const Tensor& x, const ops::Pool2dParams& p, const Tensor& y, const Tensor& argmax);
void max_pool2d_backward(const Tensor& dy, const Tensor& argmax, const Tensor& dx);
void global_avg_pool2d_forward(const Tensor& x, const Tensor& y);
void global_avg_pool2d_backward(const Tensor& dy, const Tensor& dx);

// linear.cu (cuBLAS SGEMM)
void linear_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y);
void linear_backward_data(const Tensor& dy, const Tensor& w, const Tensor& dx);
void linear_backward_weight(const Tensor& dy, const Tensor& x, const Tensor& dw);

// cross_entropy.cu, bce_with_logits.cu
void cross_entropy_forward(const Tensor& logits, const Tensor& labels, const Tensor& class_weights,
                           const Tensor& loss, const Tensor& probs);
void cross_entropy_backward(const Tensor& dloss, const Tensor& probs, const Tensor& labels,
                            const Tensor& class_weights, const Tensor& dlogits);
void bce_with_logits_forward(const Tensor& logits, const Tensor& targets, const Tensor& loss);
void bce_with_logits_backward(const Tensor& dloss, const Tensor& logits, const Tensor& targets,
                              const Tensor& dlogits);

// optimizer.cu: fused elementwise updates (frozen parameters never reach them: optim/ skips them)
void sgd_update_(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer,
                 const ops::SgdHyper& h, bool first_step);
void adam_update_(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                  const ops::AdamHyper& h, int64_t step);

}  // namespace thaw::cuda
