// thaw bench kernels: the inputs of each row and the call of thaw's kernel on them.
#include "bench/kernels/cases.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/rng.h"
#include "kernels/ops.h"

namespace thaw::bench {

namespace {

constexpr double kMomentum = 0.1, kEps = 1e-5;  // torchvision's BatchNorm2d

// Tolerances, relative to the largest reference value of each output. Convolutions and BN sum thousands
// of float32 terms in an order (and, for cuDNN's FFT/Winograd algorithms, a transform) of their own; the
// elementwise ops and pools compute each output the same way on both sides. In tf32 and bf16 each product
// carries up to two operand roundings (2^-11, 2^-8 relative) on each side; on these inputs (uniform, sums
// of hundreds to thousands of terms that partly cancel) the difference stays a few roundings of the
// largest output.
double tolerance_of(OpKind op, Precision precision) {
  if (is_conv(op)) return precision == Precision::FP32 ? 1e-4 : 16 * unit_roundoff(precision);
  if (op == OpKind::BatchNormForward || op == OpKind::BatchNormBackward ||
      op == OpKind::BatchNormReluForward || op == OpKind::BatchNormReluBackward)
    return 1e-4;
  if (op == OpKind::CrossEntropyForward || op == OpKind::CrossEntropyBackward) return 1e-5;
  return 1e-6;
}

class Inputs {
 public:
  Inputs(Device device, uint64_t seed) : device_(device), gen_(seed) {}
  Tensor uniform(const Shape& shape, double low, double high) {
    return Tensor::uniform(shape, low, high, gen_).to(device_);
  }
  Tensor labels(int64_t n, int64_t classes) {
    std::vector<int64_t> values(size_t(n), 0);
    for (auto& v : values)
      v = gen_.next_int(0, classes);
    return Tensor::from_data<int64_t>({n}, values).to(device_);
  }

