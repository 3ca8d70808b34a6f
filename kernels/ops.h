// kernels/ops.h: the one dispatch point for every numerical op thaw has.
//
// Each op checks its arguments here (shapes, dtypes, devices: a thaw::Error naming the op and the tensors),
// allocates its outputs on the inputs' device, and runs the twin of the same name in kernels/cpu/<op>.cpp
// or kernels/cuda/<op>.cu. Ops know nothing of autograd or modules: nn/functional.h builds the
// differentiable ops on top of these.
//
// Conventions:
//   - Layout: contiguous, 4-D activations NCHW. x: (N, C, H, W), conv weights w: (K, C, R, S).
//   - dtype: float32 on every device; float64 too on the CPU (for gradient checks in double). Labels int64.
//   - Backward functions return fresh gradients (dx = ..., never accumulate); autograd does the summing.
//   - Reductions on the CPU accumulate in double.
#pragma once

#include <cstdint>
#include <string>

#include "core/precision.h"
#include "core/tensor.h"

namespace thaw::ops {

// ---- CPU threads ------------------------------------------------------------------------------------
// The CPU kernels' thread budget: one pool of cpu_threads() threads (the calling thread is one of them) runs
// every parallel loop, the OpenBLAS GEMMs included (single-threaded inside the pool's tasks), so the total
// never exceeds it and nested loops do not multiply it. Default: THAW_NUM_THREADS, else OMP_NUM_THREADS,
// else the CPUs this process may use (affinity mask and cgroup quota). kernels/threads.cpp,
// docs/cpu-backend.md.
void set_cpu_threads(int threads);
int cpu_threads();

// ---- elementwise and reductions (any shape; operands of one op share shape, dtype and device) ------------
Tensor add(const Tensor& a, const Tensor& b);                   // a + b
void add_(const Tensor& y, const Tensor& x, double alpha = 1);  // y += alpha * x  (in place)
Tensor mul(const Tensor& a, const Tensor& b);                   // a * b, elementwise
Tensor scale(const Tensor& x, double alpha);                    // alpha * x
void fill_(const Tensor& y, double value);                      // y[:] = value
Tensor sum(const Tensor& x);                                    // 0-d: sum of all elements
// dy: (N, C, ...) -> (C,): sum over every dimension but 1 (bias gradients of conv and linear).
Tensor sum_to_channels(const Tensor& dy);

// ---- conv2d -----------------------------------------------------------------------------------------
struct Conv2dParams {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  // The arithmetic of the CUDA kernels (core/precision.h); the CPU backend computes float32 whatever it is.
  Precision precision = Precision::FP32;
};
// (N, K, P, Q) with P = (H + 2 pad_h - R) / stride_h + 1, Q likewise; checks the shapes fit.
Shape conv2d_output_shape(const Shape& x, const Shape& w, const Conv2dParams& p);
// y[n,k,p,q] = b[k] + sum_{c,r,s} x[n, c, p*stride_h - pad_h + r, q*stride_w - pad_w + s] * w[k,c,r,s]
// x: (N, C, H, W), w: (K, C, R, S), b: (K,) or undefined  ->  y: (N, K, P, Q)
Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dParams& p);
// dx = d(sum y*dy)/dx.  dy: (N, K, P, Q), w: (K, C, R, S)  ->  dx: x_shape
Tensor conv2d_backward_data(const Tensor& dy, const Tensor& w, const Shape& x_shape, const Conv2dParams& p);
// dw = d(sum y*dy)/dw.  dy: (N, K, P, Q), x: (N, C, H, W)  ->  dw: w_shape.  (db = sum_to_channels(dy))
Tensor conv2d_backward_weight(const Tensor& dy, const Tensor& x, const Shape& w_shape, const Conv2dParams& p);
// The precision conv2d runs in on device for a requested one: fp32 on the CPU (the reference computes
// float32 whatever is asked) and on CUDA cards without tensor cores for tf32/bf16 (compute capability < 8.0);
// else the requested one.
Precision conv2d_precision(Precision requested, Device device);
// What a command prints of it: "" for fp32 (the default says nothing), "tf32" where it runs as asked, else
// "tf32 (computed in fp32: the CPU backend computes float32)" or "... : no tensor cores for it here".
std::string conv2d_precision_note(Precision requested, Device device);

