// batch_norm2d on the CPU: the loops are in kernels/cpu/batch_norm_kernels.h (shared with the fused
// batch_norm_relu). One channel per task; statistics in double, two passes (mean, then the sum of squared
// deviations) so that large means do not cancel the variance.
#include "kernels/cpu/batch_norm_kernels.h"
#include "kernels/cpu/cpu_ops.h"

namespace thaw::cpu {

void batch_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, const Tensor& running_mean,
                        const Tensor& running_var, bool use_batch_stats, double momentum, double eps,
                        const Tensor& y, const Tensor& mean, const Tensor& invstd) {
  visit_floating(x.dtype(), [&](auto zero) {
    bn::forward<decltype(zero), /*Relu=*/false>(x, gamma, beta, running_mean, running_var, use_batch_stats,
                                                momentum, eps, y, mean, invstd);
  });
}

void batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const Tensor& mean,
                         const Tensor& invstd, bool used_batch_stats, const Tensor& dx, const Tensor& dgamma,
                         const Tensor& dbeta) {
  visit_floating(x.dtype(), [&](auto zero) {
    bn::backward<decltype(zero), /*Relu=*/false>(dy, Tensor(), x, gamma, mean, invstd, used_batch_stats, dx,
                                                 dgamma, dbeta);
  });
}

}  // namespace thaw::cpu
