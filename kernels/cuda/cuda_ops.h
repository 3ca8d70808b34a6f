// The CUDA backend: twins of kernels/cpu/cpu_ops.h with the same names and parameters. Plain C++ header
// (no CUDA types) so that kernels/<op>.cpp can dispatch to it. float32 only.
// Present so far: the elementwise ops and relu; the other ops' kernels come with the CUDA backend issue,
// and until then kernels/<op>.cpp rejects CUDA tensors for them with a clear error (THAW_RUN_CPU).
#pragma once

#include "core/tensor.h"

namespace thaw::cuda {

void add(const Tensor& a, const Tensor& b, const Tensor& y);
void add_(const Tensor& y, const Tensor& x, double alpha);
void mul(const Tensor& a, const Tensor& b, const Tensor& y);
void scale(const Tensor& x, double alpha, const Tensor& y);
void fill_(const Tensor& y, double value);

void relu_forward(const Tensor& x, const Tensor& y);
void relu_backward(const Tensor& dy, const Tensor& y, const Tensor& dx);

}  // namespace thaw::cuda
