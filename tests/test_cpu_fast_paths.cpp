// The CPU backend's fast paths against their plain definitions (docs/cpu-backend.md):
//   - conv2d's im2col + GEMM passes (grouped images, the 1x1 direct path, GEMMs cut into tiles or into pieces
//     of their sum) against the direct seven-loop definitions (cpu::reference_conv2d_*), in float64 and
//     float32, within the textbook bound for a sum of L products computed in another order:
//     |got - exact| <= (L + 3) u sum|terms|  (u: the unit roundoff; sum|terms| from the same definition run
//     on |inputs|);
//   - parallel_gemm (tiles, pieces of K) against a plain triple loop, within the same bound;
//   - every kernel gives the same bits with 1, 2 and 3 threads (the pieces depend on the shape only);
//   - the fused batch_norm_relu against batch_norm then relu, bit for bit;
//   - the pool itself: every task runs once, nested loops run inline, a task's exception reaches the caller.
#include <atomic>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "core/rng.h"
#include "kernels/cpu/blas.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/cpu/parallel.h"
#include "kernels/ops.h"
#include "nn/functional.h"
#include "tests/support/catch.h"

using namespace thaw;

namespace {

Tensor random_tensor(const Shape& shape, uint64_t seed, DType dtype) {
  Generator gen(seed);
  return Tensor::uniform(shape, -1, 1, gen, DType::Float64).to(dtype);
}

Tensor abs_of(const Tensor& t) {
  std::vector<double> v = t.to(DType::Float64).to_vector<double>();
  for (double& x : v)
    x = std::fabs(x);
  return Tensor::from_data<double>(t.shape(), v).to(t.dtype());
}

double unit_roundoff(DType dtype) {
  return dtype == DType::Float64 ? std::ldexp(1.0, -53) : std::ldexp(1.0, -24);
}

// |got - ref| <= (terms + 3) u magnitude, element by element.
void require_within_sum_bound(const Tensor& got, const Tensor& ref, const Tensor& magnitude, int64_t terms,
                              const char* what) {
  const std::vector<double> g = got.to(DType::Float64).to_vector<double>();
  const std::vector<double> r = ref.to(DType::Float64).to_vector<double>();
  const std::vector<double> m = magnitude.to(DType::Float64).to_vector<double>();
  const double u = unit_roundoff(got.dtype());
  REQUIRE(g.size() == r.size());
  size_t worst = 0;
  double worst_ratio = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    const double allowed = double(terms + 3) * u * m[i];
    const double ratio = std::fabs(g[i] - r[i]) / (allowed > 0 ? allowed : 1e-300);
    if (ratio > worst_ratio) worst_ratio = ratio, worst = i;
  }
  INFO(what << ": worst element " << worst << " got " << g[worst] << " reference " << r[worst] << " uses "
            << worst_ratio << " of its bound (" << terms << " terms)");
  REQUIRE(worst_ratio <= 1.0);
}

struct ConvCase {
  Shape x, w;
  ops::Conv2dParams p;
  const char* what;
};

const std::vector<ConvCase> kConvCases = {
    {{2, 3, 9, 7}, {4, 3, 3, 3}, {1, 1, 1, 1}, "3x3 pad 1, odd sizes, images grouped"},
    {{3, 8, 5, 5}, {16, 8, 3, 3}, {2, 2, 1, 1}, "3x3 stride 2"},
    {{2, 3, 11, 10}, {5, 3, 7, 7}, {2, 2, 3, 3}, "7x7 stride 2 pad 3 (the stem)"},
    {{4, 6, 6, 6}, {8, 6, 1, 1}, {1, 1, 0, 0}, "1x1, images grouped"},
    {{3, 6, 7, 7}, {8, 6, 1, 1}, {2, 2, 0, 0}, "1x1 stride 2 (downsample)"},
    {{2, 4, 70, 66}, {8, 4, 1, 1}, {1, 1, 0, 0}, "1x1 over one large image at a time (the direct path)"},
    {{2, 5, 70, 70}, {6, 5, 3, 3}, {1, 1, 1, 1}, "3x3 over large images: forward in tiles of output rows"},
    {{2, 3, 64, 50}, {5, 3, 7, 7}, {2, 2, 3, 3}, "7x7 stride 2 over large images: row tiles, not flat shift"},
    {{1, 2, 30, 40},
     {3, 2, 3, 5},
     {1, 1, 2, 2},
     "row tiles of a flat shift with padded rows, last tile short"},
    {{2, 3, 8, 9}, {4, 3, 2, 3}, {2, 1, 1, 0}, "asymmetric kernel, stride and padding"},
    {{2, 3, 6, 7}, {4, 3, 2, 3}, {1, 1, 0, 1}, "stride 1, as wide as the input, fewer rows (flat shift)"},
    {{1, 2, 5, 6}, {3, 2, 3, 1}, {1, 1, 2, 0}, "stride 1, padded rows beyond the kernel (flat shift)"},
    {{2, 4, 1, 1},
     {3, 4, 3, 3},
     {1, 1, 1, 1},
     "3x3 pad 1 on a 1x1 input (flat shift, all but the centre pads)"},
    {{3, 2, 2, 3}, {2, 2, 3, 3}, {1, 1, 1, 1}, "3x3 pad 1 on a 2x3 input"},
    {{32, 16, 16, 16}, {32, 16, 3, 3}, {1, 1, 1, 1}, "GEMMs cut into tiles and dW into pieces of its sum"},
    {{16, 64, 4, 4}, {128, 64, 3, 3}, {2, 2, 1, 1}, "deep layer: few columns, long rows"},
};

}  // namespace

