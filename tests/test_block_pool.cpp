// BlockPool (core/block_pool.h), the bookkeeping of the CUDA caching allocator, on a fake backing store: best
// fit, splitting, coalescing, the two pools, empty_cache, out of memory, exact statistics, and a long random
// sequence checked against the invariants after every step.
#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/block_pool.h"
#include "tests/support/catch.h"

using namespace thaw;

namespace {

constexpr size_t KiB = size_t(1) << 10;
constexpr size_t MiB = size_t(1) << 20;

uintptr_t address(const void* ptr) {
  return reinterpret_cast<uintptr_t>(ptr);
}

// A fake device: hands out address ranges that nothing ever reads or writes (the pool never touches its
// memory), back to back, so that consecutive segments are adjacent in memory; fails once capacity is used.
class FakeDevice {
 public:
  explicit FakeDevice(size_t capacity = size_t(1) << 40) : capacity_(capacity) {}

  BlockPool::Backing backing() {
    return {[this](size_t bytes) { return allocate(bytes); },
            [this](void* ptr, size_t bytes) { release(ptr, bytes); }};
  }

  std::vector<size_t> requests;  // every size asked for, in order, granted or not
  size_t allocations = 0;        // requests granted
  size_t bad_releases = 0;       // releases of a range not handed out, or with another size
  size_t used() const { return used_; }
  const std::map<uintptr_t, size_t>& segments() const { return live_; }  // start -> size

 private:
  void* allocate(size_t bytes) {
    requests.push_back(bytes);
    if (bytes > capacity_ - used_) return nullptr;
    const uintptr_t start = next_;
    next_ += bytes;
    live_[start] = bytes;
    used_ += bytes;
    ++allocations;
    return reinterpret_cast<void*>(start);
  }
  void release(void* ptr, size_t bytes) {
    auto it = live_.find(address(ptr));
    if (it == live_.end() || it->second != bytes) {
      ++bad_releases;
      return;
    }
    used_ -= bytes;
    live_.erase(it);
  }

  size_t capacity_;
  size_t used_ = 0;
  uintptr_t next_ = uintptr_t(1) << 32;
  std::map<uintptr_t, size_t> live_;
};

std::string size_str(size_t bytes) {
  if (bytes % MiB == 0) return std::to_string(bytes / MiB) + "M";
  if (bytes % KiB == 0) return std::to_string(bytes / KiB) + "K";
  return std::to_string(bytes);
}

// The start of the segment that holds ptr, or nullptr.
const void* segment_of(const BlockPool& pool, const void* ptr) {
  for (const BlockPool::BlockInfo& block : pool.snapshot())
    if (block.ptr == ptr) return block.segment;
  return nullptr;
}

// A segment's blocks by address, e.g. "used 3M | free 17M".
std::string layout(const BlockPool& pool, const void* segment) {
  std::string out;
  for (const BlockPool::BlockInfo& block : pool.snapshot()) {
    if (block.segment != segment) continue;
    if (!out.empty()) out += " | ";
    out += (block.allocated ? "used " : "free ") + size_str(block.size);
  }
  return out;
}

void require_stats(const BlockPool& pool, const BlockPool::Stats& want) {
  const BlockPool::Stats& got = pool.stats();
  CHECK(got.in_use == want.in_use);
  CHECK(got.peak_in_use == want.peak_in_use);
  CHECK(got.reserved == want.reserved);
  CHECK(got.peak_reserved == want.peak_reserved);
  CHECK(got.backing_allocs == want.backing_allocs);
  CHECK(got.cache_hits == want.cache_hits);
}

// The per-size-class scheme BlockPool replaced, reduced to what it asked the driver for: a request was
// rounded to its class (512 bytes up to 1 MiB, then 8 classes per power of two) and served only by a cached
// block of exactly that class.
class SizeClassModel {
 public:
  size_t mallocs = 0, reserved = 0;
  size_t allocate(size_t bytes) {
    const size_t cls = size_class(bytes);
    if (free_[cls] > 0) {
      --free_[cls];
    } else {
      ++mallocs;
      reserved += cls;
    }
    return cls;
  }
  void release(size_t cls) { ++free_[cls]; }

 private:
  static size_t size_class(size_t bytes) {
    if (bytes <= MiB) return (bytes + 511) / 512 * 512;
    size_t power = MiB;
    while (power * 2 < bytes)
      power *= 2;
    const size_t step = power / 8;
    return (bytes + step - 1) / step * step;
  }
  std::map<size_t, int> free_;
};

}  // namespace

