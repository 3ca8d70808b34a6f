// PyTorch parity of every CPU op in kernels/ops.h, forward and backward.
//
// The cases come from weights_tools/make_op_golden.py (THAW_GOLDEN_DIR/ops.h5, made by the ctest fixture
// golden_ops_generate): float32 inputs, an upstream gradient dy, and torch's float64 results computed from
// those same float32 values. Every case runs twice:
//   - float32, thaw's training precision: the tolerances below allow for thaw's float32 rounding only;
//   - float64 (the inputs converted exactly): the same math in the precision of the reference, so
//     agreement to ~1e-10 proves the formulas, not just that the rounding is small.
// Each family prints one line: how much of its tolerance the worst element used, per precision.
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "core/hdf5_file.h"
#include "core/name_pattern.h"
#include "kernels/ops.h"
#include "tests/support/allclose.h"
#include "tests/support/catch.h"

using namespace thaw;

namespace {

const std::string kGoldenPath = THAW_GOLDEN_DIR "/ops.h5";
const std::string kHowToGenerate =
    "no " + kGoldenPath + ": generate it with `/usr/bin/python3 weights_tools/make_op_golden.py --out " +
    kGoldenPath + "` (or run ctest, whose fixture golden_ops_generate does)";

struct Tolerance {
  double rtol, atol;
};

// float64 against a float64 reference: both sides round at ~1e-16 per operation; the longest sums here
// (2304 products in conv, 3136 in a weight gradient) stay far below 1e-10 of values of order 1.
constexpr Tolerance kFloat64{1e-10, 1e-10};
// Exact: integer outputs (max-pool argmax), copies (relu's passed-through values, eval-mode running stats).
constexpr Tolerance kExact{0, 0};

// One case of the golden file read at one precision: inputs converted to that dtype, references as stored.
class Case {
 public:
  Case(const H5File& file, std::string name, DType dtype)
      : file_(file), name_(std::move(name)), dtype_(dtype) {}

  const std::string& name() const { return name_; }
  DType dtype() const { return dtype_; }
  // An input in this case's dtype (integer datasets, the labels, keep theirs).
  Tensor in(const std::string& dataset) const {
    const Tensor t = ref(dataset);
    return t.dtype() == DType::Float32 || t.dtype() == DType::Float64 ? t.to(dtype_) : t;
  }
  Tensor ref(const std::string& dataset) const { return file_.read(name_ + "/" + dataset); }
  int64_t attr_int(const std::string& attr) const { return file_.attr_int(attr, name_); }
  double attr_double(const std::string& attr) const { return file_.attr_double(attr, name_); }

 private:
  const H5File& file_;
  std::string name_;
  DType dtype_;
};

// Runs every case of one op at both precisions, compares, and keeps the worst use of the tolerance.
class Family {
 public:
  explicit Family(std::string op) : op_(std::move(op)) {}

  void run(const std::function<void(const Case&)>& body) {
    H5File file = H5File::open(kGoldenPath);
    std::vector<std::string> names;
    for (const std::string& name : split_patterns(file.attr_string("cases"))) {
      if (file.attr_string("op", name) == op_) names.push_back(name);
    }
    INFO(op_ << ": cases in " << kGoldenPath);
    REQUIRE(!names.empty());  // a family with no cases would pass silently
    for (const DType dtype : {DType::Float32, DType::Float64}) {
      for (const std::string& name : names) {
        INFO("case " << name << " in " << dtype_name(dtype));
        body(Case(file, name, dtype));
      }
    }
    std::printf("%-15s %2zu cases: worst use of tolerance %.2g%% in float32 (%s), %.2g%% in float64 (%s)\n",
                op_.c_str(), names.size(), 100 * worst_[0].ratio, worst_[0].where.c_str(),
                100 * worst_[1].ratio, worst_[1].where.c_str());
  }

  // got against the case's reference dataset ref_name; f32 is the float32 tolerance (float64 uses kFloat64).
  void check(const Case& c, const Tensor& got, const std::string& ref_name, Tolerance f32) {
    const bool is_f64 = c.dtype() == DType::Float64;
    const Tolerance tol = is_f64 && (f32.rtol > 0 || f32.atol > 0) ? kFloat64 : f32;
    const test::CloseReport report = test::allclose(got, c.ref(ref_name), tol.rtol, tol.atol, ref_name);
    Worst& worst = worst_[is_f64 ? 1 : 0];
    if (report.worst_ratio >= worst.ratio) worst = {report.worst_ratio, c.name() + " " + ref_name};
    INFO(report.message);
    CHECK(report.ok);
  }

 private:
  struct Worst {
    double ratio = 0;
    std::string where = "-";
  };
  std::string op_;
  Worst worst_[2];  // float32, float64
};

}  // namespace

