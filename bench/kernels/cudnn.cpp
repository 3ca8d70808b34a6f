// thaw bench kernels: cuDNN's side of every row (see bench_kernels_cudnn.h for the call per op). Every
// cuDNN and CUDA call is checked, naming the call. Compiled only into thaw-bench-kernels.
#include "bench/kernels/cudnn.h"

#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "core/error.h"

namespace thaw::bench {

namespace {

constexpr double kMomentum = 0.1, kEps = 1e-5;  // as the thaw side (bench_kernels_cases.cpp)
const float kOne = 1, kZero = 0;

void ok(cudnnStatus_t status, const char* call) {
  if (status != CUDNN_STATUS_SUCCESS) fail("bench kernels: {} failed: {}", call, cudnnGetErrorString(status));
}
void ok(cudaError_t status, const char* call) {
  if (status != cudaSuccess) fail("bench kernels: {} failed: {}", call, cudaGetErrorString(status));
}

// The one cuDNN handle (on the default stream, where thaw's kernels run) and one workspace for every row:
// a quarter of the free memory at start, at most 1 GiB, so the algorithm search may try the big ones.
struct Context {
  cudnnHandle_t handle = nullptr;
  Tensor workspace;
  size_t workspace_bytes = 0;
};
// Never destroyed: its workspace must not outlive thaw's caching allocator at exit.
Context& context() {
  static Context* ctx = [] {
    auto* c = new Context;
    ok(cudnnCreate(&c->handle), "cudnnCreate");
    ok(cudnnSetStream(c->handle, nullptr), "cudnnSetStream");
    size_t free = 0, total = 0;
    ok(cudaMemGetInfo(&free, &total), "cudaMemGetInfo");
    c->workspace_bytes = std::min<size_t>(size_t(1) << 30, free / 4) / 256 * 256;
    c->workspace = Tensor::empty({int64_t(c->workspace_bytes / 4)}, DType::Float32, Device::cuda());
    return c;
  }();
  return *ctx;
}

// ---- descriptors (owned, destroyed with the case) -----------------------------------------------------
class TensorDesc {
 public:
  // shape: (N, C, H, W), (N, C) or (C,) (then 1 x C x 1 x 1); float32, NCHW.
  explicit TensorDesc(const Shape& shape) {
    ok(cudnnCreateTensorDescriptor(&desc_), "cudnnCreateTensorDescriptor");
    int64_t dims[4] = {1, 1, 1, 1};
    if (shape.size() == 1) dims[1] = shape[0];
    for (size_t i = 0; shape.size() > 1 && i < shape.size() && i < 4; ++i)
      dims[i] = shape[i];
    ok(cudnnSetTensor4dDescriptor(desc_, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, int(dims[0]), int(dims[1]),
                                  int(dims[2]), int(dims[3])),
       "cudnnSetTensor4dDescriptor");
  }
  ~TensorDesc() { cudnnDestroyTensorDescriptor(desc_); }
  TensorDesc(const TensorDesc&) = delete;
  TensorDesc& operator=(const TensorDesc&) = delete;
  operator cudnnTensorDescriptor_t() const { return desc_; }

 private:
  cudnnTensorDescriptor_t desc_ = nullptr;
};

// Generic owner of one cuDNN descriptor type.
template <typename T, cudnnStatus_t (*Destroy)(T)>
class Desc {
 public:
  explicit Desc(cudnnStatus_t (*create)(T*), const char* call) { ok(create(&desc_), call); }
  ~Desc() { Destroy(desc_); }
  Desc(const Desc&) = delete;
  Desc& operator=(const Desc&) = delete;
  operator T() const { return desc_; }

