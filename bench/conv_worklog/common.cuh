// What every step of the convolution worklog (docs/kernel-worklog.md) shares: the problem, its inputs, the
// check against a float64 CPU reference, and the timing. Each vN_*.cu includes this file, defines its
// kernel and a launch function, and calls worklog_main; it builds on its own:
//   nvcc -O3 -arch=sm_90 bench/conv_worklog/v1_naive.cu -o v1_naive && ./v1_naive
// A forward convolution, NCHW, float32, no bias:
//   y[n][k][p][q] = sum over c, r, s of x[n][c][p*stride - pad + r][q*stride - pad + s] * w[k][c][r][s]
// (x is 0 outside the image). Default: ResNet18's layer2 3x3 convolution at batch 64,
// 64x128x28x28 -> 64x128x28x28, 14.8 GFLOP. Arguments: N C H W K R S stride pad.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

// Timed launches and warm-ups (the CPU emulation in tests/ builds with fewer).
#ifndef WORKLOG_REPEAT
#define WORKLOG_REPEAT 20
#endif
#ifndef WORKLOG_WARMUP
#define WORKLOG_WARMUP 3
#endif

struct Problem {
  int N = 64, C = 128, H = 28, W = 28, K = 128, R = 3, S = 3, stride = 1, pad = 1;
  __host__ __device__ int P() const { return (H + 2 * pad - R) / stride + 1; }
  __host__ __device__ int Q() const { return (W + 2 * pad - S) / stride + 1; }
  __host__ __device__ int64_t x_size() const { return int64_t(N) * C * H * W; }
  __host__ __device__ int64_t w_size() const { return int64_t(K) * C * R * S; }
  __host__ __device__ int64_t y_size() const { return int64_t(N) * K * P() * Q(); }
  __host__ __device__ double flops() const { return 2.0 * double(y_size()) * C * R * S; }
};

inline void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    std::fprintf(stderr, "CUDA error in %s: %s\n", what, cudaGetErrorString(status));
    std::exit(1);
  }
}

// Uniform values in [-1, 1) from a 64-bit LCG (Knuth's MMIX constants): the same inputs on every machine.
inline std::vector<float> random_values(int64_t n, uint64_t seed) {
  std::vector<float> v(static_cast<size_t>(n));
  uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
  for (float& x : v) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    x = float(double(state >> 40) / double(1ull << 24) * 2.0 - 1.0);
  }
  return v;
}

// One output in float64, and the sum of |terms| that bounds its float32 rounding error.
inline void reference_output(const Problem& p, const std::vector<float>& x, const std::vector<float>& w,
                             int64_t index, double& value, double& magnitude) {
  const int q = int(index % p.Q()), pp = int(index / p.Q() % p.P());
  const int k = int(index / (int64_t(p.P()) * p.Q()) % p.K), n = int(index / (int64_t(p.P()) * p.Q() * p.K));
  value = magnitude = 0;
  for (int c = 0; c < p.C; ++c)
    for (int r = 0; r < p.R; ++r)
      for (int s = 0; s < p.S; ++s) {
        const int h = pp * p.stride - p.pad + r, wi = q * p.stride - p.pad + s;
        if (h < 0 || h >= p.H || wi < 0 || wi >= p.W) continue;
        const double term = double(x[((int64_t(n) * p.C + c) * p.H + h) * p.W + wi]) *
                            double(w[((int64_t(k) * p.C + c) * p.R + r) * p.S + s]);
        value += term;
        magnitude += std::fabs(term);
      }
}

// The launch of one version: y = conv(x, w) on the device, asynchronous.
using Launch = void (*)(const Problem& p, const float* x, const float* w, float* y);

