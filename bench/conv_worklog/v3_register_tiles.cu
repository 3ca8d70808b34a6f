// Step 3 of the convolution worklog (docs/kernel-worklog.md): bigger tiles, more work per thread.
// The block's tile grows to 128 x 128 and each thread's patch to 8 x 8: rows ty * 4 + {0..3} and
// 64 + ty * 4 + {0..3}, columns likewise with tx. A thread now reads its 8 values of A and 8 of B for one kk
// as four 16-byte float4 loads from shared memory and does 64 multiply-adds with them (16 per load
// instruction, against 2 in step 2), and the block does 128 * 128 * 8 multiply-adds per 2048 global loads
// (one per 64). What is left: the loads of the next slice wait for the current one's arithmetic to end.
#include "gemm_view.cuh"

constexpr int BM = 128, BN = 128, BK = 8;

__global__ __launch_bounds__(256) void conv_register_tiles(GemmView g, const float* __restrict__ x,
                                                           const float* __restrict__ w,
                                                           float* __restrict__ y) {
  __shared__ __align__(16) float As[BK][BM];
  __shared__ __align__(16) float Bs[BK][BN];
  const int t = threadIdx.x, tx = t % 16, ty = t / 16;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  float acc[8][8] = {};
  for (int k0 = 0; k0 < g.Kd; k0 += BK) {
    for (int l = 0; l < 4; ++l) {
      const int e = t + 256 * l;
      As[e % BK][e / BK] = g.a(w, m0 + e / BK, k0 + e % BK);
      Bs[e / BN][e % BN] = g.b(x, k0 + e / BN, n0 + e % BN);
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      const float4 a0 = *reinterpret_cast<const float4*>(&As[kk][ty * 4]);
      const float4 a1 = *reinterpret_cast<const float4*>(&As[kk][64 + ty * 4]);
      const float4 b0 = *reinterpret_cast<const float4*>(&Bs[kk][tx * 4]);
      const float4 b1 = *reinterpret_cast<const float4*>(&Bs[kk][64 + tx * 4]);
      const float a[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
      const float b[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j)
          acc[i][j] += a[i] * b[j];
    }
    __syncthreads();
  }
  for (int i = 0; i < 8; ++i)
    for (int j = 0; j < 8; ++j)
      g.store(y, m0 + (i / 4) * 64 + ty * 4 + i % 4, n0 + (j / 4) * 64 + tx * 4 + j % 4, acc[i][j]);
}

void launch(const Problem& p, const float* x, const float* w, float* y) {
  const GemmView g = gemm_view(p);
  conv_register_tiles<<<dim3((g.Ncols + BN - 1) / BN, (g.M + BM - 1) / BM), 256>>>(g, x, w, y);
}

int main(int argc, char** argv) {
  return worklog_main(argc, argv, "v3_register_tiles", launch);
}