 private:
  Device device_;
  Generator gen_;
};

ops::Conv2dParams conv_params(const Problem& p, Precision precision) {
  return {p.stride, p.stride, p.pad, p.pad, precision};
}
ops::Pool2dParams pool_params(const Problem& p) {
  return {p.r, p.r, p.stride, p.stride, p.pad, p.pad};
}

}  // namespace

Case make_case(const Problem& p, Device device, uint64_t seed, Precision precision) {
  Inputs gen(device, seed);
  Case c;
  c.tolerance = tolerance_of(p.op, precision);
  auto& in = c.in;
  const Shape x_shape = p.x_shape(), y_shape = p.y_shape();
  const Shape channels{p.c};
  switch (p.op) {
    case OpKind::ConvForward:
      in["x"] = gen.uniform(x_shape, -1, 1);
      in["w"] = gen.uniform(p.w_shape(), -0.1, 0.1);
      c.outputs = {"y"};
      c.run = [in, cp = conv_params(p, precision)] {
        return std::vector<Tensor>{ops::conv2d_forward(in.at("x"), in.at("w"), Tensor(), cp)};
      };
      break;
    case OpKind::ConvBackwardData:
      in["dy"] = gen.uniform(y_shape, -1, 1);
      in["w"] = gen.uniform(p.w_shape(), -0.1, 0.1);
      c.outputs = {"dx"};
      c.run = [in, x_shape, cp = conv_params(p, precision)] {
        return std::vector<Tensor>{ops::conv2d_backward_data(in.at("dy"), in.at("w"), x_shape, cp)};
      };
      break;
    case OpKind::ConvBackwardWeight:
      in["dy"] = gen.uniform(y_shape, -1, 1);
      in["x"] = gen.uniform(x_shape, -1, 1);
      c.outputs = {"dw"};
      c.run = [in, w_shape = p.w_shape(), cp = conv_params(p, precision)] {
        return std::vector<Tensor>{ops::conv2d_backward_weight(in.at("dy"), in.at("x"), w_shape, cp)};
      };
      break;
    case OpKind::BatchNormForward:
    case OpKind::BatchNormReluForward: {
      in["x"] = gen.uniform(x_shape, -1, 3);
      in["gamma"] = gen.uniform(channels, 0.5, 1.5);
      in["beta"] = gen.uniform(channels, -0.5, 0.5);
      in["running_mean"] = gen.uniform(channels, -0.1, 0.1);
      in["running_var"] = gen.uniform(channels, 0.5, 1.5);
      c.outputs = {"y", "mean", "invstd", "running_mean", "running_var"};
      const auto forward =
          p.op == OpKind::BatchNormReluForward ? ops::batch_norm_relu_forward : ops::batch_norm_forward;
      c.run = [in, forward] {
        const ops::BatchNormForward f =
            forward(in.at("x"), in.at("gamma"), in.at("beta"), in.at("running_mean"), in.at("running_var"),
                    true, kMomentum, kEps);
        return std::vector<Tensor>{f.y, f.mean, f.invstd, in.at("running_mean"), in.at("running_var")};
      };
      break;
    }
    case OpKind::BatchNormBackward:
    case OpKind::BatchNormReluBackward: {
      const bool relu = p.op == OpKind::BatchNormReluBackward;
      in["x"] = gen.uniform(x_shape, -1, 3);
      in["dy"] = gen.uniform(x_shape, -1, 1);
      in["gamma"] = gen.uniform(channels, 0.5, 1.5);
      in["beta"] = gen.uniform(channels, -0.5, 0.5);
      const ops::BatchNormForward f = (relu ? ops::batch_norm_relu_forward : ops::batch_norm_forward)(
          in["x"], in["gamma"], in["beta"], Tensor(), Tensor(), true, kMomentum, kEps);
      if (relu) in["y"] = f.y;  // relu's mask
      in["mean"] = f.mean;
      in["invstd"] = f.invstd;
      c.outputs = {"dx", "dgamma", "dbeta"};
      c.run = [in, relu] {
        const ops::BatchNormBackward b =
            relu ? ops::batch_norm_relu_backward(in.at("dy"), in.at("y"), in.at("x"), in.at("gamma"),
                                                 in.at("mean"), in.at("invstd"), true, true)
                 : ops::batch_norm_backward(in.at("dy"), in.at("x"), in.at("gamma"), in.at("mean"),
                                            in.at("invstd"), true, true);
        return std::vector<Tensor>{b.dx, b.dgamma, b.dbeta};
      };
      break;
    }
    case OpKind::ReluBackward:
      in["x"] = gen.uniform(x_shape, -1, 1);
      in["dy"] = gen.uniform(x_shape, -1, 1);
      in["y"] = ops::relu_forward(in["x"]);
      c.outputs = {"dx"};
      c.run = [in] { return std::vector<Tensor>{ops::relu_backward(in.at("dy"), in.at("y"))}; };
      break;
    case OpKind::MaxPoolForward:
      in["x"] = gen.uniform(x_shape, -1, 1);
      c.outputs = {"y"};
      c.run = [in, pp = pool_params(p)] {
        return std::vector<Tensor>{ops::max_pool2d_forward(in.at("x"), pp).y};
      };
      break;
    case OpKind::MaxPoolBackward: {
      in["x"] = gen.uniform(x_shape, -1, 1);
      in["dy"] = gen.uniform(y_shape, -1, 1);
      const ops::MaxPoolForward f = ops::max_pool2d_forward(in["x"], pool_params(p));
      in["y"] = f.y;
      in["argmax"] = f.argmax;
      c.outputs = {"dx"};
      c.run = [in, x_shape] {
        return std::vector<Tensor>{ops::max_pool2d_backward(in.at("dy"), in.at("argmax"), x_shape)};
      };
      break;
    }
    case OpKind::AvgPoolForward:
      in["x"] = gen.uniform(x_shape, -1, 1);
      c.outputs = {"y"};
      c.run = [in] { return std::vector<Tensor>{ops::global_avg_pool2d_forward(in.at("x"))}; };
      break;
    case OpKind::AvgPoolBackward:
      in["dy"] = gen.uniform(y_shape, -1, 1);
      c.outputs = {"dx"};
      c.run = [in, x_shape] {
        return std::vector<Tensor>{ops::global_avg_pool2d_backward(in.at("dy"), x_shape)};
      };
      break;
    case OpKind::AddReluForward:
    case OpKind::Add: {
      in["a"] = gen.uniform(x_shape, -1, 1);
      in["b"] = gen.uniform(x_shape, -1, 1);
      c.outputs = {"y"};
      const auto sum = p.op == OpKind::AddReluForward ? ops::add_relu_forward : ops::add;
      c.run = [in, sum] { return std::vector<Tensor>{sum(in.at("a"), in.at("b"))}; };
      break;
    }
    case OpKind::CrossEntropyForward:
      in["logits"] = gen.uniform(x_shape, -4, 4);
      in["labels"] = gen.labels(p.n, p.c);
      c.outputs = {"loss", "probs"};
      c.run = [in] {
        const ops::CrossEntropyForward f =
            ops::cross_entropy_forward(in.at("logits"), in.at("labels"), Tensor());
        return std::vector<Tensor>{f.loss, f.probs};
      };
      break;
    case OpKind::CrossEntropyBackward:
      in["logits"] = gen.uniform(x_shape, -4, 4);
      in["labels"] = gen.labels(p.n, p.c);
      in["probs"] = ops::cross_entropy_forward(in["logits"], in["labels"], Tensor()).probs;
      in["dloss"] = Tensor::ones({}, DType::Float32, device);
      c.outputs = {"dlogits"};
      c.run = [in] {
        return std::vector<Tensor>{
            ops::cross_entropy_backward(in.at("dloss"), in.at("probs"), in.at("labels"), Tensor())};
      };
      break;
  }
  return c;
}

Comparison compare_outputs(const std::vector<std::string>& names, const std::vector<Tensor>& got,
                           const std::vector<Tensor>& ref) {
  THAW_CHECK(got.size() == names.size() && ref.size() == names.size(),
             "bench kernels: {} outputs to compare, {} and {} given", names.size(), got.size(), ref.size());
  Comparison result;
  for (size_t i = 0; i < names.size(); ++i) {
    THAW_CHECK(got[i].shape() == ref[i].shape(), "bench kernels: output {} has shape {}, the reference {}",
               names[i], shape_str(got[i].shape()), shape_str(ref[i].shape()));
    const std::vector<float> a = got[i].to_vector<float>(), b = ref[i].to_vector<float>();
    double max_diff = 0, max_ref = 0;
    for (size_t j = 0; j < a.size(); ++j) {
      if (!std::isfinite(a[j])) result.finite = false;
      max_diff = std::max(max_diff, std::fabs(double(a[j]) - double(b[j])));
      max_ref = std::max(max_ref, std::fabs(double(b[j])));
    }
    const double error = max_diff / std::max(max_ref, 1e-30);
    if (i == 0 || error > result.error) {
      result.error = error;
      result.worst = fmt::format("{}: max |got - ref| {:.2e}, max |ref| {:.3g}", names[i], max_diff, max_ref);
    }
  }
  return result;
}

}  // namespace thaw::bench
