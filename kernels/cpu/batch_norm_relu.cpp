// batch_norm2d followed by relu, fused, on the CPU: the batch_norm loops of
// kernels/cpu/batch_norm_kernels.h with the relu applied as each output is written (forward) and its mask
// applied as each gradient is read (backward). Bit for bit the same as batch_norm then relu (and
// relu_backward then batch_norm_backward), one pass and one tensor fewer each way.
#include "kernels/cpu/batch_norm_kernels.h"
#include "kernels/cpu/cpu_ops.h"

namespace thaw::cpu {

void batch_norm_relu_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                             const Tensor& running_mean, const Tensor& running_var, bool use_batch_stats,
                             double momentum, double eps, const Tensor& y, const Tensor& mean,
                             const Tensor& invstd) {
  visit_floating(x.dtype(), [&](auto zero) {
    bn::forward<decltype(zero), /*Relu=*/true>(x, gamma, beta, running_mean, running_var, use_batch_stats,
                                               momentum, eps, y, mean, invstd);
  });
}

void batch_norm_relu_backward(const Tensor& dy, const Tensor& y, const Tensor& x, const Tensor& gamma,
                              const Tensor& mean, const Tensor& invstd, bool used_batch_stats,
                              const Tensor& dx, const Tensor& dgamma, const Tensor& dbeta) {
  visit_floating(x.dtype(), [&](auto zero) {
    bn::backward<decltype(zero), /*Relu=*/true>(dy, y, x, gamma, mean, invstd, used_batch_stats, dx, dgamma,
                                                dbeta);
  });
}

}  // namespace thaw::cpu