TEST_CASE("BlockPool rounds requests to 512 bytes and sizes segments by pool") {
  CHECK(BlockPool::round_size(1) == 512);
  CHECK(BlockPool::round_size(512) == 512);
  CHECK(BlockPool::round_size(513) == 1024);
  CHECK(BlockPool::round_size(MiB + 1) == MiB + 512);
  CHECK(BlockPool::segment_size(512) == 2 * MiB);
  CHECK(BlockPool::segment_size(MiB) == 2 * MiB);
  CHECK(BlockPool::segment_size(MiB + 512) == 20 * MiB);
  CHECK(BlockPool::segment_size(10 * MiB) == 20 * MiB);
  CHECK(BlockPool::segment_size(10 * MiB + 512) == 12 * MiB);
  CHECK(BlockPool::segment_size(12 * MiB) == 12 * MiB);
  CHECK(BlockPool::segment_size(12 * MiB + 512) == 14 * MiB);
}

TEST_CASE("BlockPool best fit: a request takes the smallest free block that holds it") {
  FakeDevice device;
  BlockPool pool(device.backing());
  const auto a = pool.allocate(3 * MiB);  // a 20 MiB segment, cut into a, guards and c
  const auto guard1 = pool.allocate(2 * MiB);
  const auto c = pool.allocate(5 * MiB);
  const auto guard2 = pool.allocate(2 * MiB);
  const void* segment = a.ptr;
  REQUIRE(device.requests == std::vector<size_t>{20 * MiB});
  REQUIRE(pool.release(a.ptr));
  REQUIRE(pool.release(c.ptr));
  REQUIRE(layout(pool, segment) == "free 3M | used 2M | free 5M | used 2M | free 8M");

  // 3.5 MiB fits the 5 MiB and the 8 MiB blocks: the 5 MiB one is the best fit.
  const auto d = pool.allocate(3 * MiB + 512 * KiB);
  REQUIRE(d.ptr == c.ptr);
  REQUIRE(d.size == 3 * MiB + 512 * KiB);
  REQUIRE(layout(pool, segment) == "free 3M | used 2M | used 3584K | free 1536K | used 2M | free 8M");
  // 1.5 MiB + 512 bytes: the 1.5 MiB block is 512 bytes short, so the 3 MiB block is the best fit.
  const auto e = pool.allocate(MiB + 512 * KiB + 1);
  REQUIRE(e.ptr == a.ptr);
  REQUIRE(device.requests.size() == 1);
  REQUIRE(pool.stats().cache_hits == 5);

  // Among free blocks of equal size, the lowest address.
  REQUIRE(pool.release(guard2.ptr));  // merges into the 1.5 MiB and 8 MiB blocks around it: 11.5 MiB
  REQUIRE(pool.release(e.ptr));       // merges with the 1.5 MiB - 512 remainder after it: 3 MiB again
  REQUIRE(layout(pool, segment) == "free 3M | used 2M | used 3584K | free 11776K");
  REQUIRE(pool.release(guard1.ptr));
  REQUIRE(pool.release(d.ptr));
  REQUIRE(layout(pool, segment) == "free 20M");
  const auto x = pool.allocate(2 * MiB), g = pool.allocate(2 * MiB), y = pool.allocate(2 * MiB);
  const auto g2 = pool.allocate(2 * MiB);
  REQUIRE(g.ptr != nullptr);
  REQUIRE(g2.ptr != nullptr);
  REQUIRE(pool.release(x.ptr));
  REQUIRE(pool.release(y.ptr));  // two free 2 MiB blocks, y's released last: x's has the lower address
  REQUIRE(layout(pool, segment) == "free 2M | used 2M | free 2M | used 2M | free 12M");
  REQUIRE(pool.allocate(2 * MiB).ptr == x.ptr);
}

