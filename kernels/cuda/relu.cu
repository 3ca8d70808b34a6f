// relu on CUDA (float32): y = max(x, 0) with NaN propagated (as the CPU twin); dx = dy where y > 0. Both are
// functors run by map_kernel (map.cuh: grid-stride, float4 loads and stores when every pointer is 16-byte
// aligned), launched by launch_map on the default stream.
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/map.cuh"

namespace thaw::cuda {

namespace {

struct ReluForward {  // x < 0 is false for NaN and -0: both pass through
  __device__ float operator()(float x) const { return x < 0.0f ? 0.0f : x; }
};

struct ReluBackward {
  __device__ float operator()(float dy, float y) const { return y > 0.0f ? dy : 0.0f; }
};

}  // namespace

void relu_forward(const Tensor& x, const Tensor& y) {
  const int64_t n = x.numel();
  if (n == 0) return;
  launch_map(ReluForward{}, n, y.data<float>(), x.data<float>());
  check_launch("relu_forward");
}

void relu_backward(const Tensor& dy, const Tensor& y, const Tensor& dx) {
  const int64_t n = dy.numel();
  if (n == 0) return;
  launch_map(ReluBackward{}, n, dx.data<float>(), dy.data<float>(), y.data<float>());
  check_launch("relu_backward");
}

}  // namespace thaw::cuda
