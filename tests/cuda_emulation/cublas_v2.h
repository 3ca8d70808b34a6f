// A stand-in for cuBLAS (the calls kernels/cuda/linear.cu makes) for the CPU emulation of CUDA
// (cuda_runtime.h): cublasSgemm as the textbook loops over column-major matrices, each dot product summed
// in double and rounded once.
#pragma once

#include "cuda_runtime.h"

using cublasHandle_t = int*;
enum cublasStatus_t { CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_INVALID_VALUE = 7 };
enum cublasOperation_t { CUBLAS_OP_N, CUBLAS_OP_T };
enum cublasMath_t { CUBLAS_DEFAULT_MATH, CUBLAS_PEDANTIC_MATH = 2 };

inline cublasStatus_t cublasCreate(cublasHandle_t* handle) {
  *handle = &emu_handle;
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasDestroy(cublasHandle_t) {
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t) {
  return CUBLAS_STATUS_SUCCESS;
}
inline cublasStatus_t cublasSetMathMode(cublasHandle_t, cublasMath_t) {
  return CUBLAS_STATUS_SUCCESS;
}
inline const char* cublasGetStatusString(cublasStatus_t status) {
  return status == CUBLAS_STATUS_SUCCESS ? "CUBLAS_STATUS_SUCCESS" : "CUBLAS_STATUS_INVALID_VALUE";
}

// C (m x n) = alpha op(A) op(B) + beta C, column-major; op(A) is m x k, op(B) is k x n.
inline cublasStatus_t cublasSgemm(cublasHandle_t, cublasOperation_t transa, cublasOperation_t transb, int m,
                                  int n, int k, const float* alpha, const float* a, int lda, const float* b,
                                  int ldb, const float* beta, float* c, int ldc) {
  if (m < 0 || n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
  auto a_at = [&](int i, int l) {
    return transa == CUBLAS_OP_N ? a[i + int64_t(l) * lda] : a[l + int64_t(i) * lda];
  };
  auto b_at = [&](int l, int j) {
    return transb == CUBLAS_OP_N ? b[l + int64_t(j) * ldb] : b[j + int64_t(l) * ldb];
  };
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < m; ++i) {
      double sum = 0;
      for (int l = 0; l < k; ++l)
        sum += double(a_at(i, l)) * double(b_at(l, j));
      float& out = c[i + int64_t(j) * ldc];
      out = *beta == 0.0f ? float(*alpha * sum) : float(*alpha * sum + double(*beta) * out);
    }
  return CUBLAS_STATUS_SUCCESS;
}