// ---- batch_norm2d ------------------------------------------------------------------------------------
struct BatchNormForward {
  Tensor y;       // like x
  Tensor mean;    // (C,) the mean used to normalise
  Tensor invstd;  // (C,) 1 / sqrt(var + eps) used to normalise
};
// x: (N, C, H, W) (or (N, C)); gamma, beta, running_mean, running_var: (C,).
// use_batch_stats (train mode): normalise with the batch mean and biased batch variance, and update
//   running_mean = (1 - momentum) running_mean + momentum mean,
//   running_var  = (1 - momentum) running_var  + momentum var * M / (M - 1)   (M = N*H*W, unbiased)
//   in place (as PyTorch; skipped if the running tensors are undefined). Needs M > 1.
// otherwise (eval / frozen): normalise with running_mean and running_var, which are not changed.
// y = (x - mean) * invstd * gamma + beta
BatchNormForward batch_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                    const Tensor& running_mean, const Tensor& running_var,
                                    bool use_batch_stats, double momentum, double eps);
struct BatchNormBackward {
  Tensor dx;      // like x; undefined unless need_dx
  Tensor dgamma;  // (C,) sum dy * xhat; undefined unless need_affine or used_batch_stats
  Tensor dbeta;   // (C,) sum dy; the same
};
// mean, invstd: as returned by the forward. used_batch_stats: whether the forward normalised with batch
// statistics (then dx includes the terms through mean and var, which are dbeta and dgamma) or with running
// statistics (dx = dy gamma invstd). need_affine false (gamma and beta frozen) with running statistics
// skips the two per-channel sums: dx alone is one elementwise pass.
BatchNormBackward batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma,
                                      const Tensor& mean, const Tensor& invstd, bool used_batch_stats,
                                      bool need_dx, bool need_affine = true);

// ---- batch_norm_relu: batch_norm2d then relu, fused ------------------------------------------------------
// y = max(batch_norm(x), 0), with the statistics, running updates and checks of batch_norm_forward; mean and
// invstd as it returns them. Bit for bit batch_norm_forward then relu_forward, with y written once (the ReLU
// is applied in BatchNorm's normalize pass).
BatchNormForward batch_norm_relu_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                                         const Tensor& running_mean, const Tensor& running_var,
                                         bool use_batch_stats, double momentum, double eps);
// Gradients of relu(batch_norm(x)). dy: the gradient of y; y: batch_norm_relu_forward's output (its sign is
// relu's mask); x, gamma, mean, invstd, used_batch_stats: as for batch_norm_backward. Bit for bit
// batch_norm_backward(relu_backward(dy, y), ...).
BatchNormBackward batch_norm_relu_backward(const Tensor& dy, const Tensor& y, const Tensor& x,
                                           const Tensor& gamma, const Tensor& mean, const Tensor& invstd,
                                           bool used_batch_stats, bool need_dx, bool need_affine = true);

// ---- relu -------------------------------------------------------------------------------------------
Tensor relu_forward(const Tensor& x);                     // y = max(x, 0)
Tensor relu_backward(const Tensor& dy, const Tensor& y);  // dx = dy * (y > 0)

// ---- add_relu: relu(a + b), the residual join, fused -------------------------------------------------
// Bit for bit relu_forward(add(a, b)), in one pass. Its backward is relu_backward(dy, y), which is the
// gradient of a and of b alike.
Tensor add_relu_forward(const Tensor& a, const Tensor& b);

// ---- pooling ----------------------------------------------------------------------------------------
struct Pool2dParams {
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
};
struct MaxPoolForward {
  Tensor y;       // (N, C, P, Q)
  Tensor argmax;  // int32 (N, C, P, Q): index h*W + w of the maximum within its input plane
};
// Max over each window; padding never wins (as -inf); ties go to the first in row-major order; NaN
// propagates. Requires pad <= kernel/2 (as PyTorch).
MaxPoolForward max_pool2d_forward(const Tensor& x, const Pool2dParams& p);
Tensor max_pool2d_backward(const Tensor& dy, const Tensor& argmax, const Shape& x_shape);  // dx: x_shape
// Mean over H and W (AdaptiveAvgPool2d(1)): x: (N, C, H, W) -> y: (N, C, 1, 1)
Tensor global_avg_pool2d_forward(const Tensor& x);
Tensor global_avg_pool2d_backward(const Tensor& dy, const Shape& x_shape);  // dx = dy / (H W), broadcast