 private:
  T desc_ = nullptr;
};
using FilterDesc = Desc<cudnnFilterDescriptor_t, cudnnDestroyFilterDescriptor>;
using ConvDesc = Desc<cudnnConvolutionDescriptor_t, cudnnDestroyConvolutionDescriptor>;
using ActivationDesc = Desc<cudnnActivationDescriptor_t, cudnnDestroyActivationDescriptor>;
using PoolingDesc = Desc<cudnnPoolingDescriptor_t, cudnnDestroyPoolingDescriptor>;
using OpTensorDesc = Desc<cudnnOpTensorDescriptor_t, cudnnDestroyOpTensorDescriptor>;

const void* ptr(const Tensor& t) {
  return t.raw_data();
}
void* mut(const Tensor& t) {
  return t.raw_data();
}
Tensor empty_like_shape(const Shape& shape) {
  return Tensor::empty(shape, DType::Float32, Device::cuda());
}

const char* math_name(cudnnMathType_t m) {
  switch (m) {
    case CUDNN_DEFAULT_MATH:
      return "default math";
    case CUDNN_TENSOR_OP_MATH:
      return "tensor op math";
    case CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION:
      return "tensor op math (conversion)";
    case CUDNN_FMA_MATH:
      return "fma math";
  }
  return "?";
}

const char* algo_name(cudnnConvolutionFwdAlgo_t a) {
  switch (a) {
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM:
      return "FWD_IMPLICIT_GEMM";
    case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM:
      return "FWD_IMPLICIT_PRECOMP_GEMM";
    case CUDNN_CONVOLUTION_FWD_ALGO_GEMM:
      return "FWD_GEMM";
    case CUDNN_CONVOLUTION_FWD_ALGO_DIRECT:
      return "FWD_DIRECT";
    case CUDNN_CONVOLUTION_FWD_ALGO_FFT:
      return "FWD_FFT";
    case CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING:
      return "FWD_FFT_TILING";
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD:
      return "FWD_WINOGRAD";
    case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED:
      return "FWD_WINOGRAD_NONFUSED";
    default:
      return "FWD_?";
  }
}
const char* algo_name(cudnnConvolutionBwdDataAlgo_t a) {
  switch (a) {
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_0:
      return "BWD_DATA_ALGO_0";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_1:
      return "BWD_DATA_ALGO_1";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT:
      return "BWD_DATA_FFT";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_FFT_TILING:
      return "BWD_DATA_FFT_TILING";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD:
      return "BWD_DATA_WINOGRAD";
    case CUDNN_CONVOLUTION_BWD_DATA_ALGO_WINOGRAD_NONFUSED:
      return "BWD_DATA_WINOGRAD_NONFUSED";
    default:
      return "BWD_DATA_?";
  }
}
const char* algo_name(cudnnConvolutionBwdFilterAlgo_t a) {
  switch (a) {
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0:
      return "BWD_FILTER_ALGO_0";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1:
      return "BWD_FILTER_ALGO_1";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT:
      return "BWD_FILTER_FFT";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3:
      return "BWD_FILTER_ALGO_3";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_WINOGRAD_NONFUSED:
      return "BWD_FILTER_WINOGRAD_NONFUSED";
    case CUDNN_CONVOLUTION_BWD_FILTER_ALGO_FFT_TILING:
      return "BWD_FILTER_FFT_TILING";
    default:
      return "BWD_FILTER_?";
  }
}

// One of cuDNN's algorithm searches: max_count(int*) is its Get*AlgorithmMaxCount, find(n, int* returned,
// Perf*) its Find*AlgorithmEx on the row's tensors (cuDNN runs every algorithm and sorts them by time).
// Returns the fastest that succeeded, fits the workspace and, unless tensor_cores, computes in plain float32.
template <typename Perf, typename MaxCount, typename Find>
Perf search(const char* call, bool allow_tensor_cores, MaxCount&& max_count, Find&& find) {
  int count = 0, returned = 0;
  ok(max_count(&count), call);
  std::vector<Perf> perfs(size_t(std::max(count, 1)));
  ok(find(count, &returned, perfs.data()), call);
  for (int i = 0; i < returned; ++i) {
    const Perf& p = perfs[size_t(i)];
    const bool tensor_cores =
        p.mathType == CUDNN_TENSOR_OP_MATH || p.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
    if (p.status == CUDNN_STATUS_SUCCESS && p.memory <= context().workspace_bytes &&
        (allow_tensor_cores || !tensor_cores))
      return p;
  }
  fail("bench kernels: {} found no {} algorithm for this shape ({} tried)", call,
       allow_tensor_cores ? "usable" : "float32 (FMA)", returned);
}

// ---- convolution: the three passes share the descriptors --------------------------------------------
class ConvCase : public ReferenceCase {
 public:
  // tf32: cuDNN's default math, which runs float32 convolutions on TF32 tensor cores where it finds that
  // faster (PyTorch's default, torch.backends.cudnn.allow_tf32); else FMA math only.
  ConvCase(const Problem& p, const Case& c, bool tf32)
      : op_(p.op),
        x_desc_(p.x_shape()),
        y_desc_(p.y_shape()),
        w_desc_(cudnnCreateFilterDescriptor, "cudnnCreateFilterDescriptor"),
        conv_desc_(cudnnCreateConvolutionDescriptor, "cudnnCreateConvolutionDescriptor") {
    ok(cudnnSetFilter4dDescriptor(w_desc_, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, int(p.k), int(p.c), int(p.r),
                                  int(p.r)),
       "cudnnSetFilter4dDescriptor");
    ok(cudnnSetConvolution2dDescriptor(conv_desc_, int(p.pad), int(p.pad), int(p.stride), int(p.stride), 1, 1,
                                       CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
       "cudnnSetConvolution2dDescriptor");
    ok(cudnnSetConvolutionMathType(conv_desc_, tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH),
       "cudnnSetConvolutionMathType");
    int n = 0, k = 0, h = 0, w = 0;
    ok(cudnnGetConvolution2dForwardOutputDim(conv_desc_, x_desc_, w_desc_, &n, &k, &h, &w),
       "cudnnGetConvolution2dForwardOutputDim");
    THAW_CHECK((Shape{n, k, h, w}) == p.y_shape(),
               "bench kernels: cuDNN's conv output {} differs from thaw's {}", shape_str({n, k, h, w}),
               shape_str(p.y_shape()));
    Context& ctx = context();
    void* ws = ctx.workspace.raw_data();
    const size_t ws_bytes = ctx.workspace_bytes;
    if (op_ == OpKind::ConvForward) {
      x_ = c.in.at("x"), w_ = c.in.at("w"), out_ = empty_like_shape(p.y_shape());
      const auto best = search<cudnnConvolutionFwdAlgoPerf_t>(
          "cudnnFindConvolutionForwardAlgorithmEx", tf32,
          [&](int* n) { return cudnnGetConvolutionForwardAlgorithmMaxCount(ctx.handle, n); },
          [&](int n, int* got, cudnnConvolutionFwdAlgoPerf_t* perfs) {
            return cudnnFindConvolutionForwardAlgorithmEx(ctx.handle, x_desc_, ptr(x_), w_desc_, ptr(w_),
                                                          conv_desc_, y_desc_, mut(out_), n, got, perfs, ws,
                                                          ws_bytes);
          });
      fwd_algo_ = best.algo;
      describe(algo_name(best.algo), best.mathType, best.memory);
    } else if (op_ == OpKind::ConvBackwardData) {
      dy_ = c.in.at("dy"), w_ = c.in.at("w"), out_ = empty_like_shape(p.x_shape());
      const auto best = search<cudnnConvolutionBwdDataAlgoPerf_t>(
          "cudnnFindConvolutionBackwardDataAlgorithmEx", tf32,
          [&](int* n) { return cudnnGetConvolutionBackwardDataAlgorithmMaxCount(ctx.handle, n); },
          [&](int n, int* got, cudnnConvolutionBwdDataAlgoPerf_t* perfs) {
            return cudnnFindConvolutionBackwardDataAlgorithmEx(ctx.handle, w_desc_, ptr(w_), y_desc_,
                                                               ptr(dy_), conv_desc_, x_desc_, mut(out_), n,
                                                               got, perfs, ws, ws_bytes);
          });
      bwd_data_algo_ = best.algo;
      describe(algo_name(best.algo), best.mathType, best.memory);
    } else {
      dy_ = c.in.at("dy"), x_ = c.in.at("x"), out_ = empty_like_shape(p.w_shape());
      const auto best = search<cudnnConvolutionBwdFilterAlgoPerf_t>(
          "cudnnFindConvolutionBackwardFilterAlgorithmEx", tf32,
          [&](int* n) { return cudnnGetConvolutionBackwardFilterAlgorithmMaxCount(ctx.handle, n); },
          [&](int n, int* got, cudnnConvolutionBwdFilterAlgoPerf_t* perfs) {
            return cudnnFindConvolutionBackwardFilterAlgorithmEx(ctx.handle, x_desc_, ptr(x_), y_desc_,
                                                                 ptr(dy_), conv_desc_, w_desc_, mut(out_), n,
                                                                 got, perfs, ws, ws_bytes);
          });
      bwd_filter_algo_ = best.algo;
      describe(algo_name(best.algo), best.mathType, best.memory);
    }
  }

  std::vector<Tensor> check() override {
    run();
    return {out_};
  }

  void run() override {
    Context& ctx = context();
    void* ws = ctx.workspace.raw_data();
    if (op_ == OpKind::ConvForward) {
      ok(cudnnConvolutionForward(ctx.handle, &kOne, x_desc_, ptr(x_), w_desc_, ptr(w_), conv_desc_, fwd_algo_,
                                 ws, workspace_, &kZero, y_desc_, mut(out_)),
         "cudnnConvolutionForward");
    } else if (op_ == OpKind::ConvBackwardData) {
      ok(cudnnConvolutionBackwardData(ctx.handle, &kOne, w_desc_, ptr(w_), y_desc_, ptr(dy_), conv_desc_,
                                      bwd_data_algo_, ws, workspace_, &kZero, x_desc_, mut(out_)),
         "cudnnConvolutionBackwardData");
    } else {
      ok(cudnnConvolutionBackwardFilter(ctx.handle, &kOne, x_desc_, ptr(x_), y_desc_, ptr(dy_), conv_desc_,
                                        bwd_filter_algo_, ws, workspace_, &kZero, w_desc_, mut(out_)),
         "cudnnConvolutionBackwardFilter");
    }
  }

  std::string algorithm() const override { return algorithm_; }

 private:
  void describe(const char* algo, cudnnMathType_t math, size_t memory) {
    workspace_ = memory;
    algorithm_ =
        fmt::format("{}, {}, {:.1f} MiB workspace", algo, math_name(math), double(memory) / 1048576.0);
  }

  OpKind op_;
  TensorDesc x_desc_, y_desc_;
  FilterDesc w_desc_;
  ConvDesc conv_desc_;
  Tensor x_, w_, dy_, out_;
  cudnnConvolutionFwdAlgo_t fwd_algo_{};
  cudnnConvolutionBwdDataAlgo_t bwd_data_algo_{};
  cudnnConvolutionBwdFilterAlgo_t bwd_filter_algo_{};
  size_t workspace_ = 0;
  std::string algorithm_;
};

// ---- batch norm (spatial: statistics over N, H, W per channel), alone or followed by a ReLU -------------
// With relu (thaw's fused batch_norm_relu rows) the reference is the sequence that thaw's one op replaces:
// forward, cudnnBatchNormalizationForwardTraining then cudnnActivationForward in place; backward,
// cudnnActivationBackward into a scratch tensor, then cudnnBatchNormalizationBackward from it.
class BatchNormCase : public ReferenceCase {
 public:
  BatchNormCase(const Problem& p, const Case& c)
      : forward_(p.op == OpKind::BatchNormForward || p.op == OpKind::BatchNormReluForward),
        relu_(p.op == OpKind::BatchNormReluForward || p.op == OpKind::BatchNormReluBackward),
        x_desc_(p.x_shape()),
        act_(cudnnCreateActivationDescriptor, "cudnnCreateActivationDescriptor") {
    ok(cudnnCreateTensorDescriptor(&param_desc_), "cudnnCreateTensorDescriptor");
    ok(cudnnDeriveBNTensorDescriptor(param_desc_, x_desc_, CUDNN_BATCHNORM_SPATIAL),
       "cudnnDeriveBNTensorDescriptor");
    ok(cudnnSetActivationDescriptor(act_, CUDNN_ACTIVATION_RELU, CUDNN_PROPAGATE_NAN, 0.0),
       "cudnnSetActivationDescriptor(RELU)");
    in_ = c.in;
    const Shape channels{p.c};
    if (relu_ && !forward_) dy_bn_ = empty_like_shape(p.x_shape());
    if (forward_) {
      running_mean_ = in_.at("running_mean").clone();  // thaw's forward updates the originals in place
      running_var_ = in_.at("running_var").clone();
      y_ = empty_like_shape(p.x_shape());
      mean_ = empty_like_shape(channels);
      invstd_ = empty_like_shape(channels);
    } else {
      dx_ = empty_like_shape(p.x_shape());
      dgamma_ = empty_like_shape(channels);
      dbeta_ = empty_like_shape(channels);
    }
  }
  ~BatchNormCase() override { cudnnDestroyTensorDescriptor(param_desc_); }

