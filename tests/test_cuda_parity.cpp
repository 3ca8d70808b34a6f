// Every op of kernels/ops.h, forward and backward, on the CUDA backend against the CPU backend with the same
// inputs. Tables: every conv shape of ResNet18 and ResNet50 at batch 2 (the table of thaw bench kernels) plus
// edge cases (1x1, stride 2, odd
// H/W, C=3, N=1, 5x5, asymmetric stride/padding), batch norm in train and eval mode, pooling, linear, the
// losses, the reductions and the optimizer updates.
//
// Exact where exact is possible: with integers in [-8, 8] every product and partial sum of a convolution,
// a GEMM, a max-pool or a sum is an integer below 2^24, so float32 gives the same bits in any summation order
// and the comparison has zero tolerance. Ops that divide or take exponentials (batch norm, softmax, Adam)
// are compared with tolerances a few float32 roundings wide.
//
// Device memory is poisoned (every new allocation filled with NaN bytes) so that an output element that a
// kernel forgets to write cannot pass by accident. Skips visibly without a CUDA build or device; fails (does
// not skip) when a device is present and a result differs.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "bench/kernels/problems.h"
#include "core/cuda_runtime.h"
#include "core/precision.h"
#include "core/rng.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/ops.h"
#include "tests/support/allclose.h"
#include "tests/support/catch.h"
#include "tests/support/cuda.h"

using namespace thaw;

namespace {

const Device kGpu = Device::cuda();

// Integers in [-8, 8] as float32: sums and products of a few thousand of them are exact in float32.
Tensor integer_valued(const Shape& shape, uint64_t seed) {
  Generator gen(seed);
  std::vector<float> v(size_t(shape_numel(shape)));
  for (float& x : v)
    x = float(gen.next_int(-8, 9));
  return Tensor::from_data<float>(shape, v);
}

Tensor normal(const Shape& shape, double mean, double std, uint64_t seed) {
  Generator gen(seed);
  return Tensor::normal(shape, mean, std, gen);
}

// cuda::force_conv2d_tile where there is a CUDA backend (the tests that call it skip without one).
void force_conv2d_tile(const char* tile) {
#if THAW_WITH_CUDA
  cuda::force_conv2d_tile(tile);
#else
  (void)tile;
#endif
}

// Whether a and b hold the same bits (-0 and +0 differ, a NaN equals only the same NaN), on any devices.
bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return false;
  const std::vector<float> x = a.to(Device::cpu()).to_vector<float>(),
                           y = b.to(Device::cpu()).to_vector<float>();
  return std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) == 0;
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (float v : t.to(Device::cpu()).to_vector<float>())
    m = std::max(m, double(std::abs(v)));
  return m;
}

// Skips the test case unless a device is present; poisons new device memory from here on.
#define REQUIRE_CUDA_DEVICE()                    \
  do {                                           \
    THAW_SKIP_WITHOUT_CUDA("CUDA parity tests"); \
    cuda_runtime::set_poison_allocations(true);  \
  } while (false)

// Compares a CUDA result with the CPU one: |gpu - cpu| <= rtol |cpu| + atol_rel max|cpu|.
#define REQUIRE_MATCHES_CPU(gpu, cpu, rtol, atol_rel) \
  REQUIRE_ALLCLOSE((gpu), (cpu), (rtol), (atol_rel)*max_abs(cpu))

// ---- convolution --------------------------------------------------------------------------------------

struct ConvCase {
  std::string name;
  int64_t n, c, h, w;  // input
  int64_t k, r, s;     // filters
  int64_t stride_h, stride_w, pad_h, pad_w;
  bool bias = false;
};

// Every distinct conv of ResNet18 and ResNet50 at 224x224 (torchvision v1.5: the bottleneck's stride sits on
// its 3x3), at batch 2: the table that `thaw bench kernels` times (bench/kernels/problems.h), so that the
// test and the benchmark cannot drift apart (in the CPU emulation of CUDA: the same layers on a 32x32
// image). Then the edge cases that no ResNet has.
std::vector<ConvCase> conv_cases() {
  bench::TableOptions resnets;
  resnets.batches = {2};
  resnets.image_size = kEmulatedCuda ? 32 : 224;
  resnets.filters = {"conv2d_forward"};
  std::vector<ConvCase> cases;
  for (const bench::Problem& p : bench::make_problems(resnets))
    cases.push_back({p.shape_str() + " (" + p.layers.front() + ")", p.n, p.c, p.h, p.w, p.k, p.r, p.r,
                     p.stride, p.stride, p.pad, p.pad});
  const ConvCase edge_cases[] = {
      {"N=1, odd 15x13, 3x3/2, bias", 1, 5, 15, 13, 7, 3, 3, 2, 2, 1, 1, true},
      {"C=3, 5x5 pad 2, odd 11x9, bias", 3, 3, 11, 9, 4, 5, 5, 1, 1, 2, 2, true},
      {"1x1x1x1 with bias", 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, true},
      {"3x3 stride 3 no padding", 2, 6, 10, 10, 5, 3, 3, 3, 3, 0, 0},
      {"7x7/2 pad 3 on odd 33x31, N=1", 1, 3, 33, 31, 8, 7, 7, 2, 2, 3, 3, true},
      {"1x1/2 on odd 9x7", 2, 9, 9, 7, 11, 1, 1, 2, 2, 0, 0},
      {"asymmetric 3x1, stride (2,1), pad (1,0)", 2, 4, 9, 6, 3, 3, 1, 2, 1, 1, 0, true},
      {"kernel as large as the padded input", 2, 3, 4, 4, 2, 6, 6, 1, 1, 1, 1},
      {"many filters, one pixel", 3, 17, 1, 1, 129, 1, 1, 1, 1, 0, 0, true},
  };
  cases.insert(cases.end(), std::begin(edge_cases), std::end(edge_cases));
  return cases;
}