// ---- linear -----------------------------------------------------------------------------------------
// y = x w^T + b.  x: (N, I), w: (O, I), b: (O,) or undefined  ->  y: (N, O)
Tensor linear_forward(const Tensor& x, const Tensor& w, const Tensor& b);
Tensor linear_backward_data(const Tensor& dy, const Tensor& w);    // dx = dy w:    (N, I)
Tensor linear_backward_weight(const Tensor& dy, const Tensor& x);  // dw = dy^T x:  (O, I)

// ---- losses -----------------------------------------------------------------------------------------
struct CrossEntropyForward {
  Tensor loss;   // 0-d
  Tensor probs;  // (N, C) softmax(logits), saved for the backward
};
// Cross-entropy of softmax(logits) against integer labels, PyTorch's weighted mean:
//   loss = sum_i w[y_i] * (logsumexp(logits_i) - logits_i[y_i]) / sum_i w[y_i]   (w = 1 when undefined)
// logits: (N, C), labels: int64 (N,) in [0, C), class_weights: (C,) or undefined.
CrossEntropyForward cross_entropy_forward(const Tensor& logits, const Tensor& labels,
                                          const Tensor& class_weights);
// dlogits[i, c] = dloss * w[y_i] * (probs[i, c] - [c == y_i]) / sum_j w[y_j].   dloss: 0-d
Tensor cross_entropy_backward(const Tensor& dloss, const Tensor& probs, const Tensor& labels,
                              const Tensor& class_weights);
// Binary cross-entropy on logits, mean over elements (numerically stable form):
//   loss = mean(max(x, 0) - x t + log(1 + exp(-|x|))).  logits, targets: same shape, targets in [0, 1].
Tensor bce_with_logits_forward(const Tensor& logits, const Tensor& targets);
Tensor bce_with_logits_backward(const Tensor& dloss, const Tensor& logits,
                                const Tensor& targets);  // (sigmoid(x)-t) dloss / n

}  // namespace thaw::ops

// ==== optimizer updates (kernels/optimizer.cpp; owner: optim/) ===========================================
// In-place updates of one parameter from its gradient, PyTorch's formulas (torch 1.13, single-tensor path,
// non-amsgrad, maximize off), computed per element in the parameter's dtype with every scalar rounded to
// that dtype first, as torch does. param, grad and every state buffer: the same shape, dtype and device;
// the buffers are updated in place along with param. Frozen parameters never reach these: the optimizer
// skips them (optim/optimizer.h).
namespace thaw::ops {

struct SgdHyper {
  double lr = 0;
  double momentum = 0;  // 0: plain SGD, no momentum buffer
  double dampening = 0;
  double weight_decay = 0;  // coupled L2: added to the gradient
  bool nesterov = false;    // needs momentum > 0 and dampening == 0
};
// torch.optim.SGD:  d = g + wd p;  if momentum: buf = first_step ? d : momentum buf + (1 - dampening) d,
//                   d = nesterov ? d + momentum buf : buf;  p -= lr d.
// param, grad, momentum_buffer: same shape. momentum_buffer: undefined when momentum == 0; otherwise
// allocated by the caller and overwritten with d on the first step (its old contents are ignored then).
void sgd_update_(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer, const SgdHyper& h,
                 bool first_step);

struct AdamHyper {
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;
  bool decoupled_weight_decay = false;  // false: Adam (g += wd p);  true: AdamW (p *= 1 - lr wd first)
};
// torch.optim.Adam / AdamW:  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
//   p -= (lr / (1 - b1^step)) m / (sqrt(v) / sqrt(1 - b2^step) + eps).
// param, grad, exp_avg (m), exp_avg_sq (v): same shape; m and v start at zero (the caller's job).
// step: this parameter's update count including this one (1 on its first update).
void adam_update_(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                  const AdamHyper& h, int64_t step);

}  // namespace thaw::ops
// ==== end of optimizer updates ===========================================================================
