// nn/conv_bn.h: a frozen conv + BatchNorm folded into one conv with a bias. Against a float64 reference
// (direct loops below) within a bound derived from float32 rounding, with and without relu; the unfolded ops,
// bit for bit, whenever a condition fails; the cache, recomputed exactly when what it reads changes; the
// gradient a trainable layer before a folded conv gets; what autograd records; a whole ResNet18 with folding
// on and off; and the same on CUDA where a device exists.
//
// The bounds. fl(sum of n products) is within gamma_n = n u / (1 - n u) of the exact sum times the sum of the
// products' magnitudes, in any summation order, with or without FMA (Higham, Accuracy and Stability of
// Numerical Algorithms, 2nd ed., section 3.1); u = 2^-24 for float32. Per output element of a folded pair:
// w' = w s rounded once (u per product), the conv's n = C R S products (gamma_n), b' rounded and added (2 u):
// |y - exact| <= gamma_{n+3} (sum |x w s| + |b'|). The unfolded pair (conv, then y = x a + b in double
// rounded once) is within gamma_{n+2} of the same. relu is exact and 1-Lipschitz, so the bound holds after it
// too. The float64 reference adds its own gamma_{n+3} with u = 2^-53. The tests use the largest magnitude of
// the output as the scale, which makes the per-element bound a norm-wise one (weaker, and still derived).
#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "core/autograd.h"
#include "core/rng.h"
#include "core/storage.h"
#include "models/resnet.h"
#include "models/weights.h"
#include "nn/conv_bn.h"
#include "nn/functional.h"
#include "tests/support/allclose.h"
#include "tests/support/catch.h"
#include "tests/support/cuda.h"

using namespace thaw;
namespace F = nn::functional;