TEST_CASE("conv2d: im2col + GEMM passes match the direct definitions within the rounding bound") {
  for (const DType dtype : {DType::Float64, DType::Float32}) {
    for (const ConvCase& c : kConvCases) {
      INFO(c.what << (dtype == DType::Float64 ? " (float64)" : " (float32)"));
      const Tensor x = random_tensor(c.x, 1, dtype), w = random_tensor(c.w, 2, dtype);
      const Tensor b = random_tensor({c.w[0]}, 3, dtype);
      const Shape y_shape = ops::conv2d_output_shape(c.x, c.w, c.p);
      const Tensor dy = random_tensor(y_shape, 4, dtype);
      auto empty = [&](const Shape& s) { return Tensor::empty(s, dtype); };

      Tensor y = empty(y_shape), y_ref = empty(y_shape), y_mag = empty(y_shape);
      cpu::conv2d_forward(x, w, b, c.p, y);
      cpu::reference_conv2d_forward(x, w, b, c.p, y_ref);
      cpu::reference_conv2d_forward(abs_of(x), abs_of(w), abs_of(b), c.p, y_mag);
      require_within_sum_bound(y, y_ref, y_mag, c.x[1] * c.w[2] * c.w[3] + 1, "forward");

      Tensor dx = empty(c.x), dx_ref = empty(c.x), dx_mag = empty(c.x);
      cpu::conv2d_backward_data(dy, w, c.p, dx);
      cpu::reference_conv2d_backward_data(dy, w, c.p, dx_ref);
      cpu::reference_conv2d_backward_data(abs_of(dy), abs_of(w), c.p, dx_mag);
      require_within_sum_bound(dx, dx_ref, dx_mag, c.w[0] * c.w[2] * c.w[3], "backward-data");

      Tensor dw = empty(c.w), dw_ref = empty(c.w), dw_mag = empty(c.w);
      cpu::conv2d_backward_weight(dy, x, c.p, dw);
      cpu::reference_conv2d_backward_weight(dy, x, c.p, dw_ref);
      cpu::reference_conv2d_backward_weight(abs_of(dy), abs_of(x), c.p, dw_mag);
      require_within_sum_bound(dw, dw_ref, dw_mag, y_shape[0] * y_shape[2] * y_shape[3], "backward-weight");
    }
  }
}

