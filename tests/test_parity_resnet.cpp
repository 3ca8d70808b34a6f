// Step-for-step parity with PyTorch, whole model. For each case of the table, PyTorch (Debian's) writes a
// parity input file and its own results in float32 and float64 (weights_tools/make_golden.py
// --float64-reference), and `thaw parity` (run_parity) runs the same input twice on the CPU:
//
// 1. In float64, the whole case: the first forward and backward, then K optimizer steps. Every tensor
// (logits,
//    loss, each gradient, the K losses, each parameter's update, each running statistic) must equal PyTorch's
//    float64 result to near float64 rounding. The allowance is derived, not fitted: in the linear regime a
//    computation's rounding error scales with the unit roundoff, so PyTorch's own float32 error on a tensor,
//    |torch32 - torch64|, measures how much this computation amplifies rounding, and float64 rounds 2^29
//    times finer. Each tensor is allowed 2^-20 x that float32 error (512x the linear prediction; measured use
//    below 1% on an AMD EPYC), floored at the median over the case's tensors (a tensor whose float32 result
//    happened to round well) and at 64 float64 ulps of the tensor's largest value. So the check does not
//    depend on the CPU's BLAS kernels, and a trajectory that float32 cannot follow (every ResNet50 layer
//    training, Adam's noise-level gradients) is still checked to ~1e-10: a wrong formula or hyper-parameter
//    moves an update by a sizeable fraction of itself ("a wrong hyper-parameter fails" below shows it).
// 2. In float32, the first forward and backward and one optimizer step: each tensor against PyTorch's float64
//    result, allowed 3x PyTorch's own float32 error on that tensor, floored at 3x the median over the case's
//    tensors (two float32 implementations round differently: measured, thaw's error on a tensor is up to 1.9x
//    PyTorch's). Parameters after the step are compared directly, not by their update, which float32 storage
//    rounding would swamp. Where float32 cannot resolve the gradients (a randomly initialised ResNet50 with
//    its deep layers in the backward pass: PyTorch's own float32 gradients are 0.4% to 16% off float64,
//    tensor by tensor, and thaw's land elsewhere in that range) the float32 gradients and the parameters
//    after the step are judged over the whole model (3x PyTorch's worst tensor), and the float64 run is their
//    per-tensor check. Adam's first step on gradients at rounding-noise level is left out
//    (leave_out_noise_level).
// Frozen parameters must be bit-for-bit unchanged in both runs.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "core/cuda_runtime.h"
#include "core/hdf5_file.h"
#include "tests/support/allclose.h"
#include "tests/support/catch.h"
#include "tests/support/cuda.h"
#include "train/parity.h"

using namespace thaw;
namespace fs = std::filesystem;