// ---- batch norm ---------------------------------------------------------------------------------------

struct BatchNormCase {
  const char* name;
  Shape shape;
  double mean;  // of the input: a large one tests the variance's numerical stability
  bool train;
};

const BatchNormCase kBatchNormCases[] = {
    {"stem 2x64x112x112 train", {2, 64, 112, 112}, 0.5, true},
    {"layer4 4x2048x7x7 train", {4, 2048, 7, 7}, -1, true},
    {"odd 3x5x7x9 train", {3, 5, 7, 9}, 2, true},
    {"2-D (N, C) 8x10 train", {8, 10}, 0, true},
    {"large mean 1000, 2x8x33x33 train", {2, 8, 33, 33}, 1000, true},
    {"two values per channel", {2, 3, 1, 1}, 0, true},
    {"layer2 2x128x28x28 eval", {2, 128, 28, 28}, 0.3, false},
    {"odd 1x7x5x3 eval", {1, 7, 5, 3}, 0, false},
};

}  // namespace

TEST_CASE("CUDA: .to(device) round trip is exact", "[cuda]") {
  REQUIRE_CUDA_DEVICE();
  const Tensor x = integer_valued({3, 5, 7}, 1);
  const Tensor on_gpu = x.to(kGpu);
  REQUIRE(on_gpu.device() == kGpu);
  REQUIRE(on_gpu.to(Device::cpu()).to_vector<float>() == x.to_vector<float>());
  REQUIRE(on_gpu.to(kGpu).to(Device::cpu()).to_vector<float>() == x.to_vector<float>());
  // item() reads a scalar back from the device itself (the trainer reads each step's loss this way).
  REQUIRE(ops::sum(on_gpu).item() == ops::sum(x).item());
  REQUIRE(Tensor::zeros({4}, DType::Float32, kGpu).to_vector<float>() == std::vector<float>(4, 0.0f));
  const Tensor labels = Tensor::from_data<int64_t>({3}, {0, 5, -2});
  REQUIRE(labels.to(kGpu).to(Device::cpu()).to_vector<int64_t>() == labels.to_vector<int64_t>());
}

TEST_CASE("CUDA caching allocator: reuse of freed blocks, memory stats, clear out-of-memory error",
          "[cuda]") {
  REQUIRE_CUDA_DEVICE();
  const cuda_runtime::MemoryStats before = cuda_runtime::memory_stats(0);
  {
    const Tensor a = Tensor::empty({1000}, DType::Float32, kGpu);  // 4000 bytes, rounded to 4096
    const cuda_runtime::MemoryStats held = cuda_runtime::memory_stats(0);
    REQUIRE(held.in_use == before.in_use + 4096);
    REQUIRE(held.peak_in_use >= held.in_use);
    REQUIRE(held.reserved >= held.in_use);
  }
  REQUIRE(cuda_runtime::memory_stats(0).in_use == before.in_use);
  {
    const cuda_runtime::MemoryStats released = cuda_runtime::memory_stats(0);
    const Tensor b = Tensor::empty({1020}, DType::Float32, kGpu);  // 4080 bytes: from the cache
    const cuda_runtime::MemoryStats reused = cuda_runtime::memory_stats(0);
    REQUIRE(reused.cache_hits == released.cache_hits + 1);
    REQUIRE(reused.cuda_mallocs == released.cuda_mallocs);
  }
  // A large request is rounded to 512 bytes and may keep up to 1 MiB of its block unsplit
  // (core/block_pool.h).
  {
    const size_t in_use = cuda_runtime::memory_stats(0).in_use;
    const Tensor big = Tensor::empty({(int64_t(5) << 20) / 4 + 1}, DType::Float32, kGpu);  // 5 MiB + 4 B
    const size_t grew = cuda_runtime::memory_stats(0).in_use - in_use;
    REQUIRE(grew >= (size_t(5) << 20) + 4);
    REQUIRE(grew <= (size_t(5) << 20) + 512 + (size_t(1) << 20));
  }
  REQUIRE_THROWS_WITH(Tensor::empty({int64_t(1) << 50}, DType::Float32, kGpu),
                      ContainsSubstring("CUDA out of memory") && ContainsSubstring("lower the batch size"));
  // The device is still usable after the failed allocation.
  REQUIRE(Tensor::full({3}, 2.0, DType::Float32, kGpu).to_vector<float>() == std::vector<float>(3, 2.0f));
}

