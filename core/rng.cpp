#include "core/rng.h"

#include <cmath>
#include <numbers>

#include "core/error.h"

namespace thaw {

PhiloxBlock philox4x32_10(PhiloxBlock c, std::array<uint32_t, 2> key) {
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = uint64_t(kMul0) * c[0];
    const uint64_t p1 = uint64_t(kMul1) * c[2];
    const uint32_t hi0 = uint32_t(p0 >> 32), lo0 = uint32_t(p0);
    const uint32_t hi1 = uint32_t(p1 >> 32), lo1 = uint32_t(p1);
    c = {hi1 ^ c[1] ^ key[0], lo1, hi0 ^ c[3] ^ key[1], lo0};
    key[0] += kWeyl0;
    key[1] += kWeyl1;
  }
  return c;
}

PhiloxBlock Generator::block_at(uint64_t offset) const {
  return philox4x32_10({uint32_t(offset), uint32_t(offset >> 32), uint32_t(stream_), uint32_t(stream_ >> 32)},
                       {uint32_t(seed_), uint32_t(seed_ >> 32)});
}

uint64_t Generator::reserve(uint64_t count) {
  const uint64_t first = offset_;
  offset_ += (count + 3) / 4;
  return first;
}

uint32_t Generator::next_u32() {
  return block_at(reserve(1))[0];
}

double Generator::next_uniform() {
  // 53 random bits from two lanes of one block.
  const PhiloxBlock b = block_at(reserve(1));
  const uint64_t bits = (uint64_t(b[0]) << 21) ^ (uint64_t(b[1]) >> 11);
  return double(bits & ((uint64_t(1) << 53) - 1)) * 0x1.0p-53;
}

double Generator::next_uniform(double low, double high) {
  return low + (high - low) * next_uniform();
}

int64_t Generator::next_int(int64_t low, int64_t high) {
  THAW_CHECK(low < high, "Generator::next_int: empty range [{}, {})", low, high);
  const uint64_t range = uint64_t(high - low);
  // Rejection sampling on 64 bits: unbiased for any range.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % range;
  while (true) {
    const PhiloxBlock b = block_at(reserve(1));
    const uint64_t bits = (uint64_t(b[0]) << 32) | b[1];
    if (bits < limit) return low + int64_t(bits % range);
  }
}

double Generator::next_normal() {
  const PhiloxBlock b = block_at(reserve(1));
  double z0, z1;
  normal_pair_from_bits(b[0], b[1], z0, z1);
  return z0;
}

void normal_pair_from_bits(uint32_t a, uint32_t b, double& z0, double& z1) {
  const double u1 = double((a >> 8) + 1) * 0x1.0p-24;  // (0, 1]: log is finite
  const double u2 = double(b >> 8) * 0x1.0p-24;
  const double radius = std::sqrt(-2.0 * std::log(u1));
  const double angle = 2.0 * std::numbers::pi * u2;
  z0 = radius * std::cos(angle);
  z1 = radius * std::sin(angle);
}

}  // namespace thaw
