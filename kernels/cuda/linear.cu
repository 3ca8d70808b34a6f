// linear (fully connected) on CUDA: the three GEMMs of kernels/cpu/linear.cpp through cuBLAS SGEMM
// (plain float32 math: no TF32), plus a small kernel that adds the bias to each row.
//   forward:         y (N, O)  = x (N, I) @ w^T (I, O) + b
//   backward-data:   dx (N, I) = dy (N, O) @ w (O, I)
//   backward-weight: dw (O, I) = dy^T (O, N) @ x (N, I)
//
// cuBLAS is column-major. A row-major (r, c) matrix is the column-major (c, r) matrix of its transpose, so
// each row-major product Z = A B is computed as the column-major Z^T = B^T A^T: the operands swap places and
// every leading dimension is the row-major row length.
#include <cublas_v2.h>

#include <mutex>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/launch.h"

namespace thaw::cuda {

namespace {

void check_cublas(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS) fail("cuBLAS error in {}: {}", what, cublasGetStatusString(status));
}

// One handle for the process (creating one costs milliseconds), bound to thaw's stream, float32 math.
cublasHandle_t handle() {
  static cublasHandle_t h = nullptr;
  static std::once_flag once;
  std::call_once(once, [] {
    check_cublas(cublasCreate(&h), "cublasCreate");
    check_cublas(cublasSetStream(h, stream()), "cublasSetStream");
    check_cublas(cublasSetMathMode(h, CUBLAS_PEDANTIC_MATH), "cublasSetMathMode");
  });
  return h;
}

// y[i, o] += b[o] for y (rows, cols).
__global__ void add_bias_rows_kernel(float* y, const float* b, int64_t rows, int64_t cols) {
  const int64_t n = rows * cols;
  for (const int64_t i : grid_stride(n))
    y[i] += b[i % cols];
}

}  // namespace

void linear_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y) {
  const int n = int(x.size(0)), in = int(x.size(1)), out = int(w.size(0));
  const float one = 1, zero = 0;
  // column-major y^T (O, N) = w (O, I as column-major (I, O), transposed) x^T (I, N)
  check_cublas(cublasSgemm(handle(), CUBLAS_OP_T, CUBLAS_OP_N, out, n, in, &one, w.data<float>(), in,
                           x.data<float>(), in, &zero, y.data<float>(), out),
               "linear_forward (cublasSgemm)");
  if (b.defined()) {
    add_bias_rows_kernel<<<blocks_for(y.numel()), kThreadsPerBlock, 0, stream()>>>(y.data<float>(),
                                                                                   b.data<float>(), n, out);
    check_launch("linear_forward (bias)");
  }
}

void linear_backward_data(const Tensor& dy, const Tensor& w, const Tensor& dx) {
  const int n = int(dy.size(0)), out = int(dy.size(1)), in = int(w.size(1));
  const float one = 1, zero = 0;
  // column-major dx^T (I, N) = w^T (I, O) dy^T (O, N)
  check_cublas(cublasSgemm(handle(), CUBLAS_OP_N, CUBLAS_OP_N, in, n, out, &one, w.data<float>(), in,
                           dy.data<float>(), out, &zero, dx.data<float>(), in),
               "linear_backward_data (cublasSgemm)");
}

void linear_backward_weight(const Tensor& dy, const Tensor& x, const Tensor& dw) {
  const int n = int(dy.size(0)), out = int(dy.size(1)), in = int(x.size(1));
  const float one = 1, zero = 0;
  // column-major dw^T (I, O) = x^T (I, N) dy (N, O)
  check_cublas(cublasSgemm(handle(), CUBLAS_OP_N, CUBLAS_OP_T, in, out, n, &one, x.data<float>(), in,
                           dy.data<float>(), out, &zero, dw.data<float>(), in),
               "linear_backward_weight (cublasSgemm)");
}

}  // namespace thaw::cuda