TEST_CASE("BlockPool split: a large block keeps a remainder over 1 MiB, a small block any remainder") {
  FakeDevice device;
  BlockPool pool(device.backing());
  const auto a = pool.allocate(3 * MiB);
  REQUIRE(a.size == 3 * MiB);
  REQUIRE(layout(pool, a.ptr) == "used 3M | free 17M");
  const auto b = pool.allocate(5 * MiB);  // from the remainder, right after a
  REQUIRE(address(b.ptr) == address(a.ptr) + 3 * MiB);
  REQUIRE(layout(pool, a.ptr) == "used 3M | used 5M | free 12M");

  // 19 MiB gets a 20 MiB segment of its own: the 1 MiB remainder is not split off but stays in the piece.
  const auto c = pool.allocate(19 * MiB);
  REQUIRE(c.size == 20 * MiB);
  REQUIRE(layout(pool, c.ptr) == "used 20M");
  // 1 MiB + 512 bytes of remainder is split off.
  const auto d = pool.allocate(19 * MiB - 512);
  REQUIRE(d.size == 19 * MiB - 512);
  REQUIRE(layout(pool, d.ptr) == "used 19922432 | free 1049088");

  // Small: 1000 bytes is 1 KiB; then 1 MiB and 1022.5 KiB fill the 2 MiB segment but for 512 bytes, which are
  // split off and serve the next 512-byte request.
  const auto s = pool.allocate(1000);
  REQUIRE(s.size == KiB);
  REQUIRE(layout(pool, s.ptr) == "used 1K | free 2047K");
  pool.allocate(MiB);
  pool.allocate(1023 * KiB - 512);
  REQUIRE(layout(pool, s.ptr) == "used 1K | used 1M | used 1047040 | free 512");
  const size_t requests = device.requests.size();
  const auto last = pool.allocate(300);
  REQUIRE(address(last.ptr) == address(s.ptr) + 2 * MiB - 512);
  REQUIRE(device.requests.size() == requests);
}

TEST_CASE("BlockPool coalescing: a released piece merges with its free neighbours on both sides") {
  FakeDevice device;
  BlockPool pool(device.backing());
  const auto a = pool.allocate(2 * MiB), b = pool.allocate(2 * MiB), c = pool.allocate(2 * MiB);
  const auto d = pool.allocate(2 * MiB);
  REQUIRE(layout(pool, a.ptr) == "used 2M | used 2M | used 2M | used 2M | free 12M");
  REQUIRE(pool.release(a.ptr));
  REQUIRE(pool.release(c.ptr));
  REQUIRE(layout(pool, a.ptr) == "free 2M | used 2M | free 2M | used 2M | free 12M");
  REQUIRE(pool.release(b.ptr));  // both neighbours free: one block of 6 MiB at a
  REQUIRE(layout(pool, a.ptr) == "free 6M | used 2M | free 12M");
  REQUIRE(pool.release(d.ptr));
  REQUIRE(layout(pool, a.ptr) == "free 20M");
  // The whole segment serves a request of its size again, without the backing store.
  const auto whole = pool.allocate(20 * MiB);
  REQUIRE(whole.ptr == a.ptr);
  REQUIRE(device.requests == std::vector<size_t>{20 * MiB});
}

TEST_CASE("BlockPool coalescing never crosses segments, even adjacent ones") {
  FakeDevice device;
  BlockPool pool(device.backing());
  const auto a = pool.allocate(12 * MiB), b = pool.allocate(12 * MiB);  // a segment each
  REQUIRE(address(b.ptr) == address(a.ptr) + 12 * MiB);                 // adjacent in memory
  REQUIRE(pool.release(a.ptr));
  REQUIRE(pool.release(b.ptr));
  REQUIRE(layout(pool, a.ptr) == "free 12M");
  REQUIRE(layout(pool, b.ptr) == "free 12M");
  // 24 MiB fits neither: a new segment.
  pool.allocate(24 * MiB);
  REQUIRE(device.requests == std::vector<size_t>{12 * MiB, 12 * MiB, 24 * MiB});
  REQUIRE(pool.empty_cache() == 2);
  REQUIRE(device.bad_releases == 0);
}

TEST_CASE("BlockPool empty_cache frees a segment only when it is wholly free") {
  FakeDevice device;
  BlockPool pool(device.backing());
  const auto a = pool.allocate(3 * MiB);   // 20 MiB segment
  const auto b = pool.allocate(18 * MiB);  // more than a's segment has left: an 18 MiB segment
  const auto s = pool.allocate(4096);      // 2 MiB small segment
  REQUIRE(pool.release(b.ptr));
  REQUIRE(pool.release(s.ptr));
  REQUIRE(pool.stats().reserved == 40 * MiB);
  REQUIRE(pool.empty_cache() == 2);
  REQUIRE(pool.stats().reserved == 20 * MiB);
  REQUIRE(device.segments() == std::map<uintptr_t, size_t>{{address(a.ptr), 20 * MiB}});
  REQUIRE(layout(pool, a.ptr) == "used 3M | free 17M");
  REQUIRE(pool.empty_cache() == 0);  // a's segment is partly in use
  REQUIRE(pool.release(a.ptr));
  REQUIRE(pool.stats().reserved == 20 * MiB);  // release alone gives nothing back
  REQUIRE(pool.empty_cache() == 1);
  REQUIRE(pool.stats().reserved == 0);
  REQUIRE(device.used() == 0);
  REQUIRE(pool.snapshot().empty());
  REQUIRE(device.bad_releases == 0);
}

