// Elementwise ops on CUDA (float32): add, add_, mul, scale, fill_. Each: a grid-stride __global__ kernel,
// a launcher that sizes the grid on the default stream, and the entry point of cuda_ops.h.
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/launch.h"

namespace thaw::cuda {

namespace {

__global__ void add_kernel(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] = a[i] + b[i];
}

__global__ void axpy_kernel(float* y, const float* x, float alpha, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] += alpha * x[i];
}

__global__ void mul_kernel(const float* a, const float* b, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] = a[i] * b[i];
}

__global__ void scale_kernel(const float* x, float alpha, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] = alpha * x[i];
}

__global__ void fill_kernel(float* y, float value, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] = value;
}

}  // namespace

void add(const Tensor& a, const Tensor& b, const Tensor& y) {
  const int64_t n = y.numel();
  if (n == 0) return;
  add_kernel<<<blocks_for(n), kThreadsPerBlock, 0, stream()>>>(a.data<float>(), b.data<float>(), y.data<float>(), n);
  check_launch("add");
}

void add_(const Tensor& y, const Tensor& x, double alpha) {
  const int64_t n = y.numel();
  if (n == 0) return;
  axpy_kernel<<<blocks_for(n), kThreadsPerBlock, 0, stream()>>>(y.data<float>(), x.data<float>(), float(alpha), n);
  check_launch("add_");
}

void mul(const Tensor& a, const Tensor& b, const Tensor& y) {
  const int64_t n = y.numel();
  if (n == 0) return;
  mul_kernel<<<blocks_for(n), kThreadsPerBlock, 0, stream()>>>(a.data<float>(), b.data<float>(), y.data<float>(), n);
  check_launch("mul");
}

void scale(const Tensor& x, double alpha, const Tensor& y) {
  const int64_t n = y.numel();
  if (n == 0) return;
  scale_kernel<<<blocks_for(n), kThreadsPerBlock, 0, stream()>>>(x.data<float>(), float(alpha), y.data<float>(), n);
  check_launch("scale");
}

void fill_(const Tensor& y, double value) {
  const int64_t n = y.numel();
  if (n == 0) return;
  fill_kernel<<<blocks_for(n), kThreadsPerBlock, 0, stream()>>>(y.data<float>(), float(value), n);
  check_launch("fill_");
}

}  // namespace thaw::cuda
