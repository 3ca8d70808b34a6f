// Generator: thaw's one random number generator, Philox4x32-10 (Salmon, Moraes, Dror, Shaw: "Parallel
// random numbers: as easy as 1, 2, 3", SC'11; the algorithm of Random123, cuRAND and PyTorch's CUDA RNG).
//
// Philox is counter-based: block(key, counter) -> four uint32, a pure function. A Generator is a key (the
// 64-bit seed), a 64-bit stream id and a 64-bit offset (the next unused counter). Filling n values uses
// counters offset .. offset + ceil(n/4) - 1, value i coming from counter offset + i/4, lane i%4, so the
// result never depends on the number of threads, and it is the same on every machine. Streams give
// independent sequences for the same seed (e.g. one per sample and epoch for augmentation).
//
// Conversions (documented so other implementations can reproduce them):
//   uniform [0,1):  (u >> 8) * 2^-24   (24 random bits, exactly representable in float32)
//   normal:         Box-Muller on lanes (0,1) and (2,3): u1 = ((a >> 8) + 1) * 2^-24 in (0,1], u2 = (b >> 8)
//   * 2^-24,
//                   z0 = sqrt(-2 ln u1) cos(2 pi u2), z1 = sqrt(-2 ln u1) sin(2 pi u2)  (computed in double)
#pragma once

#include <array>
#include <cstdint>

namespace thaw {

using PhiloxBlock = std::array<uint32_t, 4>;

// One Philox4x32-10 block: counter (4 words), key (2 words).
PhiloxBlock philox4x32_10(PhiloxBlock counter, std::array<uint32_t, 2> key);

class Generator {
 public:
  explicit Generator(uint64_t seed = 0, uint64_t stream = 0) : seed_(seed), stream_(stream) {}

  uint64_t seed() const { return seed_; }
  uint64_t stream() const { return stream_; }
  uint64_t offset() const { return offset_; }
  void set_offset(uint64_t offset) { offset_ = offset; }

  // The block at counter (offset, stream) without advancing.
  PhiloxBlock block_at(uint64_t offset) const;

  // Reserves `count` values (ceil(count/4) blocks) and returns the first block offset: fillers use
  // block_at(first + i/4)[i%4] for value i.
  uint64_t reserve(uint64_t count);

  // Scalar draws for host-side decisions (each consumes one block).
  uint32_t next_u32();
  double next_uniform();                         // [0, 1)
  double next_uniform(double low, double high);  // [low, high)
  int64_t next_int(int64_t low, int64_t high);   // uniform integer in [low, high); requires low < high
  double next_normal();

 private:
  uint64_t seed_;
  uint64_t stream_;
  uint64_t offset_ = 0;
};

// Value conversions shared by all fillers (see the header comment).
inline float uniform_from_bits(uint32_t u) {
  return float(u >> 8) * (1.0f / 16777216.0f);
}
void normal_pair_from_bits(uint32_t a, uint32_t b, double& z0, double& z1);

}  // namespace thaw
