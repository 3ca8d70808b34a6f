// Step 4 of the convolution worklog (docs/kernel-worklog.md): overlap the loads with the arithmetic.
// Step 3 loads a slice, waits, computes, waits, loads the next. Here shared memory holds two slices: while
// the threads multiply slice k from one buffer, the global loads of slice k + 1 are already issued into
// registers (they take hundreds of cycles and the multiply-adds hide them), and are stored into the other
// buffer after the arithmetic; one barrier per slice instead of two. This is the structure of thaw's own
// float32 kernel (kernels/cuda/conv2d_tiles.cuh), which adds smaller tiles for small problems, split-K,
// division-free index walks and the two backward passes.
#include "gemm_view.cuh"

constexpr int BM = 128, BN = 128, BK = 8;

__global__ __launch_bounds__(256) void conv_double_buffer(GemmView g, const float* __restrict__ x,
                                                          const float* __restrict__ w,
                                                          float* __restrict__ y) {
  __shared__ __align__(16) float As[2][BK][BM];
  __shared__ __align__(16) float Bs[2][BK][BN];
  const int t = threadIdx.x, tx = t % 16, ty = t / 16;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  float next_a[4], next_b[4];  // the next slice, in flight in registers
  const auto fetch = [&](int k0) {
    for (int l = 0; l < 4; ++l) {
      const int e = t + 256 * l;
      next_a[l] = g.a(w, m0 + e / BK, k0 + e % BK);
      next_b[l] = g.b(x, k0 + e / BN, n0 + e % BN);
    }
  };
  const auto stage = [&](int buffer) {
    for (int l = 0; l < 4; ++l) {
      const int e = t + 256 * l;
      As[buffer][e % BK][e / BK] = next_a[l];
      Bs[buffer][e / BN][e % BN] = next_b[l];
    }
  };
  float acc[8][8] = {};
  fetch(0);
  stage(0);
  __syncthreads();
  int buffer = 0;
  for (int k0 = 0; k0 < g.Kd; k0 += BK) {
    const bool more = k0 + BK < g.Kd;
    if (more) fetch(k0 + BK);  // issued now, used after the arithmetic below
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      const float4 a0 = *reinterpret_cast<const float4*>(&As[buffer][kk][ty * 4]);
      const float4 a1 = *reinterpret_cast<const float4*>(&As[buffer][kk][64 + ty * 4]);
      const float4 b0 = *reinterpret_cast<const float4*>(&Bs[buffer][kk][tx * 4]);
      const float4 b1 = *reinterpret_cast<const float4*>(&Bs[buffer][kk][64 + tx * 4]);
      const float a[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
      const float b[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j)
          acc[i][j] += a[i] * b[j];
    }
    if (more) stage(buffer ^ 1);  // the other buffer: nobody reads it during this slice
    __syncthreads();
    buffer ^= 1;
  }
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 8; ++j)
      g.store(y, m0 + (i / 4) * 64 + ty * 4 + i % 4, n0 + (j / 4) * 64 + tx * 4 + j % 4, acc[i][j]);
}

void launch(const Problem& p, const float* x, const float* w, float* y) {
  const GemmView g = gemm_view(p);
  conv_double_buffer<<<dim3((g.Ncols + BN - 1) / BN, (g.M + BM - 1) / BM), 256>>>(g, x, w, y);
}

int main(int argc, char** argv) {
  return worklog_main(argc, argv, "v4_double_buffer", launch);
}
