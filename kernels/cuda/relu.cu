// relu on CUDA (float32): y = max(x, 0) with NaN propagated (as the CPU twin); dx = dy where y > 0.
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/launch.h"

namespace thaw::cuda {

namespace {

__global__ void relu_forward_kernel(const float* x, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

__global__ void relu_backward_kernel(const float* dy, const float* y, float* dx, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

}  // namespace

void relu_forward(const Tensor& x, const Tensor& y) {
  const int64_t n = x.numel();
  if (n == 0) return;
  relu_forward_kernel<<<blocks_for(n), kThreadsPerBlock, 0, stream()>>>(x.data<float>(), y.data<float>(), n);
  check_launch("relu_forward");
}

void relu_backward(const Tensor& dy, const Tensor& y, const Tensor& dx) {
  const int64_t n = dy.numel();
  if (n == 0) return;
  relu_backward_kernel<<<blocks_for(n), kThreadsPerBlock, 0, stream()>>>(dy.data<float>(), y.data<float>(),
                                                            dx.data<float>(), n);
  check_launch("relu_backward");
}

}  // namespace thaw::cuda
