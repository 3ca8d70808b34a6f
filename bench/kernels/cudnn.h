// thaw bench kernels: the reference side of a row. cuDNN's equivalent of each thaw kernel when the bench
// was built with cuDNN (bench_kernels_cudnn.cpp, compiled only into the thaw-bench-kernels executable, never
// into libthaw or the thaw binary), else bench_kernels_cudnn_none.cpp says it is missing.
//
//   conv2d_forward / backward_data / backward_weight  cudnnConvolutionForward / BackwardData / BackwardFilter
//       with the fastest algorithm of cudnnFind*AlgorithmEx (cuDNN runs each one); in fp32 FMA math only
//       (no TF32 tensor cores): the same arithmetic as thaw; in tf32 cuDNN's default math (TF32 allowed).
//   batch_norm_forward / backward                      cudnnBatchNormalizationForwardTraining / Backward
//   batch_norm_relu_forward                            the sequence it fuses: BN forward, then
//                                                      cudnnActivationForward (RELU) in place
//   batch_norm_relu_backward                           cudnnActivationBackward (RELU), then BN backward
//   relu_backward                                     cudnnActivationBackward (RELU)
//   max_pool2d, global_avg_pool2d forward / backward      cudnnPoolingForward / Backward (MAX; AVERAGE)
//   add_relu_forward                                  cudnnOpTensor (ADD), then cudnnActivationForward
//   add (the backward's gradient sum)                 cudnnOpTensor (ADD)
//   cross_entropy_forward                              cudnnSoftmaxForward (LOG): cuDNN has no fused loss;
//   the
//       check also takes its ACCURATE probabilities and gathers the loss on the host, untimed
//   cross_entropy_backward                             cudnnSoftmaxBackward (LOG) with dy = -onehot / N
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "bench/kernels/cases.h"

namespace thaw::bench {

class ReferenceCase {
 public:
  virtual ~ReferenceCase() = default;
  // One call whose outputs are compared with thaw's, in the order of Case::outputs.
  virtual std::vector<Tensor> check() = 0;
  // The call that is timed.
  virtual void run() = 0;
  // What the reference runs for this row ("IMPLICIT_PRECOMP_GEMM, fma, 0 MiB workspace"), or empty.
  virtual std::string algorithm() const { return {}; }
};

bool cudnn_built();               // whether this executable was built with cuDNN
std::string cudnn_description();  // "cuDNN 9.14.0 (built against 9.19.0)"; throws when not built

// cuDNN's case for p on thaw's inputs (thaw_case.in, on the GPU). Copies every input that it updates in
// place (BN's running statistics), so build it before thaw's first call. A shape or algorithm cuDNN does
// not support throws thaw::Error naming the call: the row's verdict is then "unsupported".
// Convolutions in precision: fp32 with FMA math only (no tensor cores), tf32 with cuDNN's default math
// (TF32 tensor cores allowed, the fastest algorithm found either way). bf16 throws: cuDNN's bf16 needs bf16
// tensors, which thaw does not store yet.
std::unique_ptr<ReferenceCase> make_cudnn_case(const Problem& p, const Case& thaw_case, Precision precision);

}  // namespace thaw::bench
