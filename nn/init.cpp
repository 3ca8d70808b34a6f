#include "nn/init.h"

#include <cmath>

#include "core/error.h"
#include "nn/module.h"

namespace thaw::nn::init {

namespace {
int64_t receptive_field(const Shape& s) {
  int64_t r = 1;
  for (size_t i = 2; i < s.size(); ++i)
    r *= s[i];
  return r;
}
void fill_from(const Tensor& dst, const Tensor& values) {
  dst.copy_(values.to(dst.device()));
  note_parameter_writes();  // nn/module.h: a derived cache must not outlive the old values
}
}  // namespace

int64_t fan_in(const Shape& s) {
  THAW_CHECK(s.size() >= 2, "fan_in of a weight needs at least 2 dimensions, got {}", shape_str(s));
  return s[1] * receptive_field(s);
}

int64_t fan_out(const Shape& s) {
  THAW_CHECK(s.size() >= 2, "fan_out of a weight needs at least 2 dimensions, got {}", shape_str(s));
  return s[0] * receptive_field(s);
}

void kaiming_normal_fan_out(const Tensor& w, Generator& gen) {
  const double std = std::sqrt(2.0 / double(fan_out(w.shape())));
  fill_from(w, Tensor::normal(w.shape(), 0.0, std, gen, w.dtype()));
}

void default_weight(const Tensor& w, Generator& gen) {
  const double bound = 1.0 / std::sqrt(double(fan_in(w.shape())));
  fill_from(w, Tensor::uniform(w.shape(), -bound, bound, gen, w.dtype()));
}

void default_bias(const Tensor& b, int64_t fan_in, Generator& gen) {
  const double bound = fan_in > 0 ? 1.0 / std::sqrt(double(fan_in)) : 0.0;
  fill_from(b, Tensor::uniform(b.shape(), -bound, bound, gen, b.dtype()));
}

}  // namespace thaw::nn::init