namespace {

constexpr double kU32 = 0x1p-24, kU64 = 0x1p-53;

// gamma_n for unit roundoff u.
double gamma_n(int64_t n, double u) {
  return double(n) * u / (1 - double(n) * u);
}

// ---- the float64 reference: direct loops ------------------------------------------------------------------

// The geometry of a convolution of x (N, C, H, W) with w (K, C, R, S), square stride and padding.
struct Geometry {
  int64_t n, c, h, w, k, r, s, stride, pad;
  int64_t p() const { return (h + 2 * pad - r) / stride + 1; }
  int64_t q() const { return (w + 2 * pad - s) / stride + 1; }
  Shape x_shape() const { return {n, c, h, w}; }
  Shape w_shape() const { return {k, c, r, s}; }
  Shape y_shape() const { return {n, k, p(), q()}; }
  // f(x index, w index, y index) for every product of the convolution that reads inside the input.
  template <typename Fn>
  void each_product(Fn f) const {
    for (int64_t in = 0; in < n; ++in)
      for (int64_t ik = 0; ik < k; ++ik)
        for (int64_t ip = 0; ip < p(); ++ip)
          for (int64_t iq = 0; iq < q(); ++iq)
            for (int64_t ic = 0; ic < c; ++ic)
              for (int64_t ir = 0; ir < r; ++ir)
                for (int64_t is = 0; is < s; ++is) {
                  const int64_t hh = ip * stride - pad + ir, ww = iq * stride - pad + is;
                  if (hh < 0 || hh >= h || ww < 0 || ww >= w) continue;
                  f(((in * c + ic) * h + hh) * w + ww, ((ik * c + ic) * r + ir) * s + is,
                    ((in * k + ik) * p() + ip) * q() + iq);
                }
  }
};

Geometry geometry_of(const nn::Conv2d& conv, const Shape& x) {
  const Shape& w = conv.weight.shape();
  return {x[0], x[1], x[2], x[3], w[0], w[2], w[3], conv.params.stride_h, conv.params.pad_h};
}

std::vector<double> doubles(const Tensor& t) {
  const Tensor host = t.to(Device::cpu());
  if (host.dtype() == DType::Float64) return host.to_vector<double>();
  const std::vector<float> v = host.to_vector<float>();
  return {v.begin(), v.end()};
}

std::vector<double> abs_of(std::vector<double> v) {
  for (double& e : v)
    e = std::abs(e);
  return v;
}

double max_of(const std::vector<double>& v) {
  double m = 0;
  for (const double e : v)
    m = std::max(m, e);
  return m;
}

Tensor tensor_of(const Shape& shape, const std::vector<double>& v) {
  return Tensor::from_data<double>(shape, v);
}

// The fold, exactly as the math says: w s and beta - mean s, s = gamma / sqrt(running_var + eps).
struct ExactFold {
  std::vector<double> w, b;
};
ExactFold exact_fold(const nn::Conv2d& conv, const nn::BatchNorm2d& bn) {
  ExactFold f{doubles(conv.weight), doubles(bn.bias)};
  const std::vector<double> gamma = doubles(bn.weight), mean = doubles(bn.running_mean),
                            var = doubles(bn.running_var);
  const size_t per_channel = f.w.size() / gamma.size();
  for (size_t k = 0; k < gamma.size(); ++k) {
    const double s = gamma[k] / std::sqrt(var[k] + bn.eps());
    f.b[k] -= mean[k] * s;
    for (size_t i = k * per_channel; i < (k + 1) * per_channel; ++i)
      f.w[i] *= s;
  }
  return f;
}

// bn(conv(x)) (then relu) in double, and the magnitude sum |x w s| + |b'| of each output element.
struct Reference {
  Tensor y;
  double max_magnitude = 0;
  int64_t terms = 0;  // n = C R S
};
Reference reference(const nn::Conv2d& conv, const nn::BatchNorm2d& bn, const Tensor& x, bool relu) {
  const Geometry g = geometry_of(conv, x.shape());
  const ExactFold f = exact_fold(conv, bn);
  const std::vector<double> xs = doubles(x);
  std::vector<double> y(size_t(shape_numel(g.y_shape()))), m(y.size());
  g.each_product([&](int64_t xi, int64_t wi, int64_t yi) {
    y[size_t(yi)] += xs[size_t(xi)] * f.w[size_t(wi)];
    m[size_t(yi)] += std::abs(xs[size_t(xi)] * f.w[size_t(wi)]);
  });
  const int64_t plane = g.p() * g.q();
  for (size_t i = 0; i < y.size(); ++i) {
    const double b = f.b[size_t((int64_t(i) / plane) % g.k)];
    y[i] += b, m[i] += std::abs(b);
    if (relu) y[i] = std::max(y[i], 0.0);
  }
  return {tensor_of(g.y_shape(), y), max_of(m), g.c * g.r * g.s};
}

// The bound of the file comment for a float32 result (or a float64 one: u64 only) against the reference.
double fold_bound(const Reference& ref, DType dtype) {
  const double u = dtype == DType::Float64 ? kU64 : kU32;
  return (gamma_n(ref.terms + 3, u) + gamma_n(ref.terms + 3, kU64)) * ref.max_magnitude;
}

// ---- a frozen conv + BatchNorm ----------------------------------------------------------------------------

// New values for a BatchNorm's four tensors, through load_state_dict (which notes the write, nn/module.h).
void load_batch_norm(nn::BatchNorm2d& bn, const Tensor& gamma, const Tensor& beta, const Tensor& mean,
                     const Tensor& var) {
  bn.load_state_dict({{"weight", gamma}, {"bias", beta}, {"running_mean", mean}, {"running_var", var}});
}

// Conv 5 -> 7 channels, 3x3, stride 2, padding 1, on an odd 11x9 input; BatchNorm with running statistics far
// from 0 and 1, gamma of both signs, beta != 0, and one channel whose variance (1e-4) is small enough that
// eps (1e-5) changes its scale by 5%: a fold that forgot eps, or mixed up channels, is far outside the bound.
// Everything frozen, BatchNorm on running statistics.
struct Pair {
  Generator gen{17};
  std::shared_ptr<nn::Conv2d> conv = std::make_shared<nn::Conv2d>(5, 7, 3, 2, 1, /*bias=*/false, gen);
  std::shared_ptr<nn::BatchNorm2d> bn = std::make_shared<nn::BatchNorm2d>(7);
  Tensor x = Tensor::normal({2, 5, 11, 9}, 0.2, 1.5, gen);