namespace {

// How the float32 run's gradients are judged (see the file comment).
enum class Float32Gradients { PerTensor, ModelWide };

struct ParityCase {
  const char* name;
  const char* golden_args;  // make_golden.py options (--float64-reference is added)
  Float32Gradients float32_gradients = Float32Gradients::PerTensor;
};

// ResNet18 and ResNet50, N=4 at 64x64: eval and train mode, SGD (Nesterov and plain momentum) with and
// without weight decay, Adam, AdamW, freeze masks (layer3 + layer4 + fc, layer4 + fc, fc), BatchNorm on batch
// vs running statistics, class weights, and the binary head with BCE. "--calibrate-bn" gives running
// statistics that fit the batch, as a pretrained network's would (random ones make a frozen-BN network
// explode under training).
const ParityCase kCases[] = {
    {"r18_eval_all", "--arch resnet18 --mode eval --steps 0"},
    {"r18_train_all_sgd_nesterov",
     "--arch resnet18 --mode train --optimizer sgd --nesterov 1 --lr 1e-4 --steps 5"},
    {"r18_l3_sgd_nesterov_wd",
     "--arch resnet18 --trainable layer3,layer4,fc --optimizer sgd --nesterov 1 --lr 1e-3 --weight-decay "
     "0.01 "
     "--steps 5"},
    {"r18_l3_sgd_plain_momentum",
     "--arch resnet18 --trainable layer3,layer4,fc --optimizer sgd --nesterov 0 --lr 1e-3 --steps 5"},
    {"r18_l3_adam", "--arch resnet18 --trainable layer3,layer4,fc --optimizer adam --lr 1e-3 --steps 5"},
    {"r18_l3_adamw_wd",
     "--arch resnet18 --trainable layer3,layer4,fc --optimizer adamw --lr 1e-3 --weight-decay 0.01 --steps "
     "5"},
    {"r18_l3_sgd_bn_frozen",
     "--arch resnet18 --trainable layer3,layer4,fc --bn-mode frozen --calibrate-bn --optimizer sgd --lr 1e-3 "
     "--steps 5"},
    {"r18_l3_adamw_bn_frozen",
     "--arch resnet18 --trainable layer3,layer4,fc --bn-mode frozen --calibrate-bn --optimizer adamw --lr "
     "1e-4 "
     "--weight-decay 0.01 --steps 5"},
    {"r18_class_weights",
     "--arch resnet18 --num-classes 37 --class-weights --trainable layer4,fc --optimizer sgd --lr 1e-3 "
     "--steps 3"},
    {"r18_binary_head_bce",
     "--arch resnet18 --num-classes 1 --loss bce_with_logits --trainable fc --optimizer adam --lr 1e-3 "
     "--steps 5"},
    {"r50_eval_all", "--arch resnet50 --mode eval --calibrate-bn --steps 0", Float32Gradients::ModelWide},
    {"r50_train_all_sgd_nesterov",
     "--arch resnet50 --mode train --optimizer sgd --nesterov 1 --lr 1e-4 --steps 3",
     Float32Gradients::ModelWide},
    {"r50_head_sgd_nesterov",
     "--arch resnet50 --mode eval --calibrate-bn --trainable fc --optimizer sgd --nesterov 1 --lr 1e-3 "
     "--steps 5"},
    {"r50_head_adamw_bn_frozen",
     "--arch resnet50 --bn-mode frozen --calibrate-bn --trainable fc --optimizer adamw --lr 1e-3 "
     "--weight-decay 1e-2 --steps 5"},
};

constexpr double kFloat64Ulp = 0x1p-52;
constexpr double kFloat64PerFloat32Error = 0x1p-20;  // the float64 allowance per unit of float32 error
constexpr double kFloat32Margin = 3;                 // the float32 allowance per unit of PyTorch's own error

std::vector<double> doubles(const Tensor& t) {
  return t.to(DType::Float64).to_vector<double>();
}

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v)
    m = std::max(m, std::abs(x));
  return m;
}

// max |a - b| / max |b| (0 when b is all zeros and a equals it).
double relative_error(const std::vector<double>& a, const std::vector<double>& b) {
  double diff = 0;
  for (size_t i = 0; i < a.size(); ++i)
    diff = std::max(diff, std::abs(a[i] - b[i]));
  const double scale = max_abs(b);
  return scale > 0 ? diff / scale : (diff > 0 ? INFINITY : 0);
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(v.size() / 2), v.end());
  return v[v.size() / 2];
}

// One compared tensor: thaw's value, PyTorch's float64 reference and PyTorch's own float32 result.
struct Compared {
  std::string what;
  Shape shape;
  std::vector<double> got, ref64, torch32;
  double own() const { return relative_error(torch32, ref64); }  // PyTorch's float32 error, relative
};

// The verdicts of one run: each tensor's error against its allowance, both relative to max |reference|.
struct Verdicts {
  struct Row {
    std::string what, message;
    double error, allowance;
    bool ok() const { return error <= allowance; }
  };
  std::vector<Row> rows;

  static double use(const Row& r) {
    return r.allowance > 0 ? r.error / r.allowance : (r.error > 0 ? INFINITY : 0);
  }
  const Row* worst() const {
    const auto it = std::max_element(rows.begin(), rows.end(),
                                     [](const Row& a, const Row& b) { return use(a) < use(b); });
    return it == rows.end() ? nullptr : &*it;
  }
  double worst_use() const { return rows.empty() ? 0 : use(*worst()); }
  bool ok() const { return worst_use() <= 1; }
  void check() const {
    for (const Row& r : rows) {
      INFO(r.message);
      CHECK(r.ok());
    }
  }
};

