#include "core/precision.h"

#include <cmath>
#include <cstdint>
#include <cstring>

#include "core/error.h"

namespace thaw {

const char* precision_name(Precision precision) {
  switch (precision) {
    case Precision::FP32:
      return "fp32";
    case Precision::TF32:
      return "tf32";
    case Precision::BF16:
      return "bf16";
  }
  return "?";
}

Precision parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::FP32;
  if (name == "tf32") return Precision::TF32;
  if (name == "bf16") return Precision::BF16;
  fail("precision '{}' is not known: expected fp32, tf32 or bf16", name);
}

namespace {

// x with its low `dropped` mantissa bits cleared after rounding to nearest: ties away from zero when
// ties_to_even is false, else ties to the even kept value. Works on the bit pattern: a carry out of the
// mantissa moves into the exponent, which is the right next value (and turns the largest finite values
// into infinity).
float round_mantissa(float x, int dropped, bool ties_to_even) {
  if (std::isnan(x) || std::isinf(x)) return x;
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  const uint32_t half = uint32_t(1) << (dropped - 1);
  const uint32_t kept_lsb = (bits >> dropped) & 1u;
  bits += ties_to_even ? half - 1 + kept_lsb : half;
  bits &= ~((uint32_t(1) << dropped) - 1);
  float y;
  std::memcpy(&y, &bits, sizeof y);
  return y;
}

}  // namespace

float round_to(Precision p, float x) {
  switch (p) {
    case Precision::FP32:
      return x;
    case Precision::TF32:
      return round_mantissa(x, 13, /*ties_to_even=*/false);  // 23 - 10 mantissa bits dropped
    case Precision::BF16:
      return round_mantissa(x, 16, /*ties_to_even=*/true);  // 23 - 7
  }
  return x;
}

double unit_roundoff(Precision p) {
  switch (p) {
    case Precision::FP32:
      return std::ldexp(1.0, -24);
    case Precision::TF32:
      return std::ldexp(1.0, -11);
    case Precision::BF16:
      return std::ldexp(1.0, -8);
  }
  return 0;
}

}  // namespace thaw