  Pair() {
    Tensor var = Tensor::uniform({7}, 0.2, 3.0, gen);
    var.data<float>()[3] = 1e-4f;
    Tensor gamma = Tensor::uniform({7}, 0.5, 2.0, gen);
    gamma.data<float>()[1] = -1.25f;
    load_batch_norm(*bn, gamma, Tensor::uniform({7}, -1, 1, gen), Tensor::normal({7}, 0.3, 0.5, gen), var);
    freeze();
  }
  void freeze() {
    conv->weight.set_requires_grad(false);
    bn->weight.set_requires_grad(false);
    bn->bias.set_requires_grad(false);
    bn->set_mode(nn::BatchNormMode::Frozen);
  }
  // What the pair computes without folding: conv then BatchNorm (+ relu), as two modules.
  Tensor unfolded(const Tensor& in, bool relu) {
    const Tensor h = conv->forward(in);
    return relu ? bn->forward_relu(h) : bn->forward(h);
  }
};

}  // namespace

TEST_CASE(
    "a folded conv + BatchNorm is within the float32 bound of the float64 reference, as is the unfolded") {
  for (const bool relu : {false, true}) {
    INFO("relu " << relu);
    Pair f;
    nn::ConvBatchNorm pair(f.conv, f.bn);
    REQUIRE(pair.folds());
    const Tensor folded = pair.forward(f.x, relu);
    REQUIRE(pair.folds_computed() == 1);
    REQUIRE(pair.folded_weight().shape() == f.conv->weight.shape());
    REQUIRE(pair.folded_bias().shape() == Shape{7});
    const Reference ref = reference(*f.conv, *f.bn, f.x, relu);
    REQUIRE_ALLCLOSE(folded, ref.y, 0, fold_bound(ref, DType::Float32));
    REQUIRE_ALLCLOSE(f.unfolded(f.x, relu), ref.y, 0, fold_bound(ref, DType::Float32));
    // The two differ (they round differently): the fold did run.
    REQUIRE(folded.to_vector<float>() != f.unfolded(f.x, relu).to_vector<float>());

    pair.set_enabled(false);  // off: the unfolded ops, bit for bit, and no cache
    REQUIRE_FALSE(pair.folds());
    REQUIRE_ALLCLOSE(pair.forward(f.x, relu), f.unfolded(f.x, relu), 0, 0);
    REQUIRE_FALSE(pair.folded_weight().defined());
  }
}

TEST_CASE("no fold when the conv or the BatchNorm trains or BatchNorm uses batch statistics: bit for bit") {
  struct Case {
    const char* what;
    void (*change)(Pair&);
  };
  const Case cases[] = {
      {"BatchNorm in train mode, train(): batch statistics",
       [](Pair& f) {
         f.bn->set_mode(nn::BatchNormMode::Train);
         f.bn->train();
       }},
      {"the conv's weight trains", [](Pair& f) { f.conv->weight.set_requires_grad(true); }},
      {"gamma trains", [](Pair& f) { f.bn->weight.set_requires_grad(true); }},
      {"beta trains", [](Pair& f) { f.bn->bias.set_requires_grad(true); }},
  };
  for (const Case& c : cases) {
    for (const bool relu : {false, true}) {
      INFO(c.what << ", relu " << relu);
      Pair f;
      nn::ConvBatchNorm pair(f.conv, f.bn);
      pair.forward(f.x, relu);  // folded, and cached
      REQUIRE(pair.folds_computed() == 1);
      c.change(f);
      REQUIRE_FALSE(nn::can_fold(*f.conv, *f.bn));
      REQUIRE_FALSE(pair.folds());
      const Tensor y = pair.forward(f.x, relu);
      REQUIRE_FALSE(pair.folded_weight().defined());  // the cache went with the conditions
      REQUIRE(pair.folds_computed() == 1);
      // Batch statistics do not read the running ones (which the two forwards update): the same output.
      REQUIRE_ALLCLOSE(y, f.unfolded(f.x, relu), 0, 0);
    }
  }
}

