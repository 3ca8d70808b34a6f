// BlockPool: the bookkeeping of a caching allocator that splits cached blocks, with no knowledge of CUDA.
// It gets memory in *segments* from a backing store (cudaMalloc/cudaFree in core/cuda_allocator.cpp, a fake
// in tests/test_block_pool.cpp), cuts segments into *blocks*, hands blocks out as pieces and keeps released
// ones for reuse. It never reads or writes the memory itself. The policy, in the spirit of PyTorch's
// CUDACachingAllocator:
//
// - Rounding: a request is rounded up to a multiple of kGranule (512 bytes). Blocks start at multiples of
//   512 bytes from their segment's start, so a piece is aligned as its segment is, up to 512 bytes.
// - Two pools: a rounded size <= kSmallLimit (1 MiB) is *small* and comes from segments of kSmallSegment
//   (2 MiB); a larger one is *large* and comes from segments of kMidSegment (20 MiB) when it is <= kMidLimit
//   (10 MiB), else of its size rounded up to kLargeRound (2 MiB). A segment serves one pool for life, so
//   short-lived small tensors never pin the middle of a large segment, and large blocks never crowd out the
//   small ones.
// - Best fit: a request takes the smallest free block of its pool that holds it (the lowest address among
//   equal sizes); only when none does is a new segment obtained from the backing store.
// - Split: the block is cut to the request's rounded size when the remainder is worth keeping: in the small
//   pool any remainder (it is at least 512 bytes), in the large pool only a remainder > kSmallLimit, which
//   can serve a large request on its own. A smaller remainder stays in the piece, so a large piece carries at
//   most 1 MiB of slack, counted in in_use.
// - Coalescing: a released block merges with the free blocks next to it in the same segment (never across
//   segments, even where two segments happen to be adjacent in memory), so two adjacent blocks are never
//   both free.
// - Segments go back to the backing store only in empty_cache() (also run on out of memory), and only when
//   wholly free.
// - Out of memory: when the backing store returns nullptr, the pool empties its cache and asks once more
//   for the same segment size, then for a segment of just the rounded request (when that is smaller); if
//   that fails too, allocate() returns a null piece and the caller reports the error.
//
// Not thread-safe: the caller locks. Reuse needs no synchronisation only when every user of the memory runs
// in one order (thaw's single CUDA stream); the pool itself knows nothing about that.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <set>
#include <unordered_map>
#include <vector>

namespace thaw {

class BlockPool {
 public:
  static constexpr size_t kMiB = size_t(1) << 20;
  static constexpr size_t kGranule = 512;            // every request is rounded up to a multiple of this
  static constexpr size_t kSmallLimit = kMiB;        // rounded sizes up to this are small
  static constexpr size_t kSmallSegment = 2 * kMiB;  // the size of every small segment
  static constexpr size_t kMidLimit = 10 * kMiB;     // large sizes up to this share kMidSegment segments
  static constexpr size_t kMidSegment = 20 * kMiB;
  static constexpr size_t kLargeRound = 2 * kMiB;  // larger ones get a segment of their own, rounded to this

  // The backing store. allocate(bytes) returns at least bytes of memory, or nullptr when it is out of
  // memory (any other failure throws, and the pool is left as it was); release(ptr, bytes) gives back what
  // allocate returned, with the same bytes.
  struct Backing {
    std::function<void*(size_t bytes)> allocate;
    std::function<void(void* ptr, size_t bytes)> release;
  };

  struct Stats {
    size_t in_use = 0;          // bytes in the pieces handed out now (rounded, slack included)
    size_t peak_in_use = 0;     // the most in_use has been since construction or reset_peak()
    size_t reserved = 0;        // bytes in segments held from the backing store (in use + cached)
    size_t peak_reserved = 0;   // likewise
    size_t backing_allocs = 0;  // successful calls to Backing::allocate
    size_t cache_hits = 0;      // requests served from a free block, without calling the backing store
  };

  struct Piece {
    void* ptr = nullptr;  // nullptr: out of memory (or a request of 0 bytes)
    size_t size = 0;      // the block's size: the rounded request, plus any slack not worth splitting off
  };

  // One block as snapshot() reports it.
  struct BlockInfo {
    void* segment = nullptr;  // the start of the segment that holds the block
    void* ptr = nullptr;
    size_t size = 0;
    bool allocated = false;
    bool small = false;  // which pool the segment serves
  };

  explicit BlockPool(Backing backing);
  ~BlockPool();  // gives every segment back to the backing store, pieces still handed out included
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  // requires: bytes > 0 (0 gives a null piece and counts nothing).
  // ensures: a piece of at least bytes, disjoint from every other piece handed out, or a null piece when the
  // backing store is out of memory even after empty_cache(). Throws what Backing::allocate throws.
  Piece allocate(size_t bytes);
  // Takes back a piece that allocate() handed out; false (and nothing changes) for any other pointer.
  bool release(void* ptr) noexcept;
  // Gives every wholly free segment back to the backing store; returns how many.
  size_t empty_cache();

  const Stats& stats() const { return stats_; }
  void reset_peak();  // peaks := current values
  // Every block of every segment, by address: the blocks of a segment tile it exactly.
  std::vector<BlockInfo> snapshot() const;

  static size_t round_size(size_t bytes);           // requires: bytes <= kMaxRequest
  static size_t segment_size(size_t rounded_size);  // the segment a new block of that rounded size gets
  // Larger requests are out of memory outright (their rounding would overflow size_t).
  static constexpr size_t kMaxRequest = size_t(-1) - 2 * kLargeRound;

 private:
  struct Block {
    char* ptr = nullptr;
    size_t size = 0;
    bool small = false;
    bool allocated = false;
    Block* prev = nullptr;  // the neighbours in the same segment, by address
    Block* next = nullptr;
  };
  struct BySizeThenAddress {
    bool operator()(const Block* a, const Block* b) const {
      return a->size != b->size ? a->size < b->size : a->ptr < b->ptr;
    }
  };
  using FreeBlocks = std::set<Block*, BySizeThenAddress>;

  FreeBlocks& free_blocks(bool small) { return small ? small_free_ : large_free_; }
  Block* take_best_fit(bool small, size_t size);
  Block* new_segment(bool small, size_t size);
  void* backing_allocate(size_t bytes);
  void split(Block* block, size_t size);
  Block* merge_with_neighbours(Block* block);
  void absorb_next(Block* block);

  Backing backing_;
  FreeBlocks small_free_, large_free_;      // the free blocks of each pool, best fit first
  std::unordered_map<void*, Block*> live_;  // the pieces handed out, by address
  std::map<char*, Block*> segments_;        // segment start -> its first block (which never moves)
  Stats stats_;
};

}  // namespace thaw