TEST_CASE("parallel_gemm: tiles and pieces of K match a plain triple loop within the rounding bound") {
  const int before = ops::cpu_threads();
  ops::set_cpu_threads(3);  // tiles follow the thread count: make sure there are some
  struct Case {
    int64_t m, n, k;
    const char* what;
  };
  const Case cases[] = {{64, 576, 4096, "long K, small C: pieces of K"},
                        {512, 128, 1152, "tall C: blocks of rows"},
                        {64, 4096, 576, "wide C: blocks of columns"},
                        {300, 700, 200, "blocks of both, sizes not multiples of the alignment"},
                        {7, 5, 3, "tiny: one call"}};
  for (const Case& c : cases) {
    for (const bool ta : {false, true}) {
      for (const bool tb : {false, true}) {
        for (const double beta : {0.0, 0.5}) {
          INFO(c.what << " trans_a " << ta << " trans_b " << tb << " beta " << beta);
          const cpu::GemmPlan plan = cpu::plan_gemm(c.m, c.n, c.k, ops::cpu_threads());
          INFO("plan: " << plan.row_blocks << " x " << plan.col_blocks << " tiles, " << plan.k_pieces
                        << " pieces of K");
          const Tensor a = random_tensor(ta ? Shape{c.k, c.m} : Shape{c.m, c.k}, 5, DType::Float64);
          const Tensor b = random_tensor(tb ? Shape{c.n, c.k} : Shape{c.k, c.n}, 6, DType::Float64);
          const Tensor c0 = random_tensor({c.m, c.n}, 7, DType::Float64);
          const std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>();
          const std::vector<double> cv = c0.to_vector<double>();
          std::vector<double> got = cv, ref(cv.size()), mag(cv.size());
          cpu::parallel_gemm(ta, tb, c.m, c.n, c.k, 1.0, av.data(), ta ? c.m : c.k, bv.data(), tb ? c.k : c.n,
                             beta, got.data(), c.n);
          for (int64_t i = 0; i < c.m; ++i)
            for (int64_t j = 0; j < c.n; ++j) {
              long double total = beta * cv[size_t(i * c.n + j)],
                          size = std::fabs(beta * cv[size_t(i * c.n + j)]);
              for (int64_t l = 0; l < c.k; ++l) {
                const double x = ta ? av[size_t(l * c.m + i)] : av[size_t(i * c.k + l)];
                const double y = tb ? bv[size_t(j * c.k + l)] : bv[size_t(l * c.n + j)];
                total += (long double)x * y;
                size += std::fabs((long double)x * y);
              }
              ref[size_t(i * c.n + j)] = double(total);
              mag[size_t(i * c.n + j)] = double(size);
            }
          auto as_tensor = [&](const std::vector<double>& v) {
            return Tensor::from_data<double>({c.m, c.n}, v);
          };
          require_within_sum_bound(as_tensor(got), as_tensor(ref), as_tensor(mag), c.k + 1, "parallel_gemm");
        }
      }
    }
  }
  ops::set_cpu_threads(before);
}

TEST_CASE("CPU kernels give the same bits with 1, 2 and 3 threads") {
  const int before = ops::cpu_threads();
  auto run_all = [] {
    std::vector<std::vector<float>> out;
    auto keep = [&](const Tensor& t) { out.push_back(t.to_vector<float>()); };
    std::vector<ConvCase> cases = kConvCases;
    cases.push_back({{32, 256, 4, 4}, {256, 256, 3, 3}, {1, 1, 1, 1}, "deep layer, GEMMs in tiles"});
    for (const ConvCase& c : cases) {
      const Tensor x = random_tensor(c.x, 11, DType::Float32), w = random_tensor(c.w, 12, DType::Float32);
      const Tensor dy = random_tensor(ops::conv2d_output_shape(c.x, c.w, c.p), 13, DType::Float32);
      keep(ops::conv2d_forward(x, w, Tensor(), c.p));
      keep(ops::conv2d_backward_data(dy, w, c.x, c.p));
      keep(ops::conv2d_backward_weight(dy, x, c.w, c.p));
    }
    const Tensor x = random_tensor({8, 16, 12, 12}, 14, DType::Float32);
    const Tensor g = random_tensor({16}, 15, DType::Float32), b = random_tensor({16}, 16, DType::Float32);
    const ops::BatchNormForward f =
        ops::batch_norm_relu_forward(x, g, b, Tensor(), Tensor(), true, 0.1, 1e-5);
    keep(f.y), keep(f.mean), keep(f.invstd);
    const ops::BatchNormBackward d = ops::batch_norm_relu_backward(
        random_tensor(x.shape(), 17, DType::Float32), f.y, x, g, f.mean, f.invstd, true, true);
    keep(d.dx), keep(d.dgamma), keep(d.dbeta);
    keep(ops::sum(random_tensor({1000003}, 18, DType::Float32)));
    keep(ops::sum_to_channels(x));
    keep(ops::linear_forward(random_tensor({64, 512}, 19, DType::Float32),
                             random_tensor({1000, 512}, 20, DType::Float32), Tensor()));
    return out;
  };
  ops::set_cpu_threads(1);
  const auto one = run_all();
  for (const int threads : {2, 3}) {
    INFO(threads << " threads");
    ops::set_cpu_threads(threads);
    const auto many = run_all();
    REQUIRE(many.size() == one.size());
    for (size_t i = 0; i < one.size(); ++i) {
      INFO("result " << i);
      REQUIRE(many[i] == one[i]);
    }
  }
  ops::set_cpu_threads(before);
}