TEST_CASE("the folded weights are recomputed when what they read changes, and only then") {
  Pair f;
  nn::ConvBatchNorm pair(f.conv, f.bn);
  const Tensor first = pair.forward(f.x, false);
  pair.forward(f.x, true);
  f.bn->train();  // mode Frozen: running statistics in train() too
  pair.forward(f.x, false);
  f.bn->eval();
  REQUIRE(pair.folds_computed() == 1);
  REQUIRE_ALLCLOSE(pair.forward(f.x, false), first, 0, 0);

  SECTION("new running statistics, loaded (a weights file, a checkpoint resume)") {
    load_batch_norm(*f.bn, f.bn->weight.clone(), f.bn->bias.clone(), f.bn->running_mean.clone(),
                    Tensor::uniform({7}, 0.01, 0.1, f.gen));
    const Tensor y = pair.forward(f.x, false);
    REQUIRE(pair.folds_computed() == 2);
    const Reference ref = reference(*f.conv, *f.bn, f.x, false);
    REQUIRE_ALLCLOSE(y, ref.y, 0, fold_bound(ref, DType::Float32));
    pair.forward(f.x, false);
    REQUIRE(pair.folds_computed() == 2);
  }
  SECTION("gradual unfreezing: the conv trains for a while (no fold), then is frozen again") {
    f.conv->weight.set_requires_grad(true);
    pair.forward(f.x, false);
    REQUIRE_FALSE(pair.folded_weight().defined());
    f.conv->weight.set_requires_grad(false);
    pair.forward(f.x, false);
    REQUIRE(pair.folds_computed() == 2);
  }
  SECTION("a write in place is seen once nn::note_parameter_writes() says so (nn/module.h)") {
    f.bn->running_mean.copy_(Tensor::normal({7}, -2, 1, f.gen));
    pair.forward(f.x, false);
    REQUIRE(pair.folds_computed() == 1);  // the rule: an unannounced write is not seen
    nn::note_parameter_writes();
    const Tensor y = pair.forward(f.x, false);
    REQUIRE(pair.folds_computed() == 2);
    const Reference ref = reference(*f.conv, *f.bn, f.x, false);
    REQUIRE_ALLCLOSE(y, ref.y, 0, fold_bound(ref, DType::Float32));
  }
  SECTION("Module::to(float64): new storage and dtype, the fold made again in float64") {
    f.conv->to(DType::Float64);
    f.bn->to(DType::Float64);
    const Tensor x = f.x.to(DType::Float64);
    const Tensor y = pair.forward(x, true);
    REQUIRE(pair.folds_computed() == 2);
    REQUIRE(pair.folded_weight().dtype() == DType::Float64);
    const Reference ref = reference(*f.conv, *f.bn, x, true);
    REQUIRE_ALLCLOSE(y, ref.y, 0, fold_bound(ref, DType::Float64));
  }
}

