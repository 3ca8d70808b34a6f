// Philox4x32-10: the known-answer vectors of Random123, and the documented layout of values.
#include "core/rng.h"
#include "core/tensor.h"
#include "tests/support/catch.h"

using namespace thaw;

TEST_CASE("philox4x32_10 matches the Random123 known-answer vectors") {
  // Random123 tests/kat_vectors, "philox4x32 10" lines: counter, key -> result.
  REQUIRE(philox4x32_10({0, 0, 0, 0}, {0, 0}) == PhiloxBlock{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
  REQUIRE(philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}) ==
          PhiloxBlock{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd});
  REQUIRE(philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}) ==
          PhiloxBlock{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1});
}

TEST_CASE("a generator is (seed, stream, offset): values depend on nothing else") {
  Generator g(7, 3);
  const PhiloxBlock b = g.block_at(5);
  REQUIRE(b == philox4x32_10({5, 0, 3, 0}, {7, 0}));
  // Filling 8 then 8 values equals filling 16 at once (whole blocks of 4).
  Generator one(99), two(99);
  const auto a1 = Tensor::uniform({8}, 0, 1, one).to_vector<float>();
  const auto a2 = Tensor::uniform({8}, 0, 1, one).to_vector<float>();
  const auto all = Tensor::uniform({16}, 0, 1, two).to_vector<float>();
  REQUIRE(std::equal(a1.begin(), a1.end(), all.begin()));
  REQUIRE(std::equal(a2.begin(), a2.end(), all.begin() + 8));
  REQUIRE(one.offset() == 4);
  // The documented conversion: value i is uniform_from_bits(block(offset + i/4)[i % 4]).
  Generator three(99);
  REQUIRE(all[6] == uniform_from_bits(three.block_at(1)[2]));
  // Different streams and seeds give different sequences.
  Generator s0(99, 0), s1(99, 1), other(100);
  REQUIRE(s0.next_u32() != s1.next_u32());
  REQUIRE(Generator(99).next_u32() != other.next_u32());
}

TEST_CASE("scalar draws: ranges and rough uniformity") {
  Generator g(1);
  std::vector<int> counts(5, 0);
  for (int i = 0; i < 5000; ++i) {
    const int64_t k = g.next_int(10, 15);
    REQUIRE((k >= 10 && k < 15));
    ++counts[size_t(k - 10)];
    const double u = g.next_uniform(-1, 1);
    REQUIRE((u >= -1 && u < 1));
  }
  for (int c : counts)
    REQUIRE((c > 900 && c < 1100));
  REQUIRE_THROWS_WITH(g.next_int(3, 3), ContainsSubstring("empty range"));
}