TEST_CASE("CUDA: elementwise ops, relu, add_relu and the reductions match the CPU backend exactly",
          "[cuda]") {
  REQUIRE_CUDA_DEVICE();
  for (const Shape& shape : {Shape{1}, Shape{7}, Shape{2, 3, 17, 19}, Shape{64, 1000}, Shape{1000003}}) {
    INFO("shape " << shape_str(shape));
    const Tensor a = integer_valued(shape, 2), b = integer_valued(shape, 3);
    const Tensor ga = a.to(kGpu), gb = b.to(kGpu);
    REQUIRE_ALLCLOSE(ops::add(ga, gb), ops::add(a, b), 0, 0);
    REQUIRE_ALLCLOSE(ops::mul(ga, gb), ops::mul(a, b), 0, 0);
    REQUIRE_ALLCLOSE(ops::scale(ga, -0.5), ops::scale(a, -0.5), 0, 0);
    REQUIRE_ALLCLOSE(ops::relu_forward(ga), ops::relu_forward(a), 0, 0);
    REQUIRE_ALLCLOSE(ops::relu_backward(gb, ops::relu_forward(ga)),
                     ops::relu_backward(b, ops::relu_forward(a)), 0, 0);
    REQUIRE_ALLCLOSE(ops::add_relu_forward(ga, gb), ops::add_relu_forward(a, b), 0, 0);
    REQUIRE_ALLCLOSE(ops::add_relu_forward(ga, gb), ops::relu_forward(ops::add(ga, gb)), 0, 0);
    REQUIRE_ALLCLOSE(ops::sum(ga), ops::sum(a), 0, 0);
    const Tensor y = a.clone(), gy = ga.clone();
    ops::add_(y, b, 2.0);
    ops::add_(gy, gb, 2.0);
    REQUIRE_ALLCLOSE(gy, y, 0, 0);
    ops::fill_(gy, 3.25);
    REQUIRE_ALLCLOSE(gy, Tensor::full(shape, 3.25), 0, 0);
  }
  for (const Shape& full : {Shape{64, 37}, Shape{1, 1}, Shape{2, 64, 56, 56}, Shape{3, 2048, 7, 7}}) {
    const Shape shape = cuda_test_shape(full);
    INFO("sum_to_channels of " << shape_str(shape));
    const Tensor dy = integer_valued(shape, 4);
    REQUIRE_ALLCLOSE(ops::sum_to_channels(dy.to(kGpu)), ops::sum_to_channels(dy), 0, 0);
  }
}

// Integers in [-8, 8] are exact in TF32 (10 mantissa bits) and bf16 (7), so the tensor-core kernels must
// give the same bits as the CPU's float32 too: any wrong fragment index, lost k-step or unwritten element
// shows.
TEST_CASE(
    "CUDA conv2d: forward, backward-data and backward-weight on every ResNet shape, in every precision, "
    "exactly",
    "[cuda]") {
  REQUIRE_CUDA_DEVICE();
  uint64_t seed = 100;
  const std::vector<ConvCase> cases = conv_cases();
  REQUIRE(cases.size() == 29 + 9);  // the 29 distinct ResNet18/50 convs, the 9 edge cases
  for (const ConvCase& c : cases) {
    DYNAMIC_SECTION(c.name) {
      const ops::Conv2dParams p{c.stride_h, c.stride_w, c.pad_h, c.pad_w};
      const Tensor x = integer_valued({c.n, c.c, c.h, c.w}, ++seed);
      const Tensor w = integer_valued({c.k, c.c, c.r, c.s}, ++seed);
      const Tensor b = c.bias ? integer_valued({c.k}, ++seed) : Tensor();
      const Tensor y = ops::conv2d_forward(x, w, b, p);
      const Tensor dy = integer_valued(y.shape(), ++seed);
      const Tensor dx = ops::conv2d_backward_data(dy, w, x.shape(), p);
      const Tensor dw = ops::conv2d_backward_weight(dy, x, w.shape(), p);
      const Tensor gx = x.to(kGpu), gw = w.to(kGpu), gdy = dy.to(kGpu);
      for (const Precision precision : {Precision::FP32, Precision::TF32, Precision::BF16}) {
        INFO("precision " << precision_name(precision));
        ops::Conv2dParams pp = p;
        pp.precision = precision;
        REQUIRE_ALLCLOSE(ops::conv2d_forward(gx, gw, c.bias ? b.to(kGpu) : Tensor(), pp), y, 0, 0);
        REQUIRE_ALLCLOSE(ops::conv2d_backward_data(gdy, gw, x.shape(), pp), dx, 0, 0);
        REQUIRE_ALLCLOSE(ops::conv2d_backward_weight(gdy, gx, w.shape(), pp), dw, 0, 0);
      }
    }
  }
}

TEST_CASE("CUDA conv2d: this card runs tf32 and bf16 on tensor cores (compute capability 8.0 or newer)",
          "[cuda]") {
  REQUIRE_CUDA_DEVICE();
  // The H100/H200 the project measures on are 9.0. A card below 8.0 computes fp32 and says so; this test
  // names the case instead of letting the precision tests below pass on fp32 arithmetic.
  for (const Precision precision : {Precision::TF32, Precision::BF16}) {
    INFO("precision " << precision_name(precision));
    CHECK(ops::conv2d_precision(precision, kGpu) == precision);
  }
}