// Judges each tensor of `group` with allowance(own error of this tensor, median own error of the group),
// relative to the tensor's largest reference value; the median is taken over the group.
template <typename Allowance>
void judge(const std::vector<Compared>& group, Allowance allowance, Verdicts& out) {
  std::vector<double> own;
  for (const Compared& c : group)
    own.push_back(c.own());
  const double typical = median(own);
  for (size_t i = 0; i < group.size(); ++i) {
    const Compared& c = group[i];
    const double scale = max_abs(c.ref64), allowed = allowance(own[i], typical);
    const auto report =
        test::allclose(Tensor::from_data<double>(c.shape, c.got), Tensor::from_data<double>(c.shape, c.ref64),
                       0, allowed * scale, c.what);
    out.rows.push_back({c.what,
                        report.message + fmt::format(" (PyTorch float32: {:.3g} of max|ref|)", own[i]),
                        relative_error(c.got, c.ref64), allowed});
  }
}

struct Files {
  H5File got, ref, in;
  bool trainable(const std::string& name) const { return ref.has("grads64/" + name); }
  void check_frozen(const std::string& name) const {
    INFO(name << " is frozen: it must be bit-for-bit unchanged");
    CHECK(doubles(got.read("params/" + name)) == doubles(in.read("weights/" + name)));
  }
  Compared tensor(const std::string& got_name, const std::string& ref64_name, const std::string& ref32_name,
                  const std::string& what) const {
    const Tensor r = ref.read(ref64_name);
    return {what, r.shape(), doubles(got.read(got_name)), doubles(r), doubles(ref.read(ref32_name))};
  }
  // params - initial of a trainable parameter, after the K steps.
  Compared update(const std::string& name) const {
    const std::vector<double> initial = doubles(in.read("weights/" + name));
    Compared c = tensor("params/" + name, "params64/" + name, "params/" + name, "update of " + name);
    for (std::vector<double>* v : {&c.got, &c.ref64, &c.torch32})
      for (size_t i = 0; i < initial.size(); ++i)
        (*v)[i] -= initial[i];
    return c;
  }
};

std::vector<Compared> gradients(const Files& f) {
  std::vector<Compared> out;
  const std::vector<std::string> names = f.ref.datasets("grads64");
  REQUIRE(names == f.got.datasets("grads"));  // the same trainable set
  for (const std::string& name : names)
    out.push_back(f.tensor("grads/" + name, "grads64/" + name, "grads/" + name, "gradient of " + name));
  return out;
}

std::vector<Compared> buffers(const Files& f, const std::string& ref64_group,
                              const std::string& ref32_group) {
  std::vector<Compared> out;
  for (const std::string& name : f.ref.datasets(ref64_group))
    out.push_back(f.tensor("buffers/" + name, ref64_group + "/" + name, ref32_group + "/" + name, name));
  return out;
}

std::vector<Compared> first_forward(const Files& f) {
  return {f.tensor("logits", "logits64", "logits", "logits"), f.tensor("loss", "loss64", "loss", "loss")};
}

// The float64 run of all K steps, against PyTorch's float64 run.
Verdicts judge_float64(const Files& f) {
  const auto allowance = [](double own, double typical) {
    return std::max(kFloat64PerFloat32Error * std::max(own, typical), 64 * kFloat64Ulp);
  };
  Verdicts v;
  judge(first_forward(f), allowance, v);
  judge(gradients(f), allowance, v);
  if (f.ref.has("losses64") && f.ref.read("losses64").numel() > 0) {
    judge({f.tensor("losses", "losses64", "losses", "losses of the K steps")}, allowance, v);
    std::vector<Compared> updates;
    for (const std::string& name : f.ref.datasets("params64")) {
      if (f.trainable(name)) {
        updates.push_back(f.update(name));
      } else {
        f.check_frozen(name);
      }
    }
    judge(updates, allowance, v);
  }
  judge(buffers(f, "buffers64", "buffers"), allowance, v);
  return v;
}

