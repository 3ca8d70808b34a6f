// Step 1 of the convolution worklog (docs/kernel-worklog.md): the definition, one thread per output.
// Thread i computes y[n][k][p][q] for i = ((n * K + k) * P + p) * Q + q, summing C * R * S products.
// Neighbouring threads share k (the same weights: one load serves the warp) and read neighbouring x (q
// consecutive), so the loads coalesce; but every product needs two loads from memory (L1 or L2 at best)
// for one fused multiply-add, and nothing is reused from registers.
#include "common.cuh"

__global__ void conv_naive(Problem p, const float* __restrict__ x, const float* __restrict__ w,
                           float* __restrict__ y) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= p.y_size()) return;
  const int P = p.P(), Q = p.Q();
  const int q = int(i % Q), pp = int(i / Q % P), k = int(i / (int64_t(P) * Q) % p.K);
  const int n = int(i / (int64_t(P) * Q * p.K));
  float acc = 0;
  for (int c = 0; c < p.C; ++c)
    for (int r = 0; r < p.R; ++r)
      for (int s = 0; s < p.S; ++s) {
        const int h = pp * p.stride - p.pad + r, wi = q * p.stride - p.pad + s;
        if (h < 0 || h >= p.H || wi < 0 || wi >= p.W) continue;
        acc += x[((int64_t(n) * p.C + c) * p.H + h) * p.W + wi] *
               w[((int64_t(k) * p.C + c) * p.R + r) * p.S + s];
      }
  y[i] = acc;
}

void launch(const Problem& p, const float* x, const float* w, float* y) {
  const int threads = 256;
  conv_naive<<<unsigned((p.y_size() + threads - 1) / threads), threads>>>(p, x, w, y);
}

int main(int argc, char** argv) {
  return worklog_main(argc, argv, "v1_naive", launch);
}