  std::vector<Tensor> check() override {
    run();
    if (forward_) return {y_, mean_, invstd_, running_mean_, running_var_};
    return {dx_, dgamma_, dbeta_};
  }

  void run() override {
    const cudnnHandle_t handle = context().handle;
    if (forward_) {
      ok(cudnnBatchNormalizationForwardTraining(
             handle, CUDNN_BATCHNORM_SPATIAL, &kOne, &kZero, x_desc_, ptr(in_.at("x")), x_desc_, mut(y_),
             param_desc_, ptr(in_.at("gamma")), ptr(in_.at("beta")), kMomentum, mut(running_mean_),
             mut(running_var_), kEps, mut(mean_), mut(invstd_)),
         "cudnnBatchNormalizationForwardTraining");
      if (relu_)
        ok(cudnnActivationForward(handle, act_, &kOne, x_desc_, ptr(y_), &kZero, x_desc_, mut(y_)),
           "cudnnActivationForward(RELU)");
      return;
    }
    const Tensor* dy = &in_.at("dy");
    if (relu_) {
      const Tensor& y = in_.at("y");
      ok(cudnnActivationBackward(handle, act_, &kOne, x_desc_, ptr(y), x_desc_, ptr(*dy), x_desc_, ptr(y),
                                 &kZero, x_desc_, mut(dy_bn_)),
         "cudnnActivationBackward(RELU)");
      dy = &dy_bn_;
    }
    ok(cudnnBatchNormalizationBackward(handle, CUDNN_BATCHNORM_SPATIAL, &kOne, &kZero, &kOne, &kZero, x_desc_,
                                       ptr(in_.at("x")), x_desc_, ptr(*dy), x_desc_, mut(dx_), param_desc_,
                                       ptr(in_.at("gamma")), mut(dgamma_), mut(dbeta_), kEps,
                                       ptr(in_.at("mean")), ptr(in_.at("invstd"))),
       "cudnnBatchNormalizationBackward");
  }

