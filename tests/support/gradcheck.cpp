#include "tests/support/gradcheck.h"

#include <algorithm>
#include <cmath>

#include "core/autograd.h"
#include "core/error.h"
#include "core/rng.h"
#include "kernels/ops.h"

namespace thaw::test {

Tensor random_double(const Shape& shape, uint64_t seed, double low, double high, bool requires_grad) {
  Generator gen(seed);
  Tensor t = Tensor::uniform(shape, low, high, gen, DType::Float64);
  t.set_requires_grad(requires_grad);
  return t;
}

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          std::vector<Tensor> inputs, const GradcheckOptions& options) {
  GradcheckResult result;
  for (const Tensor& t : inputs) {
    THAW_CHECK(t.dtype() == DType::Float64 && t.device().is_cpu(),
               "gradcheck: inputs must be float64 on the CPU, got {}", t.desc());
    t.zero_grad();
  }
  // Analytic: one backward with a random projection.
  Tensor y = f(inputs);
  Generator gen(1234);
  const Tensor projection = Tensor::uniform(y.shape(), -1, 1, gen, DType::Float64);
  y.backward(projection);

  const auto objective = [&]() {
    NoGradGuard no_grad;
    return ops::sum(ops::mul(f(inputs), projection)).item();
  };

  std::string worst;
  int64_t total = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    if (!x.requires_grad()) continue;
    if (!x.grad().defined()) {
      result.ok = false;
      result.message = fmt::format("input {} ({}) requires grad but got no gradient", i, x.desc());
      return result;
    }
    const std::vector<double> analytic = x.grad().to_vector<double>();
    double* data = x.data<double>();
    for (int64_t j = 0; j < x.numel(); ++j) {
      ++total;
      const double saved = data[j], h = options.step;
      const double center = objective();
      data[j] = saved + h;
      const double plus = objective();
      data[j] = saved - h;
      const double minus = objective();
      data[j] = saved;
      const double forward = (plus - center) / h, backward = (center - minus) / h;
      const double numeric = (plus - minus) / (2 * h);
      // Smooth: the one-sided differences differ by about h |f''|. At a kink: by the jump in slope.
      if (std::abs(forward - backward) > options.kink_threshold * std::max(1.0, std::abs(numeric))) {
        ++result.skipped;  // a kink within h of this point
        continue;
      }
      ++result.checked;
      const double ratio =
          std::abs(analytic[size_t(j)] - numeric) / (options.atol + options.rtol * std::abs(numeric));
      if (ratio > result.worst_ratio) {
        result.worst_ratio = ratio;
        worst = fmt::format("input {} element {}: analytic {:.12g}, numeric {:.12g}", i, j,
                            analytic[size_t(j)], numeric);
      }
    }
  }
  result.ok = result.worst_ratio <= 1.0 && result.checked > 0 &&
              double(result.skipped) <= options.max_skipped_fraction * double(total);
  result.message = fmt::format(
      "gradcheck {}: {} elements checked, {} skipped at kinks; worst {} ({:.2f} of the allowance)",
      result.ok ? "passed" : "FAILED", result.checked, result.skipped, worst, result.worst_ratio);
  return result;
}

}  // namespace thaw::test