// Runs the version: checks 4096 outputs spread over y against float64 (float32 summation of n = C*R*S
// products may be off by gamma_n * sum |terms|, gamma_n = n u / (1 - n u), u = 2^-24: Higham's bound, so
// the check is derived, not tuned), then times WORKLOG_REPEAT launches after WORKLOG_WARMUP warm-ups, and
// prints one line.
inline int worklog_main(int argc, char** argv, const char* name, Launch launch) {
  Problem p;
  if (argc == 10) {
    int* fields[] = {&p.N, &p.C, &p.H, &p.W, &p.K, &p.R, &p.S, &p.stride, &p.pad};
    for (int i = 0; i < 9; ++i)
      *fields[i] = std::atoi(argv[i + 1]);
  } else if (argc != 1) {
    std::fprintf(stderr, "usage: %s [N C H W K R S stride pad]\n", argv[0]);
    return 2;
  }
  const std::vector<float> x = random_values(p.x_size(), 1), w = random_values(p.w_size(), 2);
  float *dx = nullptr, *dw = nullptr, *dy = nullptr;
  check_cuda(cudaMalloc(&dx, size_t(p.x_size()) * sizeof(float)), "cudaMalloc x");
  check_cuda(cudaMalloc(&dw, size_t(p.w_size()) * sizeof(float)), "cudaMalloc w");
  check_cuda(cudaMalloc(&dy, size_t(p.y_size()) * sizeof(float)), "cudaMalloc y");
  check_cuda(cudaMemcpy(dx, x.data(), size_t(p.x_size()) * sizeof(float), cudaMemcpyHostToDevice), "copy x");
  check_cuda(cudaMemcpy(dw, w.data(), size_t(p.w_size()) * sizeof(float), cudaMemcpyHostToDevice), "copy w");
  check_cuda(cudaMemset(dy, 0xFF, size_t(p.y_size()) * sizeof(float)), "poison y");  // NaN: unwritten shows

  launch(p, dx, dw, dy);
  check_cuda(cudaGetLastError(), "launch");
  check_cuda(cudaDeviceSynchronize(), "first run");
  std::vector<float> y(size_t(p.y_size()));
  check_cuda(cudaMemcpy(y.data(), dy, y.size() * sizeof(float), cudaMemcpyDeviceToHost), "copy y");
  const double n = double(p.C) * p.R * p.S, u = std::ldexp(1.0, -24), gamma = n * u / (1 - n * u);
  double worst = 0;  // the largest error as a fraction of its bound
  bool ok = true;
  for (int i = 0; i < 4096; ++i) {
    const int64_t index = (int64_t(i) * 2654435761ll) % p.y_size();
    double value, magnitude;
    reference_output(p, x, w, index, value, magnitude);
    const double error = std::fabs(double(y[size_t(index)]) - value), bound = gamma * magnitude + 1e-30;
    if (!(error <= bound)) ok = false;  // NaN fails too
    worst = std::max(worst, error / bound);
  }

  cudaEvent_t start, stop;
  check_cuda(cudaEventCreate(&start), "event");
  check_cuda(cudaEventCreate(&stop), "event");
  for (int i = 0; i < WORKLOG_WARMUP; ++i)
    launch(p, dx, dw, dy);
  const int repeat = WORKLOG_REPEAT;
  std::vector<float> ms(repeat);
  for (float& t : ms) {
    check_cuda(cudaEventRecord(start), "record");
    launch(p, dx, dw, dy);
    check_cuda(cudaEventRecord(stop), "record");
    check_cuda(cudaEventSynchronize(stop), "synchronize");
    check_cuda(cudaEventElapsedTime(&t, start, stop), "elapsed");
  }
  std::sort(ms.begin(), ms.end());
  const double median = ms[repeat / 2];
  cudaDeviceProp prop;
  check_cuda(cudaGetDeviceProperties(&prop, 0), "properties");
  std::printf(
      "%-20s %dx%dx%dx%d k%d %dx%d/%d  %9.3f ms  %7.2f TFLOP/s  check %s (worst error %.3f of its bound)  "
      "%s\n",
      name, p.N, p.C, p.H, p.W, p.K, p.R, p.S, p.stride, median, p.flops() / (median * 1e-3) / 1e12,
      ok ? "ok" : "FAILED", worst, prop.name);
  cudaFree(dx);
  cudaFree(dw);
  cudaFree(dy);
  return ok ? 0 : 1;
}