// The rounding of ties, which integer inputs never meet and random ones rarely do: a 1x1 convolution with a
// weight of 1 returns its input as the kernel rounded it. TF32 ties go away from zero, bf16 ties to even.
TEST_CASE("CUDA conv2d in tf32 and bf16: operands that fall on a tie round as core/precision.h says",
          "[cuda]") {
  REQUIRE_CUDA_DEVICE();
  const float tf32_half = std::ldexp(1.0f, -11), bf16_half = std::ldexp(1.0f, -8);
  const std::vector<float> xs = {1 + tf32_half, -(1 + tf32_half),  1 + 3 * tf32_half,
                                 1 + bf16_half, 1 + 3 * bf16_half, -(1 + 3 * bf16_half)};
  const Tensor x = Tensor::from_data<float>({1, 1, 1, int64_t(xs.size())}, xs);
  const Tensor w = Tensor::ones({1, 1, 1, 1});
  for (const Precision precision : {Precision::TF32, Precision::BF16}) {
    INFO(precision_name(precision));
    ops::Conv2dParams p;
    p.precision = precision;
    const std::vector<float> y =
        ops::conv2d_forward(x.to(kGpu), w.to(kGpu), Tensor(), p).to(Device::cpu()).to_vector<float>();
    REQUIRE(y.size() == xs.size());
    for (size_t i = 0; i < xs.size(); ++i) {
      INFO("x = " << xs[i]);
      CHECK(y[i] == round_to(precision, xs[i]));
    }
  }
  // The expectations themselves, spelled out.
  CHECK(round_to(Precision::TF32, 1 + tf32_half) == 1 + 2 * tf32_half);
  CHECK(round_to(Precision::BF16, 1 + bf16_half) == 1.0f);
  CHECK(round_to(Precision::BF16, 1 + 3 * bf16_half) == 1 + 4 * bf16_half);
}

// launch_fastest_tile may pick any of the three block tiles per shape, so they must give the same bits, in
// every precision (backward-weight excepted: its split-K depends on the tile, and it does not search).
TEST_CASE("CUDA conv2d: every block tile gives the same bits in every precision", "[cuda]") {
  REQUIRE_CUDA_DEVICE();
  const std::vector<ConvCase> all = conv_cases();
  uint64_t seed = 700;
  for (const size_t i : {size_t(0), size_t(12), size_t(29), size_t(33)}) {
    const ConvCase& c = all[i];
    DYNAMIC_SECTION(c.name) {
      const ops::Conv2dParams p{c.stride_h, c.stride_w, c.pad_h, c.pad_w};
      const Tensor x = normal({c.n, c.c, c.h, c.w}, 0, 1, ++seed).to(kGpu);
      const Tensor w = normal({c.k, c.c, c.r, c.s}, 0, 0.1, ++seed).to(kGpu);
      const Tensor dy = normal(ops::conv2d_output_shape(x.shape(), w.shape(), p), 0, 1, ++seed).to(kGpu);
      for (const Precision precision : {Precision::FP32, Precision::TF32, Precision::BF16}) {
        INFO(precision_name(precision));
        ops::Conv2dParams pp = p;
        pp.precision = precision;
        std::vector<Tensor> y, dx;
        for (const char* tile : {"128x128", "64x128", "64x64"}) {
          force_conv2d_tile(tile);
          y.push_back(ops::conv2d_forward(x, w, Tensor(), pp));
          dx.push_back(ops::conv2d_backward_data(dy, w, x.shape(), pp));
        }
        force_conv2d_tile("");
        CHECK(same_bits(y[1], y[0]));
        CHECK(same_bits(y[2], y[0]));
        CHECK(same_bits(dx[1], dx[0]));
        CHECK(same_bits(dx[2], dx[0]));
      }
    }
  }
}