  std::string algorithm() const override {
    return relu_ ? (forward_ ? "BATCHNORM_SPATIAL, then ACTIVATION_RELU"
                             : "ACTIVATION_RELU backward, then "
                               "BATCHNORM_SPATIAL backward")
                 : "BATCHNORM_SPATIAL";
  }

 private:
  bool forward_, relu_;
  TensorDesc x_desc_;
  ActivationDesc act_;
  cudnnTensorDescriptor_t param_desc_ = nullptr;
  std::map<std::string, Tensor> in_;
  Tensor running_mean_, running_var_, y_, mean_, invstd_, dx_, dgamma_, dbeta_, dy_bn_;
};

// ---- relu backward (add_relu's gradient) ---------------------------------------------------------------
class ReluCase : public ReferenceCase {
 public:
  ReluCase(const Problem& p, const Case& c)
      : desc_(p.x_shape()),
        act_(cudnnCreateActivationDescriptor, "cudnnCreateActivationDescriptor"),
        in_(c.in),
        out_(empty_like_shape(p.x_shape())) {
    ok(cudnnSetActivationDescriptor(act_, CUDNN_ACTIVATION_RELU, CUDNN_PROPAGATE_NAN, 0.0),
       "cudnnSetActivationDescriptor(RELU)");
  }
  std::vector<Tensor> check() override {
    run();
    return {out_};
  }
  void run() override {
    ok(cudnnActivationBackward(context().handle, act_, &kOne, desc_, ptr(in_.at("y")), desc_,
                               ptr(in_.at("dy")), desc_, ptr(in_.at("x")), &kZero, desc_, mut(out_)),
       "cudnnActivationBackward(RELU)");
  }
  std::string algorithm() const override { return "ACTIVATION_RELU backward"; }

