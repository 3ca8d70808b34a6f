// BlockPool: best fit, split and coalesce over segments from a backing store (the policy is in block_pool.h).
#include "core/block_pool.h"

#include <algorithm>
#include <utility>

namespace thaw {
namespace {

size_t round_up(size_t bytes, size_t multiple) {
  return (bytes + multiple - 1) / multiple * multiple;
}

// A remainder is split off only when it can serve a request of its pool on its own.
bool worth_splitting(bool small, size_t remainder) {
  return small ? remainder >= BlockPool::kGranule : remainder > BlockPool::kSmallLimit;
}

}  // namespace

BlockPool::BlockPool(Backing backing) : backing_(std::move(backing)) {}

BlockPool::~BlockPool() {
  for (auto& [start, head] : segments_) {
    size_t bytes = 0;
    for (Block* block = head; block != nullptr;) {
      bytes += block->size;
      Block* next = block->next;
      delete block;
      block = next;
    }
    backing_.release(start, bytes);
  }
}

size_t BlockPool::round_size(size_t bytes) {
  return round_up(bytes, kGranule);
}

size_t BlockPool::segment_size(size_t rounded_size) {
  if (rounded_size <= kSmallLimit) return kSmallSegment;
  if (rounded_size <= kMidLimit) return kMidSegment;
  return round_up(rounded_size, kLargeRound);
}

BlockPool::Piece BlockPool::allocate(size_t bytes) {
  if (bytes == 0 || bytes > kMaxRequest) return {};
  const size_t size = round_size(bytes);
  const bool small = size <= kSmallLimit;
  Block* block = take_best_fit(small, size);
  if (block != nullptr) {
    ++stats_.cache_hits;
  } else {
    block = new_segment(small, size);
    if (block == nullptr) return {};
  }
  split(block, size);
  block->allocated = true;
  live_.emplace(block->ptr, block);
  stats_.in_use += block->size;
  stats_.peak_in_use = std::max(stats_.peak_in_use, stats_.in_use);
  return {block->ptr, block->size};
}

bool BlockPool::release(void* ptr) noexcept {
  auto it = live_.find(ptr);
  if (it == live_.end()) return false;
  Block* block = it->second;
  live_.erase(it);
  block->allocated = false;
  stats_.in_use -= block->size;
  block = merge_with_neighbours(block);
  free_blocks(block->small).insert(block);
  return true;
}

size_t BlockPool::empty_cache() {
  size_t freed = 0;
  for (auto it = segments_.begin(); it != segments_.end();) {
    Block* head = it->second;
    // Adjacent free blocks are merged, so a segment is wholly free exactly when it is one free block.
    if (head->allocated || head->next != nullptr) {
      ++it;
      continue;
    }
    free_blocks(head->small).erase(head);
    backing_.release(head->ptr, head->size);
    stats_.reserved -= head->size;
    delete head;
    it = segments_.erase(it);
    ++freed;
  }
  return freed;
}

void BlockPool::reset_peak() {
  stats_.peak_in_use = stats_.in_use;
  stats_.peak_reserved = stats_.reserved;
}

std::vector<BlockPool::BlockInfo> BlockPool::snapshot() const {
  std::vector<BlockInfo> blocks;
  for (const auto& [start, head] : segments_) {
    for (const Block* block = head; block != nullptr; block = block->next)
      blocks.push_back({start, block->ptr, block->size, block->allocated, block->small});
  }
  return blocks;
}

// Removes and returns the smallest free block of the pool with size >= size, or nullptr.
BlockPool::Block* BlockPool::take_best_fit(bool small, size_t size) {
  FreeBlocks& pool = free_blocks(small);
  Block key;
  key.size = size;  // and ptr nullptr: sorts before every block of that size
  auto it = pool.lower_bound(&key);
  if (it == pool.end()) return nullptr;
  Block* block = *it;
  pool.erase(it);
  return block;
}

// A new segment for a block of the given rounded size, as one free block not in any free set; nullptr when
// the backing store is out of memory even after the retries of the header's policy.
BlockPool::Block* BlockPool::new_segment(bool small, size_t size) {
  size_t bytes = segment_size(size);
  void* start = backing_allocate(bytes);
  if (start == nullptr) {
    empty_cache();
    start = backing_allocate(bytes);
  }
  if (start == nullptr && bytes > size) {
    bytes = size;
    start = backing_allocate(bytes);
  }
  if (start == nullptr) return nullptr;
  Block* head = new Block{static_cast<char*>(start), bytes, small};
  segments_.emplace(head->ptr, head);
  stats_.reserved += bytes;
  stats_.peak_reserved = std::max(stats_.peak_reserved, stats_.reserved);
  return head;
}

void* BlockPool::backing_allocate(size_t bytes) {
  void* ptr = backing_.allocate(bytes);
  if (ptr != nullptr) ++stats_.backing_allocs;
  return ptr;
}

// Cuts block (free, in no free set) to size when the remainder is worth keeping; the remainder becomes a free
// block right after it. Its new neighbour was not free (adjacent free blocks are always merged), so nothing
// needs merging.
void BlockPool::split(Block* block, size_t size) {
  const size_t remainder = block->size - size;
  if (!worth_splitting(block->small, remainder)) return;
  Block* rest = new Block{block->ptr + size, remainder, block->small};
  rest->prev = block;
  rest->next = block->next;
  if (block->next != nullptr) block->next->prev = rest;
  block->next = rest;
  block->size = size;
  free_blocks(rest->small).insert(rest);
}

// Merges block (free, in no free set) with its free neighbours; returns the merged block, which starts where
// the lowest of them did (so a segment's first block stays its first block).
BlockPool::Block* BlockPool::merge_with_neighbours(Block* block) {
  if (block->next != nullptr && !block->next->allocated) absorb_next(block);
  if (block->prev != nullptr && !block->prev->allocated) {
    block = block->prev;
    absorb_next(block);
  }
  return block;
}

// block takes over the free block after it. The free set is keyed by size, so both leave it first.
void BlockPool::absorb_next(Block* block) {
  Block* next = block->next;
  FreeBlocks& pool = free_blocks(block->small);
  pool.erase(block);
  pool.erase(next);
  block->size += next->size;
  block->next = next->next;
  if (next->next != nullptr) next->next->prev = block;
  delete next;
}

}  // namespace thaw