// On random inputs the rounding shows, and it must be exactly the rounding core/precision.h documents
// (round_to: TF32 to nearest with ties away, bf16 to nearest even). So the reference is the float64
// convolution of the rounded operands, and what is left is the float32 accumulation: for one output, a sum
// of n products, at most gamma(n) * sum |products|, gamma(n) = n e / (1 - n e), where e is the error of one
// addition. The tensor cores' accumulation is not documented to round to nearest (measurements of earlier
// cards found truncation after aligning the addends), so e = 2^-22, four float32 roundings, and n = Kd
// plus the split-K partial sums (backward-weight), at most Kd + 1024 here. sum |products| is the same
// convolution of the operands' magnitudes, in float64. A NaN fails; a kernel that rounds differently (or
// not at all) fails the small-Kd cases, where gamma(n) is far below the rounding of one operand.
TEST_CASE(
    "CUDA conv2d in tf32 and bf16: the float64 result of the rounded operands, within float32 "
    "accumulation",
    "[cuda]") {
  REQUIRE_CUDA_DEVICE();
  const std::vector<ConvCase> all = conv_cases();
  std::vector<ConvCase> cases(all.end() - 9, all.end());                 // the edge cases
  for (const size_t i : {size_t(0), size_t(7), size_t(15), size_t(28)})  // and a few ResNet shapes
    cases.push_back(all[i]);
  // float64 copies of t on the CPU: rounded to precision, and their magnitudes.
  auto rounded = [](const Tensor& t, Precision precision) {
    std::vector<double> v;
    for (const float x : t.to_vector<float>())
      v.push_back(double(round_to(precision, x)));
    return Tensor::from_data<double>(t.shape(), v);
  };
  auto magnitude = [](const Tensor& t64) {
    std::vector<double> v = t64.to_vector<double>();
    for (double& x : v)
      x = std::abs(x);
    return Tensor::from_data<double>(t64.shape(), v);
  };
  uint64_t seed = 900;
  for (const ConvCase& c : cases) {
    DYNAMIC_SECTION(c.name) {
      const ops::Conv2dParams p{c.stride_h, c.stride_w, c.pad_h, c.pad_w};
      const Tensor x = normal({c.n, c.c, c.h, c.w}, 0, 1, ++seed);
      const Tensor w = normal({c.k, c.c, c.r, c.s}, 0, 0.1, ++seed);
      const Shape y_shape = ops::conv2d_output_shape(x.shape(), w.shape(), p);
      const Tensor dy = normal(y_shape, 0, 1, ++seed);
      const Tensor gx = x.to(kGpu), gw = w.to(kGpu), gdy = dy.to(kGpu);
      for (const Precision precision : {Precision::TF32, Precision::BF16}) {
        ops::Conv2dParams pp = p;
        pp.precision = precision;
        const Tensor rx = rounded(x, precision), rw = rounded(w, precision), rdy = rounded(dy, precision);
        const Tensor mx = magnitude(rx), mw = magnitude(rw), mdy = magnitude(rdy);
        struct Pass {
          const char* name;
          Tensor got, exact, magnitude;  // got: the GPU's; exact and magnitude: float64 on the CPU
          int64_t terms;                 // Kd
        };
        const Pass passes[] = {
            {"forward", ops::conv2d_forward(gx, gw, Tensor(), pp), ops::conv2d_forward(rx, rw, Tensor(), p),
             ops::conv2d_forward(mx, mw, Tensor(), p), c.c * c.r * c.s},
            {"backward-data", ops::conv2d_backward_data(gdy, gw, x.shape(), pp),
             ops::conv2d_backward_data(rdy, rw, x.shape(), p),
             ops::conv2d_backward_data(mdy, mw, x.shape(), p), c.k * c.r * c.s},
            {"backward-weight", ops::conv2d_backward_weight(gdy, gx, w.shape(), pp),
             ops::conv2d_backward_weight(rdy, rx, w.shape(), p),
             ops::conv2d_backward_weight(mdy, mx, w.shape(), p), y_shape[0] * y_shape[2] * y_shape[3]},
        };
        for (const Pass& pass : passes) {
          const double ne = double(pass.terms + 1024) * std::ldexp(1.0, -22);
          const double gamma = ne / (1 - ne);
          const std::vector<double> got = pass.got.to(Device::cpu()).to(DType::Float64).to_vector<double>();
          const std::vector<double> exact = pass.exact.to_vector<double>();
          const std::vector<double> sum_abs = pass.magnitude.to_vector<double>();
          size_t bad = 0, worst = 0;
          double worst_use = 0;
          for (size_t i = 0; i < got.size(); ++i) {
            const double use = std::abs(got[i] - exact[i]) / (gamma * sum_abs[i] + 1e-300);
            if (!(use <= 1)) ++bad;  // NaN counts as bad
            if (!(use <= worst_use)) worst_use = use, worst = i;
          }
          INFO(precision_name(precision)
               << " " << pass.name << ": element " << worst << " got " << got[worst]
               << ", float64 of the rounded operands " << exact[worst] << ", bound " << gamma * sum_abs[worst]
               << " (" << worst_use << " of it); elements over the bound: " << bad);
          CHECK(bad == 0);
        }
      }
    }
  }
}