 private:
  TensorDesc desc_;
  ActivationDesc act_;
  std::map<std::string, Tensor> in_;
  Tensor out_;
};

// ---- pooling: max 3x3/2 (the stem) and the global average ----------------------------------------------
class PoolCase : public ReferenceCase {
 public:
  PoolCase(const Problem& p, const Case& c)
      : forward_(p.op == OpKind::MaxPoolForward || p.op == OpKind::AvgPoolForward),
        max_(p.op == OpKind::MaxPoolForward || p.op == OpKind::MaxPoolBackward),
        x_desc_(p.x_shape()),
        y_desc_(p.y_shape()),
        pool_(cudnnCreatePoolingDescriptor, "cudnnCreatePoolingDescriptor"),
        in_(c.in),
        out_(empty_like_shape(forward_ ? p.y_shape() : p.x_shape())) {
    if (max_) {
      ok(cudnnSetPooling2dDescriptor(pool_, CUDNN_POOLING_MAX, CUDNN_PROPAGATE_NAN, int(p.r), int(p.r),
                                     int(p.pad), int(p.pad), int(p.stride), int(p.stride)),
         "cudnnSetPooling2dDescriptor(MAX)");
    } else {
      ok(cudnnSetPooling2dDescriptor(pool_, CUDNN_POOLING_AVERAGE_COUNT_INCLUDE_PADDING, CUDNN_PROPAGATE_NAN,
                                     int(p.h), int(p.w), 0, 0, int(p.h), int(p.w)),
         "cudnnSetPooling2dDescriptor(AVERAGE)");
      // cuDNN's average-pool backward reads y and x; the global average's values are not needed by the
      // math, so any tensors of the right shape do.
      if (!forward_) {
        y_ = Tensor::zeros(p.y_shape(), DType::Float32, Device::cuda());
        x_ = Tensor::zeros(p.x_shape(), DType::Float32, Device::cuda());
      }
    }
  }
  std::vector<Tensor> check() override {
    run();
    return {out_};
  }
  void run() override {
    const cudnnHandle_t handle = context().handle;
    if (forward_) {
      ok(cudnnPoolingForward(handle, pool_, &kOne, x_desc_, ptr(in_.at("x")), &kZero, y_desc_, mut(out_)),
         "cudnnPoolingForward");
      return;
    }
    const Tensor& y = max_ ? in_.at("y") : y_;
    const Tensor& x = max_ ? in_.at("x") : x_;
    ok(cudnnPoolingBackward(handle, pool_, &kOne, y_desc_, ptr(y), y_desc_, ptr(in_.at("dy")), x_desc_,
                            ptr(x), &kZero, x_desc_, mut(out_)),
       "cudnnPoolingBackward");
  }
  std::string algorithm() const override { return max_ ? "POOLING_MAX" : "POOLING_AVERAGE"; }

