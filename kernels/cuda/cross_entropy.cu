// Softmax cross-entropy on CUDA (float32 in and out, double inside), the twin of
// kernels/cpu/cross_entropy.cpp. PyTorch's weighted mean (kernels/ops.h):
//
//   logits: (N, C), labels: int64 (N,), class_weights w: (C,) or undefined (w = 1)
//   lse_i      = max_c logits[i,c] + log(sum_c exp(logits[i,c] - max))
//   probs[i,c] = exp(logits[i,c] - lse_i)                                     (N, C), saved for backward
//   loss       = sum_i w[y_i] (lse_i - logits[i, y_i]) / sum_i w[y_i]         0-d
//   dlogits[i,c] = dloss * w[y_i] (probs[i,c] - [c == y_i]) / sum_j w[y_j]    (N, C); dloss: 0-d, on device
//
// Forward: one block per row (max, sum of exponentials in double, probs, the row's weighted loss term into
// a scratch vector), then one single-block kernel that sums the N terms and the N weights (a fixed-order
// block reduction: deterministic, no atomics) and writes the 0-d loss. Backward: one single-block kernel
// computes dloss / sum_j w[y_j] on the device (dloss is never copied to the host), then an elementwise
// kernel writes dlogits.
//
// Labels: the CPU twin throws on a label outside [0, C) and on a weight sum <= 0. Checking here would need
// a device-to-host copy and a sync, so instead an out-of-range label is never used as an index and makes
// the loss NaN (its term and weight are NaN) and its dlogits row NaN (every dlogits element NaN, since the
// weight sum is NaN); a weight sum of 0 gives inf or NaN.
#include <cmath>

#include "kernels/cuda/cuda_ops.h"
#include "kernels/cuda/launch.h"