TEST_CASE("batch_norm_relu is batch_norm then relu bit for bit, and frozen gamma and beta skip their sums") {
  for (const DType dtype : {DType::Float32, DType::Float64}) {
    for (const bool train : {true, false}) {
      for (const Shape& shape : {Shape{4, 5, 3, 7}, Shape{6, 5}, Shape{32, 8, 2, 2}}) {
        INFO((dtype == DType::Float32 ? "float32" : "float64")
             << " train " << train << " x " << shape_str(shape));
        const int64_t c = shape[1];
        const Tensor x = random_tensor(shape, 21, dtype), dy = random_tensor(shape, 22, dtype);
        const Tensor gamma = random_tensor({c}, 23, dtype), beta = random_tensor({c}, 24, dtype);
        const Tensor rm0 = random_tensor({c}, 25, dtype);
        const Tensor rv0 = abs_of(random_tensor({c}, 26, dtype));
        Tensor rm[2] = {rm0.clone(), rm0.clone()}, rv[2] = {rv0.clone(), rv0.clone()};
        const ops::BatchNormForward sep =
            ops::batch_norm_forward(x, gamma, beta, rm[0], rv[0], train, 0.1, 1e-5);
        const Tensor y = ops::relu_forward(sep.y);
        const ops::BatchNormForward fused =
            ops::batch_norm_relu_forward(x, gamma, beta, rm[1], rv[1], train, 0.1, 1e-5);
        auto same = [&](const Tensor& a, const Tensor& b) {
          if (dtype == DType::Float32) return a.to_vector<float>() == b.to_vector<float>();
          return a.to_vector<double>() == b.to_vector<double>();
        };
        REQUIRE(same(fused.y, y));
        REQUIRE(same(fused.mean, sep.mean));
        REQUIRE(same(fused.invstd, sep.invstd));
        REQUIRE(same(rm[1], rm[0]));
        REQUIRE(same(rv[1], rv[0]));
        for (const bool need_dx : {true, false}) {
          const ops::BatchNormBackward b1 = ops::batch_norm_backward(ops::relu_backward(dy, y), x, gamma,
                                                                     sep.mean, sep.invstd, train, need_dx);
          const ops::BatchNormBackward b2 =
              ops::batch_norm_relu_backward(dy, fused.y, x, gamma, fused.mean, fused.invstd, train, need_dx);
          REQUIRE(b2.dx.defined() == need_dx);
          if (need_dx) REQUIRE(same(b2.dx, b1.dx));
          REQUIRE(same(b2.dgamma, b1.dgamma));
          REQUIRE(same(b2.dbeta, b1.dbeta));
        }
        // gamma and beta frozen: the same dx; with running statistics the sums are skipped (undefined).
        const ops::BatchNormBackward f1 = ops::batch_norm_backward(
            ops::relu_backward(dy, y), x, gamma, sep.mean, sep.invstd, train, true, /*need_affine=*/false);
        const ops::BatchNormBackward f2 = ops::batch_norm_relu_backward(dy, fused.y, x, gamma, fused.mean,
                                                                        fused.invstd, train, true, false);
        const ops::BatchNormBackward full =
            ops::batch_norm_backward(ops::relu_backward(dy, y), x, gamma, sep.mean, sep.invstd, train, true);
        REQUIRE(f1.dgamma.defined() == train);
        REQUIRE(f2.dbeta.defined() == train);
        REQUIRE(same(f1.dx, full.dx));
        REQUIRE(same(f2.dx, full.dx));
      }
    }
  }
}

TEST_CASE("add_relu is add then relu, bit for bit, with the same gradients for both inputs") {
  namespace F = nn::functional;
  for (const DType dtype : {DType::Float32, DType::Float64}) {
    for (const Shape& shape : {Shape{4, 5, 3, 7}, Shape{1}, Shape{3, 64, 9, 9}}) {
      INFO((dtype == DType::Float32 ? "float32" : "float64") << " " << shape_str(shape));
      const Tensor a = random_tensor(shape, 31, dtype), b = random_tensor(shape, 32, dtype);
      const auto poke = [&](const Tensor& t, int64_t i, double v) {
        if (dtype == DType::Float32)
          t.data<float>()[i] = float(v);
        else
          t.data<double>()[i] = v;
      };
      if (a.numel() > 2) {  // NaN passes through, as in relu; a sum of exactly 0 is masked, as in relu
        poke(a, 0, std::nan(""));
        poke(a, 1, 0.5), poke(b, 1, -0.5);
      }
      const Tensor dy = random_tensor(shape, 33, dtype);
      auto same = [&](const Tensor& x, const Tensor& y) {
        if (dtype == DType::Float32) {
          const auto u = x.to_vector<float>(), v = y.to_vector<float>();
          return std::equal(u.begin(), u.end(), v.begin(), v.end(),
                            [](float p, float q) { return p == q || (std::isnan(p) && std::isnan(q)); });
        }
        const auto u = x.to_vector<double>(), v = y.to_vector<double>();
        return std::equal(u.begin(), u.end(), v.begin(), v.end(),
                          [](double p, double q) { return p == q || (std::isnan(p) && std::isnan(q)); });
      };
      REQUIRE(same(ops::add_relu_forward(a, b), ops::relu_forward(ops::add(a, b))));

      // Through autograd: the fused node hands relu's masked gradient to a and to b.
      Tensor grads[2][2];
      for (int fused = 0; fused < 2; ++fused) {
        Tensor ga = a.detach(), gb = b.detach();
        ga.set_requires_grad(true), gb.set_requires_grad(true);
        const Tensor y = fused ? F::add_relu(ga, gb) : F::relu(F::add(ga, gb));
        F::sum(F::mul(y, dy)).backward();
        grads[fused][0] = ga.grad(), grads[fused][1] = gb.grad();
      }
      REQUIRE(same(grads[1][0], grads[0][0]));
      REQUIRE(same(grads[1][1], grads[0][1]));
    }
  }
}