 private:
  bool forward_, max_;
  TensorDesc x_desc_, y_desc_;
  PoolingDesc pool_;
  std::map<std::string, Tensor> in_;
  Tensor out_, x_, y_;
};

// ---- a + b (the backward's gradient sum), and the residual join relu(a + b): what thaw's add_relu replaces,
// cudnnOpTensor then the activation in place ----------------------------------------------------------------
class AddCase : public ReferenceCase {
 public:
  AddCase(const Problem& p, const Case& c)
      : relu_(p.op == OpKind::AddReluForward),
        desc_(p.x_shape()),
        op_(cudnnCreateOpTensorDescriptor, "cudnnCreateOpTensorDescriptor"),
        act_(cudnnCreateActivationDescriptor, "cudnnCreateActivationDescriptor"),
        in_(c.in),
        out_(empty_like_shape(p.x_shape())) {
    ok(cudnnSetOpTensorDescriptor(op_, CUDNN_OP_TENSOR_ADD, CUDNN_DATA_FLOAT, CUDNN_PROPAGATE_NAN),
       "cudnnSetOpTensorDescriptor(ADD)");
    ok(cudnnSetActivationDescriptor(act_, CUDNN_ACTIVATION_RELU, CUDNN_PROPAGATE_NAN, 0.0),
       "cudnnSetActivationDescriptor(RELU)");
  }
  std::vector<Tensor> check() override {
    run();
    return {out_};
  }
  void run() override {
    ok(cudnnOpTensor(context().handle, op_, &kOne, desc_, ptr(in_.at("a")), &kOne, desc_, ptr(in_.at("b")),
                     &kZero, desc_, mut(out_)),
       "cudnnOpTensor(ADD)");
    if (relu_)
      ok(cudnnActivationForward(context().handle, act_, &kOne, desc_, ptr(out_), &kZero, desc_, mut(out_)),
         "cudnnActivationForward(RELU)");
  }
  std::string algorithm() const override {
    return relu_ ? "OP_TENSOR_ADD, then ACTIVATION_RELU" : "OP_TENSOR_ADD";
  }

