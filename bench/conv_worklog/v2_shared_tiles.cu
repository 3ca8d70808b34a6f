// Step 2 of the convolution worklog (docs/kernel-worklog.md): the implicit GEMM with shared-memory tiles.
// A block of 256 threads owns a 64 x 64 tile of Y and walks Kd in steps of 8: it stages the 64 x 8 slice of
// A and the 8 x 64 slice of B in shared memory (2 + 2 loads per thread), then each thread accumulates a
// 4 x 4 patch of the tile in registers (rows ty + 16 i, columns tx + 16 j). Per step a thread does 128
// multiply-adds for 4 global loads (one per 32, against two per one in step 1) and 64 shared-memory reads
// (one per two multiply-adds: shared memory is now the bound).
#include "gemm_view.cuh"

constexpr int BM = 64, BN = 64, BK = 8;

__global__ __launch_bounds__(256) void conv_shared_tiles(GemmView g, const float* __restrict__ x,
                                                         const float* __restrict__ w, float* __restrict__ y) {
  __shared__ float As[BK][BM], Bs[BK][BN];
  const int t = threadIdx.x, tx = t % 16, ty = t / 16;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  float acc[4][4] = {};
  for (int k0 = 0; k0 < g.Kd; k0 += BK) {
    for (int l = 0; l < 2; ++l) {
      const int e = t + 256 * l;
      As[e % BK][e / BK] = g.a(w, m0 + e / BK, k0 + e % BK);  // 8 consecutive kk of one row of A
      Bs[e / BN][e % BN] = g.b(x, k0 + e / BN, n0 + e % BN);  // 64 consecutive columns of one row of B
    }
    __syncthreads();
    for (int kk = 0; kk < BK; ++kk)
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j)
          acc[i][j] += As[kk][ty + 16 * i] * Bs[kk][tx + 16 * j];
    __syncthreads();
  }
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j)
      g.store(y, m0 + ty + 16 * i, n0 + tx + 16 * j, acc[i][j]);
}

void launch(const Problem& p, const float* x, const float* w, float* y) {
  const GemmView g = gemm_view(p);
  conv_shared_tiles<<<dim3((g.Ncols + BN - 1) / BN, (g.M + BM - 1) / BM), 256>>>(g, x, w, y);
}

int main(int argc, char** argv) {
  return worklog_main(argc, argv, "v2_shared_tiles", launch);
}
