// Elementwise ops on CUDA (float32): add, add_, mul, scale, fill_. Each is a functor run by map_kernel
// (map.cuh: a grid-stride kernel with float4 loads and stores when every pointer is 16-byte aligned, one
// element at a time otherwise), launched by launch_map on the default stream, behind the entry point of
// cuda_ops.h. alpha and value arrive as double and are rounded once to float on the host.
//   add:   y = a + b              mul:   y = a * b
//   add_:  y = fma(alpha, x, y)   (one rounding: y + alpha * x as nvcc contracts it)
//   scale: y = alpha * x          fill_: y = value
#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/map.cuh"

namespace thaw::cuda {

namespace {

struct Add {
  __device__ float operator()(float a, float b) const { return a + b; }
};

struct Axpy {  // y += alpha x, fused
  float alpha;
  __device__ float operator()(float y, float x) const { return __fmaf_rn(alpha, x, y); }
};

struct Mul {
  __device__ float operator()(float a, float b) const { return a * b; }
};

struct Scale {
  float alpha;
  __device__ float operator()(float x) const { return alpha * x; }
};

struct Fill {
  float value;
  __device__ float operator()() const { return value; }
};

}  // namespace

void add(const Tensor& a, const Tensor& b, const Tensor& y) {
  const int64_t n = y.numel();
  if (n == 0) return;
  launch_map(Add{}, n, y.data<float>(), a.data<float>(), b.data<float>());
  check_launch("add");
}

void add_(const Tensor& y, const Tensor& x, double alpha) {
  const int64_t n = y.numel();
  if (n == 0) return;
  launch_map(Axpy{float(alpha)}, n, y.data<float>(), y.data<float>(), x.data<float>());
  check_launch("add_");
}

void mul(const Tensor& a, const Tensor& b, const Tensor& y) {
  const int64_t n = y.numel();
  if (n == 0) return;
  launch_map(Mul{}, n, y.data<float>(), a.data<float>(), b.data<float>());
  check_launch("mul");
}

void scale(const Tensor& x, double alpha, const Tensor& y) {
  const int64_t n = y.numel();
  if (n == 0) return;
  launch_map(Scale{float(alpha)}, n, y.data<float>(), x.data<float>());
  check_launch("scale");
}

void fill_(const Tensor& y, double value) {
  const int64_t n = y.numel();
  if (n == 0) return;
  launch_map(Fill{float(value)}, n, y.data<float>());
  check_launch("fill_");
}

}  // namespace thaw::cuda