 private:
  bool relu_;
  TensorDesc desc_;
  OpTensorDesc op_;
  ActivationDesc act_;
  std::map<std::string, Tensor> in_;
  Tensor out_;
};

// ---- softmax cross-entropy: log-softmax over the classes (logits as N x C x 1 x 1) --------------------
class CrossEntropyCase : public ReferenceCase {
 public:
  CrossEntropyCase(const Problem& p, const Case& c)
      : forward_(p.op == OpKind::CrossEntropyForward),
        desc_(p.x_shape()),
        in_(c.in),
        logp_(empty_like_shape(p.x_shape())),
        out_(empty_like_shape(p.x_shape())) {
    if (forward_) return;
    softmax(CUDNN_SOFTMAX_LOG, logp_);
    // dloss/dlogp for loss = -mean_i logp[i, y_i]: -1/N at each label, 0 elsewhere.
    const std::vector<int64_t> labels = in_.at("labels").to_vector<int64_t>();
    std::vector<float> dy(size_t(p.n * p.c), 0.0f);
    for (size_t i = 0; i < labels.size(); ++i)
      dy[i * size_t(p.c) + size_t(labels[i])] = -1.0f / float(p.n);
    dy_ = Tensor::from_data<float>(p.x_shape(), dy).to(Device::cuda());
  }