// A trainable conv0 (3 -> 5, 3x3, stride 1, padding 1) before the frozen pair; loss = sum(y r), so dL/dy = r
// exactly. No relu after the pair: relu's mask could flip where y is within rounding of 0 (a kink), which
// would not be the fold's doing. The bound: dh = backward-data of r through w s (n2 = K R S products; w'
// rounded, or, unfolded, r s rounded twice: gamma_{n2+2}), then dW0 = sum over n3 = N H W positions of dh x0
// (gamma_{n3}): |dW0 - exact| <= gamma_{n2+n3+2} sum |x0| (|w s|^T |r|).
TEST_CASE("backward-data through a folded conv gives a trainable layer before it the unfolded gradient") {
  Pair f;
  nn::ConvBatchNorm pair(f.conv, f.bn);
  Generator gen(23);
  const auto conv0 = std::make_shared<nn::Conv2d>(3, 5, 3, 1, 1, /*bias=*/false, gen);
  const Tensor x0 = Tensor::normal({2, 3, 11, 9}, 0, 1, gen);
  const Tensor r = Tensor::normal({2, 7, 6, 5}, 0, 1, gen);
  const auto grad_of_conv0 = [&](bool fold) {
    pair.set_enabled(fold);
    conv0->weight.zero_grad();
    const Tensor y = pair.forward(conv0->forward(x0), /*relu=*/false);
    F::sum(F::mul(y, r)).backward();
    REQUIRE_FALSE(f.conv->weight.grad().defined());
    REQUIRE_FALSE(f.bn->weight.grad().defined());
    REQUIRE_FALSE(f.bn->bias.grad().defined());
    return conv0->weight.grad().clone();
  };
  const Tensor folded = grad_of_conv0(true), unfolded = grad_of_conv0(false);

  // The reference: dh = W'^T r, dW0 = dh (*) x0, and the magnitudes through |W'|, |r|, |x0|.
  const Geometry g0 = geometry_of(*conv0, x0.shape()), g = geometry_of(*f.conv, g0.y_shape());
  const ExactFold fold = exact_fold(*f.conv, *f.bn);
  const std::vector<double> rs = doubles(r), xs = doubles(x0);
  std::vector<double> dh(size_t(shape_numel(g.x_shape()))), dh_abs(dh.size());
  g.each_product([&](int64_t hi, int64_t wi, int64_t yi) {
    dh[size_t(hi)] += rs[size_t(yi)] * fold.w[size_t(wi)];
    dh_abs[size_t(hi)] += std::abs(rs[size_t(yi)] * fold.w[size_t(wi)]);
  });
  std::vector<double> dw0(size_t(shape_numel(g0.w_shape()))), dw0_abs(dw0.size());
  g0.each_product([&](int64_t xi, int64_t wi, int64_t hi) {
    dw0[size_t(wi)] += dh[size_t(hi)] * xs[size_t(xi)];
    dw0_abs[size_t(wi)] += dh_abs[size_t(hi)] * std::abs(xs[size_t(xi)]);
  });
  const int64_t n2 = g.k * g.r * g.s, n3 = g0.n * g0.p() * g0.q();
  const double bound = (gamma_n(n2 + n3 + 2, kU32) + gamma_n(n2 + n3 + 2, kU64)) * max_of(dw0_abs);
  const Tensor ref = tensor_of(g0.w_shape(), dw0);
  REQUIRE_ALLCLOSE(folded, ref, 0, bound);
  REQUIRE_ALLCLOSE(unfolded, ref, 0, bound);
}

// Folded, relu(conv(x; w') + b') records a conv node and a relu node, as the unfolded pair records a conv and
// a batch_norm_relu node; the conv's node has no edge to w' or b' (no weight gradient to compute) and keeps
// nothing of x; relu keeps its output. So a folded pair keeps less than the BatchNorm kept (its input x, mean
// and invstd).
TEST_CASE("autograd through a folded pair: no weight-gradient edge, nothing kept but relu's output") {
  Pair f;
  nn::ConvBatchNorm pair(f.conv, f.bn);
  Tensor leaf = f.x.clone();
  leaf.set_requires_grad(true);
  const auto step = [&](bool fold) {
    pair.set_enabled(fold);
    {
      NoGradGuard no_grad;  // the fold is made here: it lives between steps, like the weights
      pair.forward(leaf, true);
    }
    struct Seen {
      int64_t nodes, kept_bytes;
      std::shared_ptr<Node> node;
    };
    const int64_t nodes_before = Node::live_count(), bytes_before = int64_t(cpu_memory_stats().in_use);
    const Tensor y = pair.forward(leaf, true);
    const Seen seen{Node::live_count() - nodes_before,
                    int64_t(cpu_memory_stats().in_use) - bytes_before - int64_t(y.nbytes()), y.grad_fn()};
    F::sum(y).backward();
    REQUIRE(leaf.grad().defined());
    leaf.zero_grad();
    return seen;
  };
  auto folded = step(true);
  REQUIRE(folded.node->name() == "ReluBackward");
  const std::shared_ptr<Node>& conv = folded.node->next().at(0);
  REQUIRE(conv->name() == "Conv2dBackward");
  REQUIRE(conv->next().size() == 3);    // x, w', b'
  REQUIRE(conv->next()[0] != nullptr);  // x's gradient sink
  REQUIRE(conv->next()[1] == nullptr);  // w': no gradient
  REQUIRE(conv->next()[2] == nullptr);  // b': no gradient
  REQUIRE(folded.nodes == 3);           // conv, relu, the leaf's gradient sink
  REQUIRE(folded.kept_bytes == 0);      // relu keeps y, the output; w' lives in the cache
  REQUIRE_FALSE(pair.folded_weight().requires_grad());
  folded.node.reset();  // it holds the graph, the leaf's gradient sink included

  const auto unfolded = step(false);
  REQUIRE(unfolded.node->name() == "BatchNormReluBackward");
  REQUIRE(unfolded.nodes == 3);                                            // conv, batch_norm_relu, the sink
  REQUIRE(unfolded.kept_bytes == int64_t(2 * 7 * 4) + 2 * 7 * 6 * 5 * 4);  // mean, invstd and x (N K P Q)
}