TEST_CASE("CUDA batch_norm: train and eval forward, running statistics, backward", "[cuda]") {
  REQUIRE_CUDA_DEVICE();
  uint64_t seed = 300;
  for (const BatchNormCase& c : kBatchNormCases) {
    DYNAMIC_SECTION(c.name) {
      const Shape shape = cuda_test_shape(c.shape);
      const int64_t channels = shape[1];
      const Tensor x = normal(shape, c.mean, 2.0, ++seed);
      const Tensor gamma = normal({channels}, 1, 0.5, ++seed), beta = normal({channels}, 0, 0.5, ++seed);
      const Tensor running_mean = normal({channels}, c.mean, 0.1, ++seed);
      Generator gen(++seed);
      const Tensor running_var = Tensor::uniform({channels}, 2.0, 6.0, gen);
      const Tensor g_running_mean = running_mean.to(kGpu), g_running_var = running_var.to(kGpu);
      const double momentum = 0.1, eps = 1e-5;

      const auto cpu =
          ops::batch_norm_forward(x, gamma, beta, running_mean, running_var, c.train, momentum, eps);
      const auto gpu = ops::batch_norm_forward(x.to(kGpu), gamma.to(kGpu), beta.to(kGpu), g_running_mean,
                                               g_running_var, c.train, momentum, eps);
      REQUIRE_MATCHES_CPU(gpu.y, cpu.y, 1e-4, 1e-5);
      REQUIRE_MATCHES_CPU(gpu.mean, cpu.mean, 1e-5, 1e-6);
      REQUIRE_MATCHES_CPU(gpu.invstd, cpu.invstd, 1e-4, 0);
      REQUIRE_MATCHES_CPU(g_running_mean, running_mean, 1e-5, 1e-6);
      REQUIRE_MATCHES_CPU(g_running_var, running_var, 1e-4, 0);

      const Tensor dy = normal(shape, 0, 1, ++seed);
      for (const bool need_dx : {true, false}) {
        INFO("need_dx " << need_dx);
        const auto back = ops::batch_norm_backward(dy, x, gamma, cpu.mean, cpu.invstd, c.train, need_dx);
        const auto gback = ops::batch_norm_backward(dy.to(kGpu), x.to(kGpu), gamma.to(kGpu), gpu.mean,
                                                    gpu.invstd, c.train, need_dx);
        REQUIRE_MATCHES_CPU(gback.dbeta, back.dbeta, 1e-4, 1e-5);
        REQUIRE_MATCHES_CPU(gback.dgamma, back.dgamma, 1e-4, 1e-5);
        REQUIRE(gback.dx.defined() == need_dx);
        // dx = gamma invstd (dy - dbeta / M - xhat dgamma / M) cancels: with M = 2 it is exactly 0 in exact
        // arithmetic. So its error is measured against the size of the terms, gamma invstd dy.
        const double term_scale = max_abs(gamma) * max_abs(cpu.invstd) * max_abs(dy);
        if (need_dx) REQUIRE_ALLCLOSE(gback.dx, back.dx, 1e-3, 1e-5 * term_scale);
      }
      // gamma and beta frozen: with running statistics the sums are skipped, and dx is the same.
      const auto frozen =
          ops::batch_norm_backward(dy.to(kGpu), x.to(kGpu), gamma.to(kGpu), gpu.mean, gpu.invstd, c.train,
                                   /*need_dx=*/true, /*need_affine=*/false);
      const auto full = ops::batch_norm_backward(dy.to(kGpu), x.to(kGpu), gamma.to(kGpu), gpu.mean,
                                                 gpu.invstd, c.train, /*need_dx=*/true);
      REQUIRE(frozen.dgamma.defined() == c.train);
      REQUIRE_ALLCLOSE(frozen.dx, full.dx, 0, 0);
    }
  }
}

// The fused twin runs batch_norm's kernels with the ReLU applied in the normalize pass and its mask read in
// the backward: on the same device it must give the bits of batch_norm then relu (and, backward, of
// batch_norm_backward of relu_backward), in train and eval mode, with and without dx and the affine sums.
TEST_CASE("CUDA batch_norm_relu: bit for bit batch_norm then relu, forward and backward", "[cuda]") {
  REQUIRE_CUDA_DEVICE();
  uint64_t seed = 500;
  for (const BatchNormCase& c : kBatchNormCases) {
    DYNAMIC_SECTION(c.name) {
      const Shape shape = cuda_test_shape(c.shape);
      const int64_t channels = shape[1];
      const Tensor x = normal(shape, c.mean, 2.0, ++seed).to(kGpu), dy = normal(shape, 0, 1, ++seed).to(kGpu);
      const Tensor gamma = normal({channels}, 1, 0.5, ++seed).to(kGpu);
      const Tensor beta = normal({channels}, 0, 0.5, ++seed).to(kGpu);
      Generator gen(++seed);
      const Tensor rm = normal({channels}, c.mean, 0.1, ++seed),
                   rv = Tensor::uniform({channels}, 2.0, 6.0, gen);
      const Tensor rm_fused = rm.to(kGpu), rv_fused = rv.to(kGpu), rm_plain = rm.to(kGpu),
                   rv_plain = rv.to(kGpu);
      const auto fused = ops::batch_norm_relu_forward(x, gamma, beta, rm_fused, rv_fused, c.train, 0.1, 1e-5);
      const auto plain = ops::batch_norm_forward(x, gamma, beta, rm_plain, rv_plain, c.train, 0.1, 1e-5);
      REQUIRE(same_bits(fused.y, ops::relu_forward(plain.y)));
      REQUIRE(same_bits(fused.mean, plain.mean));
      REQUIRE(same_bits(fused.invstd, plain.invstd));
      REQUIRE(same_bits(rm_fused, rm_plain));
      REQUIRE(same_bits(rv_fused, rv_plain));
      for (const bool need_dx : {true, false}) {
        for (const bool need_affine : {true, false}) {
          INFO("need_dx " << need_dx << ", need_affine " << need_affine);
          const auto f = ops::batch_norm_relu_backward(dy, fused.y, x, gamma, fused.mean, fused.invstd,
                                                       c.train, need_dx, need_affine);
          const auto p = ops::batch_norm_backward(ops::relu_backward(dy, fused.y), x, gamma, fused.mean,
                                                  fused.invstd, c.train, need_dx, need_affine);
          REQUIRE(f.dx.defined() == p.dx.defined());
          REQUIRE(f.dgamma.defined() == p.dgamma.defined());
          if (f.dx.defined()) REQUIRE(same_bits(f.dx, p.dx));
          if (f.dgamma.defined()) {
            REQUIRE(same_bits(f.dgamma, p.dgamma));
            REQUIRE(same_bits(f.dbeta, p.dbeta));
          }
        }
      }
    }
  }
}