// ---- conv2d -----------------------------------------------------------------------------------------------
// float32: the rounding error of a sum scales with the sum of |terms|, not with the result, which may cancel
// to near 0. y, dx: C*R*S (up to 2304) products scaled to O(1) results, sum of |terms| up to ~30. dw: N*P*Q
// (up to 3136) products of O(1) values, sum of |terms| up to ~2000, times 6e-8 = 1.2e-4: its atol.
TEST_CASE("conv2d forward, backward-data, backward-weight and bias gradient match PyTorch", "[ops][torch]") {
  if (!std::filesystem::exists(kGoldenPath)) FAIL(kHowToGenerate);
  const Tolerance data_tol{1e-4, 2e-5}, weight_tol{1e-4, 2e-4};
  Family family("conv2d");
  family.run([&](const Case& c) {
    const ops::Conv2dParams p{c.attr_int("stride_h"), c.attr_int("stride_w"), c.attr_int("pad_h"),
                              c.attr_int("pad_w")};
    const bool has_bias = c.attr_int("has_bias") != 0;
    const Tensor x = c.in("x"), w = c.in("w"), dy = c.in("dy");
    family.check(c, ops::conv2d_forward(x, w, has_bias ? c.in("b") : Tensor(), p), "y", data_tol);
    family.check(c, ops::conv2d_backward_data(dy, w, x.shape(), p), "dx", data_tol);
    family.check(c, ops::conv2d_backward_weight(dy, x, w.shape(), p), "dw", weight_tol);
    if (has_bias) family.check(c, ops::sum_to_channels(dy), "db", weight_tol);
  });
}

// ---- batch_norm2d
// ------------------------------------------------------------------------------------------ float32:
// statistics accumulate in double, but mean and invstd are returned in float32 (relative 6e-8) and y, dx are
// computed from them: a few ulps of O(1) values. dgamma/dbeta sum up to 2312 O(1) products in double, rounded
// once, except that in the offset-100 cases the float32 mean is off by up to ulp(100)/2 = 3.8e-6: that shifts
// every xhat by 3.8e-6 invstd, hence dgamma by about that times |dbeta| (~12): 5e-5, the atol of dgamma.
TEST_CASE("batch_norm train and eval, forward, backward and running statistics match PyTorch",
          "[ops][torch]") {
  if (!std::filesystem::exists(kGoldenPath)) FAIL(kHowToGenerate);
  const Tolerance tol{1e-5, 1e-5}, dgamma_tol{1e-5, 1e-4};
  Family family("batch_norm2d");
  family.run([&](const Case& c) {
    const bool train = c.attr_int("train") != 0;
    const Tensor x = c.in("x"), gamma = c.in("gamma"), beta = c.in("beta"), dy = c.in("dy");
    const Tensor running_mean = c.in("running_mean_before"), running_var = c.in("running_var_before");
    const ops::BatchNormForward fwd = ops::batch_norm_forward(
        x, gamma, beta, running_mean, running_var, train, c.attr_double("momentum"), c.attr_double("eps"));
    family.check(c, fwd.y, "y", tol);
    family.check(c, fwd.mean, "mean", tol);
    family.check(c, fwd.invstd, "invstd", tol);
    // Train: updated in place with momentum and the unbiased variance. Eval: untouched (torch's "after"
    // equals "before", so this also checks that nothing was written).
    family.check(c, running_mean, "running_mean_after", train ? tol : kExact);
    family.check(c, running_var, "running_var_after", train ? tol : kExact);
    if (train) {
      const Tensor before = c.ref("running_mean_before");
      CHECK(!test::allclose(running_mean, before, 0, 0).ok);  // the update did happen
    }
    const ops::BatchNormBackward bwd =
        ops::batch_norm_backward(dy, x, gamma, fwd.mean, fwd.invstd, train, true);
    family.check(c, bwd.dx, "dx", tol);
    family.check(c, bwd.dgamma, "dgamma", dgamma_tol);
    family.check(c, bwd.dbeta, "dbeta", tol);
  });
}

// ---- relu -------------------------------------------------------------------------------------------------
// Exact in both precisions: y is x or 0, dx is dy or 0 (no input lies within 1e-3 of the kink).
TEST_CASE("relu forward and backward match PyTorch", "[ops][torch]") {
  if (!std::filesystem::exists(kGoldenPath)) FAIL(kHowToGenerate);
  Family family("relu");
  family.run([&](const Case& c) {
    const Tensor y = ops::relu_forward(c.in("x"));
    family.check(c, y, "y", kExact);
    family.check(c, ops::relu_backward(c.in("dy"), y), "dx", kExact);
  });
}