TEST_CASE("max_pool2d: the row-at-a-time scan picks the window's first maximum and propagates NaN") {
  struct Case {
    Shape x;
    ops::Pool2dParams p;
  };
  const Case cases[] = {{{2, 3, 9, 8}, {3, 3, 2, 2, 1, 1}},
                        {{1, 2, 7, 7}, {2, 2, 2, 2, 0, 0}},
                        {{1, 2, 6, 5}, {3, 3, 1, 1, 1, 1}},
                        {{1, 1, 5, 9}, {3, 2, 2, 3, 1, 1}},
                        {{2, 2, 1, 1}, {3, 3, 2, 2, 1, 1}}};
  for (const DType dtype : {DType::Float32, DType::Float64}) {
    for (const Case& c : cases) {
      INFO("x " << shape_str(c.x) << " kernel " << c.p.kernel_h << "x" << c.p.kernel_w);
      // Few distinct values (ties everywhere), -inf, and NaN in some windows.
      Generator gen(31);
      std::vector<double> v(size_t(c.x[0] * c.x[1] * c.x[2] * c.x[3]));
      for (double& e : v) {
        const int64_t r = gen.next_int(0, 20);
        e = r == 0 ? std::nan("") : r == 1 ? -INFINITY : double(r % 4);
      }
      const Tensor x = Tensor::from_data<double>(c.x, v).to(dtype);
      const ops::MaxPoolForward got = ops::max_pool2d_forward(x, c.p);
      Tensor y = Tensor::empty(got.y.shape(), dtype), index = Tensor::empty(got.y.shape(), DType::Int32);
      cpu::reference_max_pool2d_forward(x, c.p, y, index);
      REQUIRE(got.argmax.to_vector<int32_t>() == index.to_vector<int32_t>());
      const std::vector<double> a = got.y.to(DType::Float64).to_vector<double>();
      const std::vector<double> b = y.to(DType::Float64).to_vector<double>();
      for (size_t i = 0; i < a.size(); ++i)
        REQUIRE(((std::isnan(a[i]) && std::isnan(b[i])) || a[i] == b[i]));
    }
  }
}

TEST_CASE("the pool: every task once, nested loops inline, a task's exception reaches the caller") {
  const int before = ops::cpu_threads();
  ops::set_cpu_threads(3);
  std::vector<std::atomic<int>> runs(1000);
  cpu::parallel_for(1000, [&](int64_t i) { runs[size_t(i)].fetch_add(1); });
  for (const auto& r : runs)
    REQUIRE(r.load() == 1);

  // (No REQUIRE inside a task: Catch2's assertions are not thread-safe.)
  std::atomic<int> in_region{0}, total{0};
  cpu::parallel_for(8, [&](int64_t) {
    if (cpu::in_parallel_region()) in_region.fetch_add(1);
    cpu::parallel_for(4, [&](int64_t) { total.fetch_add(1); });
  });
  REQUIRE(total.load() == 32);
  REQUIRE(in_region.load() == 8);
  REQUIRE_FALSE(cpu::in_parallel_region());

  REQUIRE_THROWS_WITH(cpu::parallel_for(100,
                                        [&](int64_t i) {
                                          if (i == 37) throw std::runtime_error("task 37 failed");
                                        }),
                      "task 37 failed");
  std::atomic<int64_t> sum{0};
  cpu::parallel_for(100, [&](int64_t i) { sum.fetch_add(i); });  // still usable after an exception
  REQUIRE(sum.load() == 4950);
  ops::set_cpu_threads(before);
}
