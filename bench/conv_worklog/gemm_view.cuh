// The convolution as a matrix product (steps 2-4 of the worklog): Y = A B with
//   A (M x Kd):     A[m][kk]   = w[k = m][c, r, s = kk]          M = K (output channels), Kd = C * R * S
//   B (Kd x Ncols): B[kk][col] = x[n][c][p*stride - pad + r][q*stride - pad + s], col = (n, p, q)
//   Y (M x Ncols):  y[n][k][p][q], Ncols = N * P * Q
// B is never built in memory (that would be im2col: C*R*S times the output's size): b() gathers each element
// from x when a tile needs it, which is what "implicit GEMM" means. Out of range reads give 0 (the tile's
// edges, and the convolution's padding). Divisions keep it readable here; thaw's kernel steps (c, r, s)
// with a mixed-radix counter instead (kernels/cuda/conv2d_tiles.cuh).
#pragma once

#include "common.cuh"

struct GemmView {
  Problem p;
  int M, Ncols, Kd, PQ;

  __device__ float a(const float* __restrict__ w, int m, int kk) const {
    return m < M && kk < Kd ? w[int64_t(m) * Kd + kk] : 0.0f;
  }
  __device__ float b(const float* __restrict__ x, int kk, int col) const {
    if (kk >= Kd || col >= Ncols) return 0.0f;
    const int s = kk % p.S, r = kk / p.S % p.R, c = kk / (p.R * p.S);
    const int n = col / PQ, pq = col % PQ;
    const int h = pq / p.Q() * p.stride - p.pad + r, wi = pq % p.Q() * p.stride - p.pad + s;
    if (h < 0 || h >= p.H || wi < 0 || wi >= p.W) return 0.0f;
    return x[((int64_t(n) * p.C + c) * p.H + h) * p.W + wi];
  }
  __device__ void store(float* __restrict__ y, int m, int col, float v) const {
    if (m < M && col < Ncols) y[(int64_t(col / PQ) * M + m) * PQ + col % PQ] = v;
  }
};

inline GemmView gemm_view(const Problem& p) {
  return {p, p.K, p.N * p.P() * p.Q(), p.C * p.R * p.S, p.P() * p.Q()};
}
