// Argument checks shared by the dispatch files kernels/<op>.cpp, and the backend dispatch macros.
// Every message names the op and the argument, and describes the tensor that was passed.
#pragma once

#include <initializer_list>

#include "core/error.h"
#include "core/tensor.h"
#include "kernels/cpu/cpu_ops.h"
#if THAW_WITH_CUDA
#include "kernels/cuda/cuda_ops.h"
#endif

namespace thaw::ops::detail {

// Defined, floating (float32; float64 on the CPU), contiguous NCHW if 4-D, and with the given rank when rank
// >= 0.
void check_float(const Tensor& t, const char* op, const char* arg, int64_t rank = -1);
void check_nonempty(const Tensor& t, const char* op, const char* arg);
void check_shape(const Tensor& t, const Shape& expected, const char* op, const char* arg);
// dloss of a loss's backward: one floating element, on like's device and of its dtype.
void check_scalar_grad(const Tensor& dloss, const Tensor& like, const char* op);
// Every tensor in `others` matches `t`'s device and dtype.
void check_same(const Tensor& t, const char* arg,
                std::initializer_list<std::pair<const Tensor*, const char*>> others, const char* op);


// The argument checks of batch_norm_forward / _backward under the name `op`, shared with the fused
// batch_norm_relu (defined in kernels/batch_norm.cpp).
void check_batch_norm_forward(const char* op, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                              const Tensor& running_mean, const Tensor& running_var, bool use_batch_stats,
                              double momentum, double eps);
void check_batch_norm_backward(const char* op, const Tensor& dy, const Tensor& x, const Tensor& gamma,
                               const Tensor& mean, const Tensor& invstd);

}  // namespace thaw::ops::detail

// THAW_RUN(device, op, args...): calls cpu::op or cuda::op.
#if THAW_WITH_CUDA
#define THAW_RUN(device, op, ...)    \
  do {                               \
    if ((device).is_cpu()) {         \
      ::thaw::cpu::op(__VA_ARGS__);  \
    } else {                         \
      ::thaw::cuda::op(__VA_ARGS__); \
    }                                \
  } while (false)
#else
#define THAW_RUN(device, op, ...) ::thaw::cpu::op(__VA_ARGS__)
#endif
