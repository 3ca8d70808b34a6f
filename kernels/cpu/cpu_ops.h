// The CPU backend: the readable reference implementation of every op in kernels/ops.h.
// Same names and parameters as the CUDA twins in kernels/cuda/cuda_ops.h. Arguments are already checked
// by kernels/<op>.cpp; outputs are allocated by the caller and fully overwritten here.
// float32 and float64 (templates inside each .cpp); reductions accumulate in double.
#pragma once

#include "core/tensor.h"
#include "kernels/ops.h"

namespace thaw::cpu {

void add(const Tensor& a, const Tensor& b, const Tensor& y);
void add_(const Tensor& y, const Tensor& x, double alpha);
void mul(const Tensor& a, const Tensor& b, const Tensor& y);
void scale(const Tensor& x, double alpha, const Tensor& y);
void fill_(const Tensor& y, double value);
void sum(const Tensor& x, const Tensor& y);
void sum_to_channels(const Tensor& dy, const Tensor& db);

void conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, const ops::Conv2dParams& p,
                    const Tensor& y);
void conv2d_backward_data(const Tensor& dy, const Tensor& w, const ops::Conv2dParams& p, const Tensor& dx);
void conv2d_backward_weight(const Tensor& dy, const Tensor& x, const ops::Conv2dParams& p, const Tensor& dw);
// Always fp32: the CPU backend is the reference and ignores Conv2dParams::precision.
inline Precision conv2d_precision(Precision) {
  return Precision::FP32;
}

void batch_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                        const Tensor& running_var, bool use_batch_stats, double momentum, double eps,
                        const Tensor& y, const Tensor& mean, const Tensor& invstd);
void batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const Tensor& mean,
                         const Tensor& invstd, bool used_batch_stats, const Tensor& dx /* may be undefined */,
                         const Tensor& dgamma, const Tensor& dbeta);

void batch_norm_relu_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                             const Tensor& running_mean, const Tensor& running_var, bool use_batch_stats,
                             double momentum, double eps, const Tensor& y, const Tensor& mean,
                             const Tensor& invstd);
void batch_norm_relu_backward(const Tensor& dy, const Tensor& y, const Tensor& x, const Tensor& gamma,
                              const Tensor& mean, const Tensor& invstd, bool used_batch_stats,
                              const Tensor& dx /* may be undefined */, const Tensor& dgamma,
                              const Tensor& dbeta);

void relu_forward(const Tensor& x, const Tensor& y);
void add_relu_forward(const Tensor& a, const Tensor& b, const Tensor& y);
void relu_backward(const Tensor& dy, const Tensor& y, const Tensor& dx);

void max_pool2d_forward(const Tensor& x, const ops::Pool2dParams& p, const Tensor& y, const Tensor& argmax);
void max_pool2d_backward(const Tensor& dy, const Tensor& argmax, const Tensor& dx);
void global_avg_pool2d_forward(const Tensor& x, const Tensor& y);
void global_avg_pool2d_backward(const Tensor& dy, const Tensor& dx);

void linear_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y);
void linear_backward_data(const Tensor& dy, const Tensor& w, const Tensor& dx);
void linear_backward_weight(const Tensor& dy, const Tensor& x, const Tensor& dw);

void cross_entropy_forward(const Tensor& logits, const Tensor& labels, const Tensor& class_weights,
                           const Tensor& loss, const Tensor& probs);
void cross_entropy_backward(const Tensor& dloss, const Tensor& probs, const Tensor& labels,
                            const Tensor& class_weights, const Tensor& dlogits);
void bce_with_logits_forward(const Tensor& logits, const Tensor& targets, const Tensor& loss);
void bce_with_logits_backward(const Tensor& dloss, const Tensor& logits, const Tensor& targets,
                              const Tensor& dlogits);

// The direct definitions of conv2d (seven loops, accumulated in double; no im2col, no GEMM): the oracle that
// tests/test_cpu_fast_paths.cpp checks the im2col + GEMM paths above against. Slow: tests only.
void reference_conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, const ops::Conv2dParams& p,
                              const Tensor& y);
void reference_conv2d_backward_data(const Tensor& dy, const Tensor& w, const ops::Conv2dParams& p,
                                    const Tensor& dx);
void reference_conv2d_backward_weight(const Tensor& dy, const Tensor& x, const ops::Conv2dParams& p,
                                      const Tensor& dw);

// max_pool2d_forward window by window (the loop the forward's row-at-a-time scan must agree with).
void reference_max_pool2d_forward(const Tensor& x, const ops::Pool2dParams& p, const Tensor& y,
                                  const Tensor& argmax);

// Calls f(T{}) with T = float or double according to dtype (the dispatch level has checked it is one).
template <typename F>
void visit_floating(DType dtype, F&& f) {
  if (dtype == DType::Float64) {
    f(double{});
  } else {
    f(float{});
  }
}

}  // namespace thaw::cpu

// ==== optimizer updates (kernels/cpu/optimizer.cpp): see kernels/ops.h ====================================
namespace thaw::cpu {

void sgd_update_(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer,
                 const ops::SgdHyper& h, bool first_step);
void adam_update_(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                  const ops::AdamHyper& h, int64_t step);

}  // namespace thaw::cpu
// ==== end of optimizer updates ===========================================================================