// Adam's first step moves every trainable value by about lr whatever the size of its gradient, so a value
// whose gradient is rounding noise (|g| within 10x the tensor's float32 gradient error, thaw's or PyTorch's)
// moves by +-lr with the sign rounding gave it. Those values are left out of the float32 step's comparison
// (the float64 run checks them); they must stay a minority.
void leave_out_noise_level(const Compared& grad, Compared& param, int64_t& left_out) {
  const double noise =
      std::max(relative_error(grad.got, grad.ref64), relative_error(grad.torch32, grad.ref64)) *
      max_abs(grad.ref64);
  for (size_t i = 0; i < grad.ref64.size(); ++i) {
    if (std::abs(grad.ref64[i]) <= 10 * noise) {
      param.got[i] = param.torch32[i] = param.ref64[i];
      ++left_out;
    }
  }
}

// The float32 run: the first forward and backward, and the parameters and running statistics after one step.
Verdicts judge_float32(const Files& f, const ParityCase& c) {
  const auto per_tensor = [](double own, double typical) { return kFloat32Margin * std::max(own, typical); };
  // Model-wide (see the file comment): every tensor of the group allowed 3x PyTorch's worst.
  const auto judge_float32_group = [&](const std::vector<Compared>& group, Verdicts& v) {
    if (c.float32_gradients == Float32Gradients::PerTensor) return judge(group, per_tensor, v);
    double worst = 0;
    for (const Compared& g : group)
      worst = std::max(worst, g.own());
    judge(
        group, [worst](double, double) { return kFloat32Margin * worst; }, v);
  };
  Verdicts v;
  judge(first_forward(f), per_tensor, v);
  const std::vector<Compared> grads = gradients(f);
  judge_float32_group(grads, v);
  const bool stepped = f.ref.has("params64_step1");
  if (stepped) {
    const std::string optimizer = f.in.attr_string("optimizer");
    const bool adam = optimizer == "adam" || optimizer == "adamw";
    std::vector<Compared> params;
    int64_t left_out = 0, total = 0;
    for (const std::string& name : f.ref.datasets("params64_step1")) {
      if (!f.trainable(name)) {
        f.check_frozen(name);
        continue;
      }
      params.push_back(f.tensor("params/" + name, "params64_step1/" + name, "params_step1/" + name, name));
      total += int64_t(params.back().ref64.size());
      if (adam) {
        const auto grad = std::find_if(grads.begin(), grads.end(),
                                       [&](const Compared& g) { return g.what == "gradient of " + name; });
        leave_out_noise_level(*grad, params.back(), left_out);
      }
    }
    INFO(left_out << " of " << total << " trainable values have a first gradient at float32 noise level");
    CHECK(left_out <= total / 4);
    judge_float32_group(params, v);
  }
  judge(stepped ? buffers(f, "buffers64_step1", "buffers_step1") : buffers(f, "buffers64", "buffers"),
        per_tensor, v);
  return v;
}

struct CasePaths {
  std::string in, expected, stem;
};

// make_golden.py for a case (extra: options added after the case's own, e.g. a wrong hyper-parameter).
std::string run_golden(const std::string& stem, const std::string& args, const std::string& role) {
  const std::string in = stem + "." + role + ".in.h5", expected = stem + "." + role + ".expected.h5";
  const std::string command = std::string(THAW_TORCH_PYTHON) + " " + THAW_SOURCE_DIR +
                              "/weights_tools/make_golden.py --in-file " + in + " --expected " + expected +
                              " " + args + " --float64-reference > " + stem + "." + role + ".log 2>&1";
  INFO("golden: " << command);
  REQUIRE(std::system(command.c_str()) == 0);
  return in;
}

std::string case_stem(const ParityCase& c) {
  const fs::path dir = fs::path(THAW_GOLDEN_DIR) / "parity";
  fs::create_directories(dir);
  return (dir / c.name).string();
}