TEST_CASE("CUDA max_pool2d (ties and argmax) and global_avg_pool2d, exactly", "[cuda]") {
  REQUIRE_CUDA_DEVICE();
  struct MaxPoolCase {
    const char* name;
    Shape x;
    ops::Pool2dParams p;
  };
  const MaxPoolCase cases[] = {
      {"ResNet stem 3x3/2 pad 1", {2, 64, 112, 112}, {3, 3, 2, 2, 1, 1}},
      {"3x3/2 pad 1 on odd 7x9", {1, 3, 7, 9}, {3, 3, 2, 2, 1, 1}},
      {"2x2/2 no padding", {2, 4, 8, 8}, {2, 2, 2, 2, 0, 0}},
      {"3x3/1 pad 1 (every input in 9 windows)", {2, 3, 5, 6}, {3, 3, 1, 1, 1, 1}},
      {"asymmetric 3x2 stride (1,2)", {1, 2, 6, 7}, {3, 2, 1, 2, 1, 0}},
  };
  uint64_t seed = 500;
  for (const MaxPoolCase& c : cases) {
    DYNAMIC_SECTION(c.name) {
      const Shape shape = cuda_test_shape(c.x);
      const Tensor x = integer_valued(shape, ++seed);  // 17 values: many ties, which go to the first
      const auto cpu = ops::max_pool2d_forward(x, c.p);
      const auto gpu = ops::max_pool2d_forward(x.to(kGpu), c.p);
      REQUIRE_ALLCLOSE(gpu.y, cpu.y, 0, 0);
      REQUIRE(gpu.argmax.to(Device::cpu()).to_vector<int32_t>() == cpu.argmax.to_vector<int32_t>());
      const Tensor dy = integer_valued(cpu.y.shape(), ++seed);
      REQUIRE_ALLCLOSE(ops::max_pool2d_backward(dy.to(kGpu), gpu.argmax, shape),
                       ops::max_pool2d_backward(dy, cpu.argmax, shape), 0, 0);
    }
  }

  for (const Shape& shape :
       {Shape{2, 512, 7, 7}, Shape{2, 2048, 7, 7}, Shape{3, 5, 1, 1}, Shape{1, 3, 5, 3}}) {
    INFO("global average pool of " << shape_str(shape));
    const Tensor x = integer_valued(shape, ++seed);
    REQUIRE_MATCHES_CPU(ops::global_avg_pool2d_forward(x.to(kGpu)), ops::global_avg_pool2d_forward(x), 1e-6,
                        0);
    const Tensor dy = integer_valued({shape[0], shape[1], 1, 1}, ++seed);
    REQUIRE_MATCHES_CPU(ops::global_avg_pool2d_backward(dy.to(kGpu), shape),
                        ops::global_avg_pool2d_backward(dy, shape), 1e-6, 0);
  }
}

TEST_CASE("CUDA linear (cuBLAS): forward and both backwards, exactly", "[cuda]") {
  REQUIRE_CUDA_DEVICE();
  struct LinearCase {
    int64_t n, in, out;
    bool bias;
  };
  uint64_t seed = 700;
  for (const LinearCase& c : {LinearCase{64, 512, 37, true}, LinearCase{2, 2048, 1000, true},
                              LinearCase{3, 5, 1, false}, LinearCase{1, 1, 1, true}}) {
    INFO("linear " << c.n << "x" << c.in << " -> " << c.out);
    const Tensor x = integer_valued({c.n, c.in}, ++seed), w = integer_valued({c.out, c.in}, ++seed);
    const Tensor b = c.bias ? integer_valued({c.out}, ++seed) : Tensor();
    const Tensor dy = integer_valued({c.n, c.out}, ++seed);
    REQUIRE_ALLCLOSE(ops::linear_forward(x.to(kGpu), w.to(kGpu), c.bias ? b.to(kGpu) : Tensor()),
                     ops::linear_forward(x, w, b), 0, 0);
    REQUIRE_ALLCLOSE(ops::linear_backward_data(dy.to(kGpu), w.to(kGpu)), ops::linear_backward_data(dy, w), 0,
                     0);
    REQUIRE_ALLCLOSE(ops::linear_backward_weight(dy.to(kGpu), x.to(kGpu)), ops::linear_backward_weight(dy, x),
                     0, 0);
  }
}

