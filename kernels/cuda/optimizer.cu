// Optimizer updates on CUDA (float32), the twins of kernels/cpu/optimizer.cpp: one fused grid-stride kernel
// per update, one thread per element, param and its state updated in place (formulas in kernels/ops.h).
//
//   param p, grad g, state buffers: all the same shape (n elements).
//   SGD:  d = g + wd p;  buf = first_step ? d : momentum buf + (1 - dampening) d;
//         d = nesterov ? d + momentum buf : buf;  p = p + (-lr) d
//   Adam: (AdamW: p = p (1 - lr wd) first; Adam: g = g + wd p)
//         m = b1 m + (1 - b1) g;  v = b2 v + ((1 - b2) g) g;
//         p = p + (-(lr / (1 - b1^t)) m) / (sqrt(v) / sqrt(1 - b2^t) + eps)
//
// To match the CPU twin to the bit, the scalars come from the same code (kernels/optimizer_scalars.h: double,
// then rounded once to float), and every float operation is spelled with a round-to-nearest intrinsic
// (__fmul_rn, __fadd_rn, __fdiv_rn, __fsqrt_rn) in the CPU's order: nvcc would otherwise contract a * b + c
// into one FMA, which rounds once where the CPU rounds twice.
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/launch.h"
#include "kernels/optimizer_scalars.h"

namespace thaw::cuda {

namespace {

// buf: nullptr when momentum == 0 (no momentum buffer).
__global__ void sgd_update_kernel(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ buf,
                                  int64_t n, float weight_decay, float momentum, float one_minus_dampening,
                                  float minus_lr, bool use_weight_decay, bool nesterov, bool first_step) {
  for (const int64_t i : grid_stride(n)) {
    const float pi = p[i];
    float d = g[i];
    if (use_weight_decay) d = __fadd_rn(d, __fmul_rn(weight_decay, pi));
    if (buf != nullptr) {
      const float b =
          first_step ? d : __fadd_rn(__fmul_rn(buf[i], momentum), __fmul_rn(one_minus_dampening, d));
      buf[i] = b;
      d = nesterov ? __fadd_rn(d, __fmul_rn(momentum, b)) : b;
    }
    p[i] = __fadd_rn(pi, __fmul_rn(minus_lr, d));
  }
}

__global__ void adam_update_kernel(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ m,
                                   float* __restrict__ v, int64_t n, float beta1, float one_minus_beta1,
                                   float beta2, float one_minus_beta2, float eps, float weight_decay,
                                   float decay_factor, float bias_correction2_sqrt, float minus_step_size,
                                   bool decoupled, bool coupled) {
  for (const int64_t i : grid_stride(n)) {
    float pi = p[i], gi = g[i];
    if (decoupled) pi = __fmul_rn(pi, decay_factor);
    if (coupled) gi = __fadd_rn(gi, __fmul_rn(weight_decay, pi));
    const float mi = __fadd_rn(__fmul_rn(m[i], beta1), __fmul_rn(one_minus_beta1, gi));
    const float vi = __fadd_rn(__fmul_rn(v[i], beta2), __fmul_rn(__fmul_rn(one_minus_beta2, gi), gi));
    m[i] = mi;
    v[i] = vi;
    const float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), bias_correction2_sqrt), eps);
    p[i] = __fadd_rn(pi, __fdiv_rn(__fmul_rn(minus_step_size, mi), denom));
  }
}

}  // namespace

void sgd_update_(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer,
                 const ops::SgdHyper& h, bool first_step) {
  const int64_t n = param.numel();
  if (n == 0) return;
  const ops::SgdScalars<float> s(h);
  float* buf = h.momentum != 0 ? momentum_buffer.data<float>() : nullptr;
  sgd_update_kernel<<<blocks_for(n), kThreadsPerBlock, 0, stream()>>>(
      param.data<float>(), grad.data<float>(), buf, n, s.weight_decay, s.momentum, s.one_minus_dampening,
      s.minus_lr, s.use_weight_decay, h.nesterov, first_step);
  check_launch("sgd_update_");
}

void adam_update_(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                  const ops::AdamHyper& h, int64_t step) {
  const int64_t n = param.numel();
  if (n == 0) return;
  const ops::AdamScalars<float> s(h, step);
  adam_update_kernel<<<blocks_for(n), kThreadsPerBlock, 0, stream()>>>(
      param.data<float>(), grad.data<float>(), exp_avg.data<float>(), exp_avg_sq.data<float>(), n, s.beta1,
      s.one_minus_beta1, s.beta2, s.one_minus_beta2, s.eps, s.weight_decay, s.decay_factor,
      s.bias_correction2_sqrt, s.minus_step_size, s.decoupled, s.coupled);
  check_launch("adam_update_");
}

}  // namespace thaw::cuda