  std::vector<Tensor> check() override {
    if (!forward_) {
      run();
      return {out_};
    }
    softmax(CUDNN_SOFTMAX_ACCURATE, out_);  // the probabilities
    run();                                  // the log-probabilities, for the loss
    const std::vector<float> logp = logp_.to_vector<float>();
    const std::vector<int64_t> labels = in_.at("labels").to_vector<int64_t>();
    const size_t classes = logp.size() / labels.size();
    double loss = 0;
    for (size_t i = 0; i < labels.size(); ++i)
      loss -= double(logp[i * classes + size_t(labels[i])]);
    loss /= double(labels.size());
    return {Tensor::full({}, loss, DType::Float32, Device::cuda()), out_};
  }

  void run() override {
    if (forward_) {
      softmax(CUDNN_SOFTMAX_LOG, logp_);
      return;
    }
    ok(cudnnSoftmaxBackward(context().handle, CUDNN_SOFTMAX_LOG, CUDNN_SOFTMAX_MODE_CHANNEL, &kOne, desc_,
                            ptr(logp_), desc_, ptr(dy_), &kZero, desc_, mut(out_)),
       "cudnnSoftmaxBackward(LOG)");
  }

  std::string algorithm() const override {
    return forward_ ? "SOFTMAX_LOG (the loss gather is not timed)" : "SOFTMAX_LOG backward";
  }

 private:
  void softmax(cudnnSoftmaxAlgorithm_t algo, const Tensor& y) {
    ok(cudnnSoftmaxForward(context().handle, algo, CUDNN_SOFTMAX_MODE_CHANNEL, &kOne, desc_,
                           ptr(in_.at("logits")), &kZero, desc_, mut(y)),
       "cudnnSoftmaxForward");
  }

  bool forward_;
  TensorDesc desc_;
  std::map<std::string, Tensor> in_;
  Tensor logp_, out_, dy_;
};

}  // namespace

bool cudnn_built() {
  return true;
}

std::string cudnn_description() {
  const size_t v = cudnnGetVersion();
  return fmt::format("cuDNN {}.{}.{} (built against {}.{}.{})", v / 10000, (v % 10000) / 100, v % 100,
                     CUDNN_MAJOR, CUDNN_MINOR, CUDNN_PATCHLEVEL);
}

std::unique_ptr<ReferenceCase> make_cudnn_case(const Problem& p, const Case& thaw_case, Precision precision) {
  switch (p.op) {
    case OpKind::ConvForward:
    case OpKind::ConvBackwardData:
    case OpKind::ConvBackwardWeight:
      THAW_CHECK(precision != Precision::BF16,
                 "bench kernels: no cuDNN bf16 reference (its bf16 convolutions take bf16 tensors)");
      return std::make_unique<ConvCase>(p, thaw_case, precision == Precision::TF32);
    case OpKind::BatchNormForward:
    case OpKind::BatchNormBackward:
    case OpKind::BatchNormReluForward:
    case OpKind::BatchNormReluBackward:
      return std::make_unique<BatchNormCase>(p, thaw_case);
    case OpKind::ReluBackward:
      return std::make_unique<ReluCase>(p, thaw_case);
    case OpKind::MaxPoolForward:
    case OpKind::MaxPoolBackward:
    case OpKind::AvgPoolForward:
    case OpKind::AvgPoolBackward:
      return std::make_unique<PoolCase>(p, thaw_case);
    case OpKind::AddReluForward:
    case OpKind::Add:
      return std::make_unique<AddCase>(p, thaw_case);
    case OpKind::CrossEntropyForward:
    case OpKind::CrossEntropyBackward:
      return std::make_unique<CrossEntropyCase>(p, thaw_case);
  }
  fail("bench kernels: no cuDNN case for {}", op_name(p.op));
}

}  // namespace thaw::bench
