// Binary cross-entropy on logits on CUDA (float32 in and out, double inside), the twin of
// kernels/cpu/bce_with_logits.cpp. Mean over all n elements, in the numerically stable form:
//
//   logits x, targets t: any shape, same shape (n elements), t in [0, 1]
//   loss = (1/n) sum_i max(x_i, 0) - x_i t_i + log(1 + exp(-|x_i|))     0-d
//   dlogits_i = dloss (sigmoid(x_i) - t_i) / n                           like x; dloss: 0-d, on device
//
// Forward: each block of a fixed-size grid sums its grid-stride share in double into partial[block], then
// one block sums the partials and writes the 0-d loss (deterministic for a given n, no atomics). Backward:
// one elementwise kernel that reads dloss on the device.
#include <cmath>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/launch.h"

namespace thaw::cuda {

namespace {

constexpr int64_t kMaxPartials = 1024;

// partial[blockIdx.x] = sum over this block's grid-stride elements of the per-element loss, in double.
__global__ void bce_with_logits_partial_kernel(const float* __restrict__ x, const float* __restrict__ t,
                                               double* __restrict__ partial, int64_t n) {
  __shared__ double scratch[32];
  double local = 0;
  for (const int64_t i : grid_stride(n)) {
    const double xi = double(x[i]), ti = double(t[i]);
    local += fmax(xi, 0.0) - xi * ti + log1p(exp(-fabs(xi)));
  }
  const double total = block_sum(local, scratch);
  if (threadIdx.x == 0) partial[blockIdx.x] = total;
}

// One block: loss[0] = sum of the partials / n.
__global__ void bce_with_logits_loss_kernel(const double* __restrict__ partial, int64_t partials,
                                            float* __restrict__ loss, int64_t n) {
  __shared__ double scratch[32];
  double local = 0;
  for (int64_t b = threadIdx.x; b < partials; b += blockDim.x)
    local += partial[b];
  const double total = block_sum(local, scratch);
  if (threadIdx.x == 0) loss[0] = float(total / double(n));
}

__global__ void bce_with_logits_backward_kernel(const float* __restrict__ dloss, const float* __restrict__ x,
                                                const float* __restrict__ t, float* __restrict__ dx,
                                                int64_t n) {
  const double scale = double(dloss[0]) / double(n);
  for (const int64_t i : grid_stride(n)) {
    const double sigmoid = 1.0 / (1.0 + exp(-double(x[i])));
    dx[i] = float(scale * (sigmoid - double(t[i])));
  }
}

}  // namespace

void bce_with_logits_forward(const Tensor& logits, const Tensor& targets, const Tensor& loss) {
  const int64_t n = logits.numel();
  if (n == 0) return;  // kernels/bce_with_logits.cpp rejects empty logits
  const int64_t blocks = (n + kThreadsPerBlock - 1) / kThreadsPerBlock;
  const int64_t partials = blocks < kMaxPartials ? blocks : kMaxPartials;
  // float64 tensors live on the CPU only: an int64 tensor of the same size (256-byte aligned) holds the
  // partial sums. Freed on return: safe, everything runs on stream().
  const Tensor scratch = Tensor::empty({partials}, DType::Int64, logits.device());
  double* partial = static_cast<double*>(scratch.raw_data());
  bce_with_logits_partial_kernel<<<unsigned(partials), kThreadsPerBlock, 0, stream()>>>(
      logits.data<float>(), targets.data<float>(), partial, n);
  check_launch("bce_with_logits_forward (partial sums)");
  bce_with_logits_loss_kernel<<<1, kThreadsPerBlock, 0, stream()>>>(partial, partials, loss.data<float>(), n);
  check_launch("bce_with_logits_forward (loss)");
}

void bce_with_logits_backward(const Tensor& dloss, const Tensor& logits, const Tensor& targets,
                              const Tensor& dlogits) {
  const int64_t n = logits.numel();
  if (n == 0) return;
  bce_with_logits_backward_kernel<<<blocks_for(n), kThreadsPerBlock, 0, stream()>>>(
      dloss.data<float>(), logits.data<float>(), targets.data<float>(), dlogits.data<float>(), n);
  check_launch("bce_with_logits_backward");
}

}  // namespace thaw::cuda
