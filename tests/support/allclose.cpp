#include "tests/support/allclose.h"

#include <cmath>

#include "core/error.h"

namespace thaw::test {

CloseReport allclose(const Tensor& got, const Tensor& ref, double rtol, double atol,
                     const std::string& what) {
  CloseReport r;
  const std::string label = what.empty() ? "tensor" : what;
  if (!got.defined() || !ref.defined() || got.shape() != ref.shape()) {
    r.ok = false;
    r.message = fmt::format("{}: shape mismatch: got {}, expected {}", label,
                            got.defined() ? shape_str(got.shape()) : "undefined",
                            ref.defined() ? shape_str(ref.shape()) : "undefined");
    return r;
  }
  const auto as_double = [](const Tensor& t) {
    const Tensor host = t.device().is_cpu() ? t : t.to(Device::cpu());
    return host.dtype() == DType::Float64 ? host.to_vector<double>()
                                          : host.to(DType::Float64).to_vector<double>();
  };
  const std::vector<double> g = as_double(got), e = as_double(ref);
  int64_t worst = -1;
  for (size_t i = 0; i < g.size(); ++i) {
    const double err = std::abs(g[i] - e[i]);
    const double ratio = std::isnan(g[i]) != std::isnan(e[i]) ? INFINITY
                         : std::isnan(g[i]) || err == 0       ? 0
                                                              : err / (atol + rtol * std::abs(e[i]));
    if (worst < 0 || ratio > r.worst_ratio) {
      r.worst_ratio = ratio;
      worst = int64_t(i);
    }
    if (err > r.max_abs_error) {
      r.max_abs_error = err;
      r.max_rel_error = e[i] != 0 ? err / std::abs(e[i]) : 0;
    }
  }
  r.ok = r.worst_ratio <= 1.0;
  if (worst >= 0) {
    r.message = fmt::format(
        "{} {}: worst element {} got {:.9g} expected {:.9g} (|diff| {:.3g}; used {:.1f}% of atol {:g} + rtol "
        "{:g} * |ref|); "
        "max abs error {:.3g}",
        label, r.ok ? "within tolerance" : "NOT within tolerance", worst, g[size_t(worst)], e[size_t(worst)],
        std::abs(g[size_t(worst)] - e[size_t(worst)]), 100 * r.worst_ratio, atol, rtol, r.max_abs_error);
  }
  return r;
}

}  // namespace thaw::test