namespace {

// A ResNet18 (10 classes) with random weights and BatchNorm layers of random gamma, beta and running
// statistics, loaded through models/weights.h assign_weights as a weights file is; every parameter frozen;
// eval.
std::shared_ptr<models::ResNet> frozen_resnet18(uint64_t seed) {
  Generator gen(seed);
  auto model = models::resnet18(10, gen);
  std::map<std::string, Tensor> state;
  const auto ends_with = [](const std::string& s, const std::string& end) {
    return s.size() >= end.size() && s.compare(s.size() - end.size(), end.size(), end) == 0;
  };
  for (const auto& [name, t] : model->state_dict()) {
    const bool bn = t.dim() == 1 && name.rfind("fc.", 0) != 0;
    Tensor v = t.clone();
    if (bn && ends_with(name, "running_mean")) v = Tensor::normal(t.shape(), 0, 0.2, gen);
    if (bn && ends_with(name, "running_var")) v = Tensor::uniform(t.shape(), 0.5, 2.0, gen);
    if (bn && ends_with(name, ".weight")) v = Tensor::uniform(t.shape(), 0.5, 1.5, gen);
    if (bn && ends_with(name, ".bias")) v = Tensor::uniform(t.shape(), -0.2, 0.2, gen);
    state[name] = v;
  }
  models::assign_weights(*model, state, "test");
  nn::NamedTensors params = model->named_parameters();
  for (auto& [_, p] : params)
    p.set_requires_grad(false);
  model->eval();
  return model;
}

double max_abs(const Tensor& t) {
  return max_of(abs_of(doubles(t)));
}

// The tolerance for a whole network, as a fraction of the logits' largest magnitude. No useful worst-case
// bound exists through 20 layers (the magnitudes sum |x w| grow by ~sqrt(n) per layer where the values do
// not), so this is an estimate: each layer on the path adds at most its own worst-case bound gamma_{n+3} as
// a fraction of its output's scale, and BatchNorm keeps that scale from layer to layer; summed over every
// conv + BatchNorm pair (more than the longest path) and fc. Rounding errors add up far below it; a wrong
// fold (a channel, a stride, a relu) changes the logits by a good fraction of their size.
double network_tolerance(const models::ResNet& model) {
  double tau = gamma_n(model.feature_dim() + 1, kU32);  // fc
  for (const nn::ConvBatchNorm* pair : model.conv_bn_pairs()) {
    const Shape& w = pair->conv().weight.shape();
    tau += gamma_n(w[1] * w[2] * w[3] + 3, kU32);
  }
  return tau;
}

}  // namespace

TEST_CASE("ResNet18 in eval, every layer frozen: folding on and off agree with the float64 network") {
  auto model = frozen_resnet18(5);
  Generator gen(6);
  const Tensor x = Tensor::normal({2, 3, 64, 64}, 0, 1, gen);
  REQUIRE(model->fold_frozen_batch_norm());
  REQUIRE(model->conv_bn_pairs().size() == 20);  // stem, 16 block convs, 3 downsample convs
  const Tensor on = model->forward(x);
  REQUIRE(model->batch_norm_folds_computed() == 20);
  REQUIRE_ALLCLOSE(model->forward(x), on, 0, 0);
  REQUIRE(model->batch_norm_folds_computed() == 20);  // cached

  model->set_fold_frozen_batch_norm(false);
  const Tensor off = model->forward(x);
  REQUIRE(model->batch_norm_folds_computed() == 20);
  for (const nn::ConvBatchNorm* pair : model->conv_bn_pairs())
    REQUIRE_FALSE(pair->folded_weight().defined());

  const double tau = network_tolerance(*model);
  model->to(DType::Float64);
  const Tensor ref = model->forward(x.to(DType::Float64));
  REQUIRE_ALLCLOSE(on, ref, 0, tau * max_abs(ref));
  REQUIRE_ALLCLOSE(off, ref, 0, tau * max_abs(ref));
  REQUIRE(on.to_vector<float>() != off.to_vector<float>());  // folding did change the arithmetic

  // Loading weights (models/weights.h) makes every fold again.
  model->to(DType::Float32);
  model->set_fold_frozen_batch_norm(true);
  model->forward(x);
  const int64_t before = model->batch_norm_folds_computed();
  std::map<std::string, Tensor> same;
  for (const auto& [name, t] : model->state_dict())
    same[name] = t.clone();
  models::assign_weights(*model, same, "test");
  model->forward(x);
  REQUIRE(model->batch_norm_folds_computed() == before + 20);
}