namespace thaw::cuda {

namespace {

// w[label] as a double (1 without class weights); NaN for a label outside [0, classes).
__device__ inline double label_weight(int64_t label, const float* weights, int64_t classes) {
  if (label < 0 || label >= classes) return NAN;
  return weights != nullptr ? double(weights[label]) : 1.0;
}

// Max of v over the block, ignoring NaN as fmaxf does (NaN only when every value is NaN), like the CPU's
// std::fmax loop. Same protocol as block_sum (launch.h): every thread calls it; every thread gets the result.
__device__ inline float block_fmax(float v, float* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  for (int offset = 16; offset > 0; offset >>= 1)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  v = lane < warps ? scratch[lane] : NAN;
  for (int offset = 16; offset > 0; offset >>= 1)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// Sum over the batch of w[y_i], in double, by one block (every thread gets it). Fixed order for a given N,
// so the forward and the backward get the same value.
__device__ inline double block_weight_sum(const int64_t* labels, const float* weights, int64_t n,
                                          int64_t classes, double* scratch) {
  double total = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
    total += label_weight(labels[i], weights, classes);
  return block_sum(total, scratch);
}

// One block per row (grid-stride over rows): probs of the row, and row_loss[i] = w[y_i] (lse_i - x[i,y_i]).
__global__ void cross_entropy_rows_kernel(const float* __restrict__ logits,
                                          const int64_t* __restrict__ labels,
                                          const float* __restrict__ weights, float* __restrict__ probs,
                                          double* __restrict__ row_loss, int64_t n, int64_t classes) {
  __shared__ float max_scratch[32];
  __shared__ double sum_scratch[32];
  for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
    const float* row = logits + i * classes;
    float local_max = NAN;  // fmaxf(NaN, x) = x: threads without elements do not count
    for (int64_t c = threadIdx.x; c < classes; c += blockDim.x)
      local_max = fmaxf(local_max, row[c]);
    const double max = double(block_fmax(local_max, max_scratch));
    double local_sum = 0;
    for (int64_t c = threadIdx.x; c < classes; c += blockDim.x)
      local_sum += exp(double(row[c]) - max);
    const double lse = max + log(block_sum(local_sum, sum_scratch));
    for (int64_t c = threadIdx.x; c < classes; c += blockDim.x)
      probs[i * classes + c] = float(exp(double(row[c]) - lse));
    if (threadIdx.x == 0) {
      const int64_t label = labels[i];
      const double w = label_weight(label, weights, classes);
      row_loss[i] = label >= 0 && label < classes ? w * (lse - double(row[label])) : double(NAN);
    }
  }
}

// One block: loss[0] = sum_i row_loss[i] / sum_i w[y_i].
__global__ void cross_entropy_loss_kernel(const double* __restrict__ row_loss,
                                          const int64_t* __restrict__ labels,
                                          const float* __restrict__ weights, float* __restrict__ loss,
                                          int64_t n, int64_t classes) {
  __shared__ double scratch[32];
  double local = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
    local += row_loss[i];
  const double total = block_sum(local, scratch);
  const double total_weight = block_weight_sum(labels, weights, n, classes, scratch);
  if (threadIdx.x == 0) loss[0] = float(total / total_weight);
}

// One block: scale[0] = dloss / sum_i w[y_i].
__global__ void cross_entropy_scale_kernel(const float* __restrict__ dloss,
                                           const int64_t* __restrict__ labels,
                                           const float* __restrict__ weights, double* __restrict__ scale,
                                           int64_t n, int64_t classes) {
  __shared__ double scratch[32];
  const double total_weight = block_weight_sum(labels, weights, n, classes, scratch);
  if (threadIdx.x == 0) scale[0] = double(dloss[0]) / total_weight;
}

// Elementwise over (N, C): dlogits[i,c] = scale w[y_i] (probs[i,c] - [c == y_i]).
__global__ void cross_entropy_backward_kernel(const double* __restrict__ scale,
                                              const float* __restrict__ probs,
                                              const int64_t* __restrict__ labels,
                                              const float* __restrict__ weights, float* __restrict__ dlogits,
                                              int64_t total, int64_t classes) {
  const double s = scale[0];
  for (const int64_t idx : grid_stride(total)) {
    const int64_t i = idx / classes, c = idx % classes;
    const int64_t label = labels[i];
    const double f = s * label_weight(label, weights, classes);
    dlogits[idx] = float(f * (double(probs[idx]) - (c == label ? 1.0 : 0.0)));
  }
}

// Device scratch for n doubles: float64 tensors live on the CPU only, so an int64 tensor of the same size
// (cudaMalloc'd blocks are 256-byte aligned) holds them. Freed on return: safe, everything runs on stream().
Tensor double_scratch(int64_t n, Device device) {
  return Tensor::empty({n}, DType::Int64, device);
}

}  // namespace

void cross_entropy_forward(const Tensor& logits, const Tensor& labels, const Tensor& class_weights,
                           const Tensor& loss, const Tensor& probs) {
  const int64_t n = logits.size(0), classes = logits.size(1);
  if (n == 0 || classes == 0) return;  // kernels/cross_entropy.cpp rejects empty logits
  const float* weights = class_weights.defined() ? class_weights.data<float>() : nullptr;
  const Tensor row_loss = double_scratch(n, logits.device());
  double* row_loss_ptr = static_cast<double*>(row_loss.raw_data());
  const unsigned row_blocks = unsigned(n < 65535 * 16 ? n : 65535 * 16);
  cross_entropy_rows_kernel<<<row_blocks, kThreadsPerBlock, 0, stream()>>>(
      logits.data<float>(), labels.data<int64_t>(), weights, probs.data<float>(), row_loss_ptr, n, classes);
  check_launch("cross_entropy_forward (rows)");
  cross_entropy_loss_kernel<<<1, kThreadsPerBlock, 0, stream()>>>(row_loss_ptr, labels.data<int64_t>(),
                                                                  weights, loss.data<float>(), n, classes);
  check_launch("cross_entropy_forward (loss)");
}

void cross_entropy_backward(const Tensor& dloss, const Tensor& probs, const Tensor& labels,
                            const Tensor& class_weights, const Tensor& dlogits) {
  const int64_t n = probs.size(0), classes = probs.size(1);
  if (n == 0 || classes == 0) return;
  const float* weights = class_weights.defined() ? class_weights.data<float>() : nullptr;
  const Tensor scale = double_scratch(1, probs.device());
  double* scale_ptr = static_cast<double*>(scale.raw_data());
  cross_entropy_scale_kernel<<<1, kThreadsPerBlock, 0, stream()>>>(
      dloss.data<float>(), labels.data<int64_t>(), weights, scale_ptr, n, classes);
  check_launch("cross_entropy_backward (scale)");
  const int64_t total = n * classes;
  cross_entropy_backward_kernel<<<blocks_for(total), kThreadsPerBlock, 0, stream()>>>(
      scale_ptr, probs.data<float>(), labels.data<int64_t>(), weights, dlogits.data<float>(), total, classes);
  check_launch("cross_entropy_backward");
}

}  // namespace thaw::cuda