TEST_CASE("BlockPool keeps small and large requests in separate pools") {
  FakeDevice device;
  BlockPool pool(device.backing());
  // 19.5 MiB takes a whole 20 MiB segment, so the large pool has no free block.
  const auto l = pool.allocate(19 * MiB + 512 * KiB);
  REQUIRE(l.size == 20 * MiB);
  const auto s = pool.allocate(4000);
  REQUIRE(pool.release(s.ptr));
  REQUIRE(layout(pool, s.ptr) == "free 2M");
  // A large request does not take the free small segment, though 2 MiB would hold it.
  const auto l2 = pool.allocate(MiB + 512);
  REQUIRE(segment_of(pool, l2.ptr) != segment_of(pool, s.ptr));
  REQUIRE(device.requests == std::vector<size_t>{20 * MiB, 2 * MiB, 20 * MiB});

  // A small request does not take free large memory (l2's segment has 19 MiB - 512 free): it fills the
  // small segment, then gets a new one.
  REQUIRE(pool.allocate(MiB).ptr == s.ptr);
  pool.allocate(MiB);
  const auto s3 = pool.allocate(512);
  REQUIRE(layout(pool, s.ptr) == "used 1M | used 1M");
  REQUIRE(layout(pool, s3.ptr) == "used 512 | free 2096640");
  REQUIRE(device.requests == std::vector<size_t>{20 * MiB, 2 * MiB, 20 * MiB, 2 * MiB});
  for (const BlockPool::BlockInfo& block : pool.snapshot())
    CHECK(block.small == (block.segment == s.ptr || block.segment == s3.ptr));
}

TEST_CASE("BlockPool statistics are exact after a scripted sequence") {
  FakeDevice device;
  BlockPool pool(device.backing());
  const auto a = pool.allocate(1000);  // 1 KiB of a new 2 MiB small segment
  require_stats(pool, {KiB, KiB, 2 * MiB, 2 * MiB, 1, 0});
  const auto b = pool.allocate(3 * MiB);  // a new 20 MiB segment
  require_stats(pool, {3 * MiB + KiB, 3 * MiB + KiB, 22 * MiB, 22 * MiB, 2, 0});
  const auto c = pool.allocate(5 * MiB + 1);  // from b's remainder
  const size_t peak = 8 * MiB + KiB + 512;
  require_stats(pool, {peak, peak, 22 * MiB, 22 * MiB, 2, 1});
  REQUIRE(pool.release(b.ptr));
  require_stats(pool, {5 * MiB + KiB + 512, peak, 22 * MiB, 22 * MiB, 2, 1});
  const auto d = pool.allocate(MiB + 512 * KiB);  // best fit: b's 3 MiB block, split
  REQUIRE(d.ptr == b.ptr);
  const size_t in_use = 6 * MiB + 512 * KiB + KiB + 512;
  require_stats(pool, {in_use, peak, 22 * MiB, 22 * MiB, 2, 2});
  const auto e = pool.allocate(30 * MiB);  // a segment of its own
  require_stats(pool, {in_use + 30 * MiB, in_use + 30 * MiB, 52 * MiB, 52 * MiB, 3, 2});
  REQUIRE(pool.release(e.ptr));
  REQUIRE(pool.empty_cache() == 1);
  require_stats(pool, {in_use, in_use + 30 * MiB, 22 * MiB, 52 * MiB, 3, 2});
  pool.reset_peak();
  require_stats(pool, {in_use, in_use, 22 * MiB, 22 * MiB, 3, 2});
  REQUIRE(pool.release(a.ptr));
  REQUIRE(pool.release(c.ptr));
  REQUIRE(pool.release(d.ptr));
  require_stats(pool, {0, in_use, 22 * MiB, 22 * MiB, 3, 2});
  REQUIRE(pool.empty_cache() == 2);
  require_stats(pool, {0, in_use, 0, 22 * MiB, 3, 2});
  REQUIRE(device.allocations == 3);
}