TEST_CASE("ResNet18 with layer4 and fc trainable, BatchNorm frozen: only the frozen pairs fold") {
  auto model = frozen_resnet18(8);
  nn::NamedTensors params = model->named_parameters();
  for (auto& [name, p] : params)
    if (name.rfind("layer4.", 0) == 0 || name.rfind("fc.", 0) == 0) p.set_requires_grad(true);
  model->train();
  nn::set_batch_norm_mode(*model, {"*"}, nn::BatchNormMode::Frozen);
  int64_t folding = 0;
  for (const nn::ConvBatchNorm* pair : model->conv_bn_pairs())
    folding += pair->folds();
  REQUIRE(folding == 20 - 5);  // layer4: 2 blocks of 2 convs and one downsample
  Generator gen(9);
  model->forward(Tensor::normal({2, 3, 64, 64}, 0, 1, gen));
  REQUIRE(model->batch_norm_folds_computed() == 15);
}

// ---- CUDA
// ---------------------------------------------------------------------------------------------------

TEST_CASE("CUDA: a folded pair within the float32 bound, and ResNet18 folded as on the CPU", "[cuda]") {
  THAW_SKIP_WITHOUT_CUDA("conv + BatchNorm folding on CUDA");
  const Device gpu = Device::cuda();
  for (const bool relu : {false, true}) {
    INFO("one pair, relu " << relu);
    Pair f;
    const Reference ref = reference(*f.conv, *f.bn, f.x, relu);
    nn::ConvBatchNorm pair(f.conv, f.bn);
    pair.forward(f.x, relu);
    const Tensor cpu_weight = pair.folded_weight().clone();
    f.conv->to(gpu);
    f.bn->to(gpu);
    const Tensor y = pair.forward(f.x.to(gpu), relu);
    REQUIRE(pair.folds_computed() == 2);  // new storage on the device
    REQUIRE(pair.folded_weight().device() == gpu);
    REQUIRE_ALLCLOSE(pair.folded_weight(), cpu_weight, 0, 0);        // the same host arithmetic
    REQUIRE_ALLCLOSE(y, ref.y, 0, fold_bound(ref, DType::Float32));  // CUDA's fp32 FMAs: any order
  }

  auto model = frozen_resnet18(5);
  Generator gen(6);
  const Tensor x = Tensor::normal({2, 3, 64, 64}, 0, 1, gen);
  const double tau = network_tolerance(*model);
  model->forward(x);
  std::vector<Tensor> cpu_weights;
  for (const nn::ConvBatchNorm* pair : model->conv_bn_pairs())
    cpu_weights.push_back(pair->folded_weight().clone());
  model->to(gpu);
  const Tensor on = model->forward(x.to(gpu));
  REQUIRE(model->batch_norm_folds_computed() == 40);
  for (size_t i = 0; i < cpu_weights.size(); ++i)
    REQUIRE_ALLCLOSE(model->conv_bn_pairs()[i]->folded_weight(), cpu_weights[i], 0, 0);
  model->set_fold_frozen_batch_norm(false);
  const Tensor off = model->forward(x.to(gpu));
  model->to(Device::cpu());
  model->to(DType::Float64);
  const Tensor ref = model->forward(x.to(DType::Float64));
  REQUIRE_ALLCLOSE(on, ref, 0, tau * max_abs(ref));
  REQUIRE_ALLCLOSE(off, ref, 0, tau * max_abs(ref));
}