// ---- pooling ----------------------------------------------------------------------------------------------
// Max-pool: inputs are distinct, so the argmax is unique and y, argmax exact. dx adds at most
// ceil(kernel/stride)^2 = 4 float32 gradients (|dy| < 5) into one element: each addition rounds by up to
// half an ulp of the partial sum (2.4e-7), which may then cancel to a small result: hence the atol.
TEST_CASE("max_pool2d forward (values and argmax) and backward match PyTorch", "[ops][torch]") {
  if (!std::filesystem::exists(kGoldenPath)) FAIL(kHowToGenerate);
  Family family("max_pool2d");
  family.run([&](const Case& c) {
    const ops::Pool2dParams p{c.attr_int("kernel_h"), c.attr_int("kernel_w"), c.attr_int("stride_h"),
                              c.attr_int("stride_w"), c.attr_int("pad_h"),    c.attr_int("pad_w")};
    const Tensor x = c.in("x");
    const ops::MaxPoolForward fwd = ops::max_pool2d_forward(x, p);
    family.check(c, fwd.y, "y", kExact);
    family.check(c, fwd.argmax, "argmax", kExact);
    family.check(c, ops::max_pool2d_backward(c.in("dy"), fwd.argmax, x.shape()), "dx", {1e-6, 1e-6});
  });
}

// Global average pool: a mean of up to 143 values (in double) and its broadcast: one rounding each.
TEST_CASE("global_avg_pool2d forward and backward match PyTorch", "[ops][torch]") {
  if (!std::filesystem::exists(kGoldenPath)) FAIL(kHowToGenerate);
  const Tolerance tol{1e-6, 1e-7};
  Family family("global_avg_pool2d");
  family.run([&](const Case& c) {
    const Tensor x = c.in("x");
    family.check(c, ops::global_avg_pool2d_forward(x), "y", tol);
    family.check(c, ops::global_avg_pool2d_backward(c.in("dy"), x.shape()), "dx", tol);
  });
}

// ---- linear -----------------------------------------------------------------------------------------------
// float32 GEMMs: y sums up to 512 products scaled to O(1); dx sums up to 1000 O(1) products; dw and db sum
// over a batch of at most 4. Same reasoning as conv2d.
TEST_CASE("linear forward and backward match PyTorch", "[ops][torch]") {
  if (!std::filesystem::exists(kGoldenPath)) FAIL(kHowToGenerate);
  const Tolerance tol{1e-4, 2e-5};
  Family family("linear");
  family.run([&](const Case& c) {
    const bool has_bias = c.attr_int("has_bias") != 0;
    const Tensor x = c.in("x"), w = c.in("w"), dy = c.in("dy");
    family.check(c, ops::linear_forward(x, w, has_bias ? c.in("b") : Tensor()), "y", tol);
    family.check(c, ops::linear_backward_data(dy, w), "dx", tol);
    family.check(c, ops::linear_backward_weight(dy, x), "dw", tol);
    if (has_bias) family.check(c, ops::sum_to_channels(dy), "db", tol);
  });
}

// ---- losses -----------------------------------------------------------------------------------------------
// Computed in double and rounded once to float32 (relative 6e-8), except that the backward starts from the
// float32 probabilities. Logits up to ~150 (the large-logits cases) only shift the log-sum-exp.
TEST_CASE("cross_entropy (softmax, plain and class-weighted) forward and backward match PyTorch",
          "[ops][torch]") {
  if (!std::filesystem::exists(kGoldenPath)) FAIL(kHowToGenerate);
  const Tolerance tol{1e-6, 1e-7};
  Family family("cross_entropy");
  family.run([&](const Case& c) {
    const Tensor labels = c.in("labels");
    const Tensor weights = c.attr_int("weighted") != 0 ? c.in("class_weights") : Tensor();
    const ops::CrossEntropyForward fwd = ops::cross_entropy_forward(c.in("logits"), labels, weights);
    family.check(c, fwd.loss, "loss", tol);
    family.check(c, fwd.probs, "probs", tol);
    family.check(c, ops::cross_entropy_backward(c.in("dloss"), fwd.probs, labels, weights), "dlogits", tol);
  });
}

TEST_CASE("bce_with_logits (mean) forward and backward match PyTorch", "[ops][torch]") {
  if (!std::filesystem::exists(kGoldenPath)) FAIL(kHowToGenerate);
  const Tolerance tol{1e-6, 1e-7};
  Family family("bce_with_logits");
  family.run([&](const Case& c) {
    const Tensor logits = c.in("logits"), targets = c.in("targets");
    family.check(c, ops::bce_with_logits_forward(logits, targets), "loss", tol);
    family.check(c, ops::bce_with_logits_backward(c.in("dloss"), logits, targets), "dlogits", tol);
  });
}

// ---- elementwise ------------------------------------------------------------------------------------------
// One float32 rounding of the exact sum: at most 2^-24 = 6e-8 of the result.
TEST_CASE("add matches PyTorch", "[ops][torch]") {
  if (!std::filesystem::exists(kGoldenPath)) FAIL(kHowToGenerate);
  Family family("add");
  family.run([&](const Case& c) { family.check(c, ops::add(c.in("a"), c.in("b")), "y", {1e-7, 0}); });
}