TEST_CASE("BlockPool serves from one segment what the per-size-class scheme needed six for") {
  // Two training steps of a made-up network: a 16 MiB activation, then 7 and 6 MiB ones, then three of 4 MiB.
  FakeDevice device;
  BlockPool pool(device.backing());
  SizeClassModel classes;
  for (int step = 0; step < 2; ++step) {
    for (const std::vector<size_t>& wave :
         {std::vector<size_t>{16 * MiB}, {7 * MiB, 6 * MiB}, {4 * MiB, 4 * MiB, 4 * MiB}}) {
      std::vector<void*> pieces;
      std::vector<size_t> cls;
      for (size_t bytes : wave) {
        pieces.push_back(pool.allocate(bytes).ptr);
        cls.push_back(classes.allocate(bytes));
      }
      for (void* ptr : pieces)
        REQUIRE(pool.release(ptr));
      for (size_t c : cls)
        classes.release(c);
    }
  }
  REQUIRE(classes.mallocs == 6);
  REQUIRE(classes.reserved == 41 * MiB);
  REQUIRE(pool.stats().backing_allocs == 1);
  REQUIRE(pool.stats().reserved == 16 * MiB);
  REQUIRE(pool.stats().peak_in_use == 16 * MiB);
  REQUIRE(pool.stats().cache_hits == 11);
}

TEST_CASE("BlockPool out of memory: empties the cache, retries, then tries a segment of just the request") {
  FakeDevice device(24 * MiB);
  BlockPool pool(device.backing());
  REQUIRE(pool.release(pool.allocate(4096).ptr));  // a 2 MiB small segment, cached
  const auto a = pool.allocate(3 * MiB);           // 22 MiB of 24 now
  REQUIRE(a.ptr != nullptr);
  // 18 MiB (a segment of exactly that): fails, the small segment is freed, fails again.
  const auto big = pool.allocate(18 * MiB);
  REQUIRE(big.ptr == nullptr);
  REQUIRE(big.size == 0);
  REQUIRE(device.requests == std::vector<size_t>{2 * MiB, 20 * MiB, 18 * MiB, 18 * MiB});
  require_stats(pool, {3 * MiB, 3 * MiB, 20 * MiB, 22 * MiB, 2, 0});
  REQUIRE(device.used() == 20 * MiB);
  // Still usable: a request that fits.
  REQUIRE(pool.allocate(4 * MiB).ptr != nullptr);

  // 3 MiB would get a 20 MiB segment, which does not fit in 8 MiB: the retry asks for 3 MiB alone.
  FakeDevice small_device(8 * MiB);
  BlockPool small_pool(small_device.backing());
  const auto x = small_pool.allocate(3 * MiB);
  REQUIRE(x.ptr != nullptr);
  REQUIRE(x.size == 3 * MiB);
  REQUIRE(small_device.requests == std::vector<size_t>{20 * MiB, 20 * MiB, 3 * MiB});
  REQUIRE(small_pool.stats().reserved == 3 * MiB);
  REQUIRE(layout(small_pool, x.ptr) == "used 3M");
}

TEST_CASE("BlockPool ignores pointers it did not hand out and requests of 0 bytes") {
  FakeDevice device;
  BlockPool pool(device.backing());
  REQUIRE(pool.allocate(0).ptr == nullptr);
  REQUIRE(pool.allocate(size_t(-1)).ptr == nullptr);  // more than any rounding can hold
  REQUIRE(device.requests.empty());
  const auto a = pool.allocate(4096);
  const BlockPool::Stats before = pool.stats();
  REQUIRE_FALSE(pool.release(nullptr));
  REQUIRE_FALSE(pool.release(static_cast<char*>(a.ptr) + 512));  // inside a piece, not its start
  REQUIRE(layout(pool, a.ptr) == "used 4K | free 2044K");
  require_stats(pool, before);
  REQUIRE(pool.release(a.ptr));
  REQUIRE_FALSE(pool.release(a.ptr));  // twice
  REQUIRE(pool.stats().in_use == 0);
}

TEST_CASE("BlockPool gives every segment back when destroyed") {
  FakeDevice device;
  {
    BlockPool pool(device.backing());
    pool.allocate(100);
    pool.allocate(3 * MiB);
    REQUIRE(pool.release(pool.allocate(40 * MiB).ptr));
    REQUIRE(device.segments().size() == 3);
  }
  REQUIRE(device.segments().empty());
  REQUIRE(device.bad_releases == 0);
}