void remove_files(const std::string& stem) {
  for (const auto& entry : fs::directory_iterator(fs::path(stem).parent_path()))
    if (entry.path().filename().string().starts_with(fs::path(stem).filename().string() + "."))
      fs::remove(entry.path());
}

void run_case(const ParityCase& c, Device device) {
  const std::string stem = case_stem(c);
  const std::string in = run_golden(stem, c.golden_args, "case");
  const std::string expected = stem + ".case.expected.h5";
  const std::string out32 = stem + ".thaw32-" + (device.is_cpu() ? "cpu" : "cuda") + ".h5";
  const H5File ref = H5File::open(expected);
  const int64_t steps = H5File::open(in).attr_int("steps");

  train::run_parity(in, out32, device, {DType::Float32, std::min<int64_t>(steps, 1)});
  const Verdicts v32 = judge_float32({H5File::open(out32), H5File::open(expected), H5File::open(in)}, c);
  v32.check();
  std::ostringstream line;
  line << c.name << " on " << device.str() << ": float32 (first step) uses " << 100 * v32.worst_use()
       << "% of its allowance (" << v32.worst()->what << ")";
  bool ok = v32.ok();
  if (device.is_cpu()) {
    const std::string out64 = stem + ".thaw64.h5";
    train::run_parity(in, out64, device, {DType::Float64, -1});
    const Verdicts v64 = judge_float64({H5File::open(out64), H5File::open(expected), H5File::open(in)});
    v64.check();
    line << "; float64 (" << steps << " steps) uses " << 100 * v64.worst_use() << "% (" << v64.worst()->what
         << ")";
    ok = ok && v64.ok();
  }
  WARN(line.str());
  if (ok) remove_files(stem);  // large (up to ~400 MB for ResNet50): kept only when something failed
}

}  // namespace

TEST_CASE("ResNet parity with PyTorch: float64 trajectories and float32 first steps, tensor by tensor") {
  for (const ParityCase& c : kCases) {
    DYNAMIC_SECTION(c.name) {
      run_case(c, Device::cpu());
    }
  }
}

// The check is not vacuous: thaw run with one hyper-parameter wrong, against PyTorch's run with the right
// one, fails the float64 comparison by orders of magnitude (while it passes with the right one, above).
TEST_CASE("ResNet parity: a wrong hyper-parameter fails the float64 trajectory check") {
  const ParityCase base = kCases[2];  // r18_l3_sgd_nesterov_wd: momentum 0.9, Nesterov, weight decay 0.01
  const std::string stem = case_stem(base) + "_wrong";
  run_golden(stem, base.golden_args, "right");
  for (const char* wrong : {"--momentum 0.8", "--nesterov 0", "--weight-decay 0"}) {
    DYNAMIC_SECTION(wrong) {
      const std::string in = run_golden(stem, std::string(base.golden_args) + " " + wrong, "wrong");
      const std::string out = stem + ".thaw64.h5";
      train::run_parity(in, out, Device::cpu(), {DType::Float64, -1});
      const Verdicts v = judge_float64({H5File::open(out), H5File::open(stem + ".right.expected.h5"),
                                        H5File::open(stem + ".right.in.h5")});
      WARN("thaw with " << wrong << " against PyTorch without it: the float64 check fails, using "
                        << v.worst_use() << "x its allowance (" << v.worst()->what << ")");
      CHECK(v.worst_use() > 1000);
    }
  }
  remove_files(stem);
}

// The float32 part of the same table on the CUDA backend (every op on the GPU, cuDNN nowhere). The CUDA
// backend has no float64, so its K-step trajectories are the CPU's (checked above) and test_train's CUDA run.
TEST_CASE("ResNet parity with PyTorch on CUDA: float32 first steps, the same tolerances", "[cuda]") {
  THAW_SKIP_WITHOUT_CUDA("CUDA ResNet parity");
  for (const ParityCase& c : kCases) {
    DYNAMIC_SECTION(c.name) {
      run_case(c, Device::cuda());
    }
  }
}