TEST_CASE("CUDA cross_entropy (class weights) and bce_with_logits", "[cuda]") {
  REQUIRE_CUDA_DEVICE();
  struct XentCase {
    int64_t n, classes;
    bool weighted;
  };
  uint64_t seed = 900;
  for (const XentCase& c : {XentCase{64, 37, false}, XentCase{64, 37, true}, XentCase{3, 1000, true},
                            XentCase{1, 2, false}, XentCase{300, 5, true}}) {
    INFO("softmax cross-entropy " << c.n << "x" << c.classes << (c.weighted ? " weighted" : ""));
    const Tensor logits = normal({c.n, c.classes}, 0, 4, ++seed);
    Generator gen(++seed);
    std::vector<int64_t> y(size_t(c.n));
    for (int64_t& label : y)
      label = gen.next_int(0, c.classes);
    const Tensor labels = Tensor::from_data<int64_t>({c.n}, y);
    const Tensor weights = c.weighted ? Tensor::uniform({c.classes}, 0.2, 3.0, gen) : Tensor();
    const Tensor gweights = c.weighted ? weights.to(kGpu) : Tensor();
    const auto cpu = ops::cross_entropy_forward(logits, labels, weights);
    const auto gpu = ops::cross_entropy_forward(logits.to(kGpu), labels.to(kGpu), gweights);
    REQUIRE_MATCHES_CPU(gpu.loss, cpu.loss, 1e-5, 0);
    REQUIRE_MATCHES_CPU(gpu.probs, cpu.probs, 1e-5, 1e-7);
    const Tensor dloss = Tensor::full({}, 0.75);
    REQUIRE_MATCHES_CPU(ops::cross_entropy_backward(dloss.to(kGpu), gpu.probs, labels.to(kGpu), gweights),
                        ops::cross_entropy_backward(dloss, cpu.probs, labels, weights), 1e-5, 1e-6);
  }
  for (const Shape& shape : {Shape{64, 1}, Shape{5}, Shape{1000, 3}}) {
    INFO("BCE with logits " << shape_str(shape));
    const Tensor logits = normal(shape, 0, 5, ++seed);
    Generator gen(++seed);
    std::vector<float> t(size_t(shape_numel(shape)));
    for (float& v : t)
      v = float(gen.next_int(0, 2));
    const Tensor targets = Tensor::from_data<float>(shape, t);
    REQUIRE_MATCHES_CPU(ops::bce_with_logits_forward(logits.to(kGpu), targets.to(kGpu)),
                        ops::bce_with_logits_forward(logits, targets), 1e-5, 0);
    const Tensor dloss = Tensor::full({}, 1.5);
    REQUIRE_MATCHES_CPU(ops::bce_with_logits_backward(dloss.to(kGpu), logits.to(kGpu), targets.to(kGpu)),
                        ops::bce_with_logits_backward(dloss, logits, targets), 1e-5, 1e-7);
  }
}

TEST_CASE("CUDA optimizer updates: SGD (momentum, Nesterov, weight decay), Adam, AdamW over 4 steps",
          "[cuda]") {
  REQUIRE_CUDA_DEVICE();
  const Shape shape{3, 5, 7, 11};
  uint64_t seed = 1100;
  const Tensor param0 = normal(shape, 0, 1, ++seed);
  std::vector<Tensor> grads;
  for (int step = 0; step < 4; ++step)
    grads.push_back(normal(shape, 0, 0.1, ++seed));

  struct SgdCase {
    const char* name;
    ops::SgdHyper h;
  };
  for (const SgdCase& c :
       {SgdCase{"plain", {0.1, 0, 0, 0, false}}, SgdCase{"momentum", {0.1, 0.9, 0, 0, false}},
        SgdCase{"momentum dampening wd", {0.05, 0.9, 0.1, 1e-2, false}},
        SgdCase{"nesterov wd", {0.01, 0.9, 0, 5e-4, true}}}) {
    INFO("SGD " << c.name);
    const Tensor p = param0.clone(), gp = param0.to(kGpu);
    const Tensor buf = c.h.momentum > 0 ? Tensor::zeros(shape) : Tensor();
    const Tensor gbuf = c.h.momentum > 0 ? Tensor::zeros(shape, DType::Float32, kGpu) : Tensor();
    for (size_t k = 0; k < grads.size(); ++k) {
      ops::sgd_update_(p, grads[k], buf, c.h, k == 0);
      ops::sgd_update_(gp, grads[k].to(kGpu), gbuf, c.h, k == 0);
    }
    REQUIRE_MATCHES_CPU(gp, p, 1e-6, 1e-7);
    if (buf.defined()) REQUIRE_MATCHES_CPU(gbuf, buf, 1e-6, 1e-7);
  }
  for (const bool decoupled : {false, true}) {
    INFO((decoupled ? "AdamW" : "Adam"));
    const ops::AdamHyper h{1e-3, 0.9, 0.999, 1e-8, 1e-2, decoupled};
    const Tensor p = param0.clone(), gp = param0.to(kGpu);
    const Tensor m = Tensor::zeros(shape), v = Tensor::zeros(shape);
    const Tensor gm = Tensor::zeros(shape, DType::Float32, kGpu),
                 gv = Tensor::zeros(shape, DType::Float32, kGpu);
    for (size_t k = 0; k < grads.size(); ++k) {
      ops::adam_update_(p, grads[k], m, v, h, int64_t(k) + 1);
      ops::adam_update_(gp, grads[k].to(kGpu), gm, gv, h, int64_t(k) + 1);
    }
    REQUIRE_MATCHES_CPU(gp, p, 1e-6, 1e-7);
    REQUIRE_MATCHES_CPU(gm, m, 1e-5, 1e-7);
    REQUIRE_MATCHES_CPU(gv, v, 1e-5, 1e-7);
  }
}