namespace {

// What must hold after every step; "" when it does, else the first violation.
std::string check_invariants(const BlockPool& pool, const FakeDevice& device,
                             const std::vector<BlockPool::Piece>& live) {
  // The blocks tile exactly the segments the device handed out, and no two neighbours are both free.
  std::map<uintptr_t, size_t> tiled;  // segment -> bytes covered so far
  const BlockPool::BlockInfo* prev = nullptr;
  std::map<uintptr_t, size_t> allocated;
  for (const BlockPool::BlockInfo& block : pool.snapshot()) {
    const uintptr_t segment = address(block.segment);
    if (!device.segments().count(segment)) return "a block in a segment the device did not hand out";
    if (address(block.ptr) != segment + tiled[segment]) return "a gap or an overlap inside a segment";
    if (block.size == 0 || block.size % BlockPool::kGranule != 0) return "a block size not a multiple of 512";
    tiled[segment] += block.size;
    const bool same_segment = prev != nullptr && prev->segment == block.segment;
    if (same_segment && !prev->allocated && !block.allocated) return "two adjacent free blocks";
    if (block.allocated) allocated[address(block.ptr)] = block.size;
    prev = &block;
  }
  if (tiled != device.segments()) return "the blocks do not tile the device's segments";
  // The allocated blocks are the live pieces, which do not overlap, and in_use is their sum.
  std::map<uintptr_t, size_t> pieces;
  size_t sum = 0;
  for (const BlockPool::Piece& piece : live) {
    pieces[address(piece.ptr)] = piece.size;
    sum += piece.size;
  }
  if (pieces.size() != live.size()) return "two live pieces at one address";
  if (pieces != allocated) return "the allocated blocks are not the live pieces";
  for (auto it = pieces.begin(); it != pieces.end() && std::next(it) != pieces.end(); ++it)
    if (it->first + it->second > std::next(it)->first) return "two live pieces overlap";
  const BlockPool::Stats& s = pool.stats();
  if (s.in_use != sum) return "in_use is not the sum of the live pieces";
  if (s.reserved != device.used()) return "reserved is not what the device handed out";
  if (s.backing_allocs != device.allocations) return "backing_allocs is not the device's count";
  if (s.peak_in_use < s.in_use || s.peak_reserved < s.reserved) return "a peak below its value";
  if (device.bad_releases != 0) return "a segment given back wrongly";
  return "";
}

size_t random_request(std::mt19937_64& rng) {
  const auto uniform = [&](size_t lo, size_t hi) {
    return std::uniform_int_distribution<size_t>(lo, hi)(rng);
  };
  const size_t kind = uniform(0, 9);
  if (kind < 6) return uniform(1, MiB);             // small
  if (kind < 9) return uniform(MiB + 1, 10 * MiB);  // shares 20 MiB segments
  return uniform(10 * MiB + 1, 40 * MiB);           // a segment of its own
}

}  // namespace

TEST_CASE("BlockPool keeps its invariants over a long random sequence") {
  FakeDevice device(160 * MiB);  // small enough that the sequence runs out of memory now and then
  BlockPool pool(device.backing());
  std::mt19937_64 rng(20261227);
  std::vector<BlockPool::Piece> live;
  size_t out_of_memory = 0;
  for (int step = 0; step < 20000; ++step) {
    const size_t op = rng() % 100;
    if (op < 50 || live.empty()) {
      const size_t bytes = random_request(rng);
      const BlockPool::Piece piece = pool.allocate(bytes);
      if (piece.ptr == nullptr) {
        ++out_of_memory;
      } else {
        REQUIRE(piece.size >= bytes);
        live.push_back(piece);
      }
    } else if (op < 99) {
      const size_t i = rng() % live.size();
      REQUIRE(pool.release(live[i].ptr));
      live[i] = live.back();
      live.pop_back();
    } else {
      pool.empty_cache();
    }
    INFO("step " << step);
    REQUIRE(check_invariants(pool, device, live) == "");
  }
  // The sequence went through every path: reuse, new segments, out of memory.
  REQUIRE(pool.stats().cache_hits > 1000);
  REQUIRE(pool.stats().backing_allocs > 10);
  REQUIRE(out_of_memory > 0);
}
