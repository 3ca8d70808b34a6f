// Loader (data/loader.h): worker threads, a window of `prefetch` batch buffers, and the in-order hand-out.
//
// Positions p = 0 .. end-1 of an epoch's order are handed to workers in increasing order, one at a time,
// under one mutex; position p belongs to batch p / batch_size, whose buffer is ring slot (p / batch_size) %
// prefetch. A worker may take p only while its batch is inside the window [consumed, consumed + prefetch), so
// a slot is never written while the consumer reads it. Cancelling (a new epoch, the destructor, an error)
// bumps the generation: workers drop results of an older generation, and start_epoch waits until none is in
// flight.
#include "data/loader.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <mutex>
#include <set>
#include <thread>

#include "core/cuda_runtime.h"
#include "core/error.h"
#include "core/rng.h"
#include "data/device_transforms.h"
#include "data/image.h"

namespace thaw::data {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// An error from loading one file, with the file named (decode_image_file already names it; other errors,
// e.g. from the transform, get the name in front).
std::exception_ptr error_naming(const std::string& path, const std::exception& e) {
  const std::string what = e.what();
  if (what.find(path) != std::string::npos) return std::make_exception_ptr(Error(what));
  return std::make_exception_ptr(Error(fmt::format("{}: {}", path, what)));
}

}  // namespace

std::vector<int64_t> shuffled_order(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    order[size_t(i)] = i;
  Generator gen(seed, uint64_t(epoch));
  for (int64_t i = n - 1; i >= 1; --i)
    std::swap(order[size_t(i)], order[size_t(gen.next_int(0, i + 1))]);
  return order;
}

// One batch buffer of the ring.
struct BatchSlot {
  Tensor images;                     // CPU target: the (batch, 3, crop, crop) tensor workers write into
  float* pinned = nullptr;           // CUDA target: page-locked buffer of the same size
  uint8_t* packed = nullptr;         // device transforms: batch regions of region_bytes (packed samples)
  std::vector<uint8_t> packed_host;  // device transforms on a CPU target: the memory of `packed`
  int64_t remaining = 0;             // positions not yet finished
  std::vector<uint8_t> ok;           // per position in the batch: 1 loaded, 0 skipped (bad file)
  std::vector<std::exception_ptr> errors;  // per position: the error, when loading failed and not skipped
};

struct Loader::State {
  mutable std::mutex mutex;
  std::condition_variable work_cv;  // workers: work became available, or shutdown
  std::condition_variable done_cv;  // consumer: a position finished

  bool shutdown = false;
  bool started = false;  // start_epoch was called at least once
  bool active = false;   // the current epoch still hands out work / batches
  uint64_t generation = 0;
  int in_flight = 0;  // positions being processed by workers

  // The current epoch.
  int64_t epoch = 0;
  std::vector<int64_t> order;       // sample index per position
  std::vector<int32_t> occurrence;  // per position: how many times its sample came earlier in this epoch
  int64_t end = 0;                  // positions to load (order.size(), less a dropped last batch)
  int64_t num_batches = 0;
  int64_t next_position = 0;  // next position to hand to a worker
  int64_t consumed = 0;       // batches handed out by next()

  std::vector<BatchSlot> slots;
  int64_t image_floats = 0;                        // 3 * crop * crop
  int64_t region_bytes = 0;                        // device transforms: one packed sample's region
  std::unique_ptr<DeviceTransformer> transformer;  // device transforms on a CUDA target

  // Across epochs.
  std::vector<std::shared_ptr<const Image>> cache;  // per sample, under cache_mutex
  std::mutex cache_mutex;
  int64_t cached_images = 0, cached_bytes = 0, cache_full_decodes = 0;  // under cache_mutex
  // cache_on_device: per sample, under cache_mutex. kPending: travelling whole in a packed batch not yet
  // expanded; kReady: in the cache (the expansion that copies it there is queued); kNever: too large to
  // travel whole in one region.
  enum CacheState : uint8_t { kNone, kPending, kReady, kNever };
  struct DeviceCached {
    uint8_t* address = nullptr;  // reserved for this image, once it had room
    int64_t height = 0, width = 0;
    CacheState state = kNone;
  };
  std::vector<DeviceCached> device_cache;
  int64_t device_reserved = 0, device_cached_images = 0, device_cached_bytes = 0;  // under cache_mutex
  std::vector<std::unique_ptr<uint8_t[]>> host_arena;  // the CPU target's "device" cache memory
  std::vector<uint8_t> bad;                            // per sample: known undecodable (skip_bad)
  std::set<std::string> bad_files;
  std::vector<WorkerStats> worker_stats;
  std::vector<std::thread> threads;

  int64_t batch_begin(int64_t b, int64_t batch_size) const { return b * batch_size; }
  int64_t batch_end(int64_t b, int64_t batch_size) const { return std::min(end, (b + 1) * batch_size); }
};

Loader::Loader(std::vector<LoaderSample> samples, LoaderOptions options)
    : samples_(std::move(samples)), options_(std::move(options)), state_(std::make_unique<State>()) {
  THAW_CHECK(!samples_.empty(), "Loader: the sample list is empty");
  THAW_CHECK(samples_.size() < (uint64_t(1) << 32), "Loader: {} samples; at most 2^32 - 1 are supported",
             samples_.size());
  THAW_CHECK(options_.batch_size >= 1, "Loader: batch_size must be >= 1, got {}", options_.batch_size);
  THAW_CHECK(options_.threads >= 1, "Loader: threads must be >= 1, got {}", options_.threads);
  THAW_CHECK(options_.prefetch >= 1, "Loader: prefetch must be >= 1, got {}", options_.prefetch);
  THAW_CHECK(options_.transform.crop_size >= 1, "Loader: crop_size must be >= 1, got {}",
             options_.transform.crop_size);
  if (options_.device.is_cuda()) {
    THAW_CHECK(cuda_runtime::built_with_cuda(),
               "Loader: batches for {} requested, but this thaw was built without the CUDA backend; use the "
               "CPU or rebuild with -DTHAW_CUDA=ON",
               options_.device.str());
    THAW_CHECK(options_.device.index < cuda_runtime::device_count(),
               "Loader: {} requested, but {} CUDA device(s) found", options_.device.str(),
               cuda_runtime::device_count());
  }

  THAW_CHECK(!options_.cache_on_device || (options_.cache && options_.device_transforms),
             "Loader: cache_on_device keeps the decoded-image cache on the device: it needs cache and "
             "device_transforms on");

  State& s = *state_;
  const int64_t crop = options_.transform.crop_size;
  s.image_floats = 3 * crop * crop;
  s.slots.resize(size_t(options_.prefetch));
  if (options_.device_transforms) {
    s.region_bytes = packed_region_bytes(options_.transform);
    if (options_.device.is_cuda())
      s.transformer = std::make_unique<DeviceTransformer>(
          options_.transform, s.region_bytes, options_.batch_size, int(options_.prefetch), options_.device);
    if (s.transformer && options_.cache_max_bytes > 0)
      s.transformer->set_cache_limit(options_.cache_max_bytes);
  }
  for (size_t k = 0; k < s.slots.size(); ++k) {
    BatchSlot& slot = s.slots[k];
    if (s.transformer) {
      slot.packed = s.transformer->host_regions(int(k));
    } else if (options_.device_transforms) {
      slot.packed_host.resize(size_t(options_.batch_size * s.region_bytes));
      slot.packed = slot.packed_host.data();
    } else if (options_.device.is_cuda()) {
      slot.pinned = static_cast<float*>(
          cuda_runtime::allocate_pinned(size_t(options_.batch_size * s.image_floats) * sizeof(float)));
    } else {
      slot.images = Tensor::empty({options_.batch_size, 3, crop, crop});
    }
    slot.ok.assign(size_t(options_.batch_size), 0);
    slot.errors.assign(size_t(options_.batch_size), nullptr);
  }
  if (options_.cache) s.cache.resize(samples_.size());
  if (options_.cache_on_device) s.device_cache.resize(samples_.size());
  s.bad.assign(samples_.size(), 0);
  s.worker_stats.resize(size_t(options_.threads));

  // Start the workers last, when everything they use exists.
  try {
    for (int w = 0; w < options_.threads; ++w)
      s.threads.emplace_back([this, w] { work(w); });
  } catch (...) {
    stop_workers();
    throw;
  }
}

// One worker: take the next position inside the window, load it into its slot, report; until shutdown.
void Loader::work(int w) {
  State& st = *state_;
  const LoaderOptions& opt = options_;
  const int64_t bs = opt.batch_size;
  std::unique_lock<std::mutex> lock(st.mutex);
  for (;;) {
    st.work_cv.wait(lock, [&] {
      return st.shutdown ||
             (st.active && st.next_position < st.end && st.next_position / bs < st.consumed + opt.prefetch);
    });
    if (st.shutdown) return;
    const int64_t p = st.next_position++;
    const uint64_t generation = st.generation;
    const int64_t index = st.order[size_t(p)];
    const int32_t occurrence = st.occurrence[size_t(p)];
    const int64_t epoch = st.epoch;
    const bool known_bad = st.bad[size_t(index)] != 0;
    const int slot_index = int((p / bs) % opt.prefetch);
    BatchSlot& slot = st.slots[size_t(slot_index)];
    float* out = opt.device_transforms ? nullptr
                                       : (slot.pinned != nullptr ? slot.pinned : slot.images.data<float>()) +
                                             (p % bs) * st.image_floats;
    ++st.in_flight;
    lock.unlock();

    // ---- load one image, without the lock ----
    WorkerStats delta;
    bool ok = false, skipped = false;
    std::exception_ptr error;
    const std::string& path = samples_[size_t(index)].path;
    std::shared_ptr<const Image> image;
    State::DeviceCached in_device_cache;  // cache_on_device: a kReady entry means no decoding
    if (opt.cache_on_device) {
      std::lock_guard<std::mutex> guard(st.cache_mutex);
      in_device_cache = st.device_cache[size_t(index)];
    }
    bool on_device = in_device_cache.state == State::kReady;
    auto t0 = std::chrono::steady_clock::now();
    if (known_bad) {
      skipped = true;
    } else if (on_device) {
      ++delta.cache_hits;
    } else {
      try {
        image = cached_or_decoded(index, delta);
      } catch (const std::exception& e) {
        if (opt.skip_bad) {
          skipped = true;
        } else {
          error = error_naming(path, e);
        }
      }
    }
    delta.decode_seconds = seconds_since(t0);
    if ((image || on_device) && st.transformer) {
      // The slot's host buffer is written again only after its last upload (a device error here is not the
      // file's: it is reported as it is).
      try {
        st.transformer->wait_until_writable(slot_index);
      } catch (...) {
        error = std::current_exception();
        image.reset();
        on_device = false;
      }
    }
    if (image || on_device) {
      t0 = std::chrono::steady_clock::now();
      bool claimed = false;
      try {
        const int64_t height = on_device ? in_device_cache.height : image->height;
        const int64_t width = on_device ? in_device_cache.width : image->width;
        Generator gen(opt.seed, (uint64_t(epoch) << 32) | uint64_t(index));
        SampleParams params;
        for (int32_t k = 0; k <= occurrence; ++k)
          params = draw_sample_params(opt.transform, height, width, gen);
        if (opt.device_transforms) {
          uint8_t* region = slot.packed + (p % bs) * st.region_bytes;
          uint8_t* place = on_device || !opt.cache_on_device ? nullptr : claim_device_cache(index, *image);
          claimed = place != nullptr;
          if (on_device) {
            pack_cached_sample(height, width, in_device_cache.address, opt.transform, params, region,
                               st.region_bytes);
          } else if (!claimed || pack_sample_for_cache(*image, place, opt.transform, params, region,
                                                       st.region_bytes) < 0) {
            if (claimed) release_device_cache_claim(index);
            claimed = false;
            pack_sample(*image, opt.transform, params, region, st.region_bytes);
          }
          delta.packed = 1;
        } else {
          transform_to_chw(*image, opt.transform, params, out);
        }
        ok = true;
      } catch (const std::exception& e) {
        if (claimed) release_device_cache_claim(index);
        error = error_naming(path, e);
      }
      delta.transform_seconds = seconds_since(t0);
    }
    if (skipped) delta.skipped = 1;

    // ---- report ----
    lock.lock();
    --st.in_flight;
    WorkerStats& mine = st.worker_stats[size_t(w)];
    mine.decoded += delta.decoded;
    mine.cache_hits += delta.cache_hits;
    mine.skipped += delta.skipped;
    mine.packed += delta.packed;
    mine.decode_seconds += delta.decode_seconds;
    mine.transform_seconds += delta.transform_seconds;
    if (skipped && !known_bad) {
      st.bad[size_t(index)] = 1;
      st.bad_files.insert(path);
    }
    if (generation == st.generation) {
      slot.ok[size_t(p % bs)] = ok ? 1 : 0;
      slot.errors[size_t(p % bs)] = error;
      --slot.remaining;
    }
    st.done_cv.notify_all();
  }
}

// Sample `index`'s image: from the cache, or decoded (and, with the cache on, downscaled and cached).
// Throws what decode_image_file throws.
std::shared_ptr<const Image> Loader::cached_or_decoded(int64_t index, WorkerStats& delta) {
  State& st = *state_;
  const LoaderOptions& opt = options_;
  if (opt.cache) {
    std::lock_guard<std::mutex> guard(st.cache_mutex);
    if (st.cache[size_t(index)]) {
      ++delta.cache_hits;
      return st.cache[size_t(index)];
    }
  }
  Image decoded = decode_image_file(samples_[size_t(index)].path);
  ++delta.decoded;
  if (!opt.cache && !opt.device_transforms) return std::make_shared<const Image>(std::move(decoded));
  const int64_t target = std::max(opt.transform.resize_size, opt.transform.crop_size);
  if (std::min(decoded.height, decoded.width) > target) decoded = resize_shorter_side(decoded, target);
  auto shared = std::make_shared<const Image>(std::move(decoded));
  if (!opt.cache || opt.cache_on_device) return shared;  // on the device: claim_device_cache keeps it
  std::lock_guard<std::mutex> guard(st.cache_mutex);
  if (!st.cache[size_t(index)]) {  // another worker may have decoded the same sample (a repeated index)
    const int64_t bytes = int64_t(shared->pixels.size());
    if (opt.cache_max_bytes > 0 && st.cached_bytes + bytes > opt.cache_max_bytes) {
      ++st.cache_full_decodes;  // full: used once, decoded again next epoch
      return shared;
    }
    st.cache[size_t(index)] = shared;
    ++st.cached_images;
    st.cached_bytes += int64_t(shared->pixels.size());
  }
  return st.cache[size_t(index)];
}

// cache_on_device: reserves the image's place in the device's cache and marks it pending (it travels whole in
// this sample's region), or returns nullptr: pending or refused already, too large to travel whole, or the
// cache is at its bound (counted in cache_full_decodes).
uint8_t* Loader::claim_device_cache(int64_t index, const Image& image) {
  State& st = *state_;
  const LoaderOptions& opt = options_;
  std::lock_guard<std::mutex> guard(st.cache_mutex);
  State::DeviceCached& entry = st.device_cache[size_t(index)];
  if (entry.state != State::kNone) {
    if (entry.state == State::kNever) ++st.cache_full_decodes;
    return nullptr;
  }
  if (whole_image_packed_bytes(opt.transform, image.height, image.width) > st.region_bytes) {
    entry.state = State::kNever;
    ++st.cache_full_decodes;
    return nullptr;
  }
  if (entry.address == nullptr) {
    const auto bytes = int64_t(image.pixels.size());
    if (opt.cache_max_bytes > 0 && st.device_reserved + bytes > opt.cache_max_bytes) {
      ++st.cache_full_decodes;
      return nullptr;
    }
    uint8_t* address = nullptr;
    if (st.transformer) {
      address = st.transformer->allocate_cache(bytes);
    } else {
      st.host_arena.push_back(std::make_unique<uint8_t[]>(size_t(bytes)));
      address = st.host_arena.back().get();
    }
    if (address == nullptr) {  // the device is out of memory: as if the bound were reached
      ++st.cache_full_decodes;
      return nullptr;
    }
    entry.address = address;
    entry.height = image.height;
    entry.width = image.width;
    st.device_reserved += bytes;
  }
  entry.state = State::kPending;
  return entry.address;
}

void Loader::release_device_cache_claim(int64_t index) noexcept {
  std::lock_guard<std::mutex> guard(state_->cache_mutex);
  State::DeviceCached& entry = state_->device_cache[size_t(index)];
  if (entry.state == State::kPending) entry.state = State::kNone;
}

// cache_on_device, after a batch (positions begin .. begin + count - 1, packed at regions) was expanded: the
// images its regions carried whole are in the cache now (or will be before any later expansion runs).
void Loader::mark_device_cached(const uint8_t* regions, int64_t begin, int64_t count) {
  State& st = *state_;
  std::lock_guard<std::mutex> guard(st.cache_mutex);
  for (int64_t k = 0; k < count; ++k) {
    if (!packed_carries_image(regions + k * st.region_bytes)) continue;
    State::DeviceCached& entry = st.device_cache[size_t(st.order[size_t(begin + k)])];
    if (entry.state != State::kPending) continue;
    entry.state = State::kReady;
    ++st.device_cached_images;
    st.device_cached_bytes += entry.height * entry.width * 3;
  }
}

void Loader::stop_workers() noexcept {
  State& s = *state_;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    s.shutdown = true;
    s.active = false;
    ++s.generation;
  }
  s.work_cv.notify_all();
  for (std::thread& t : s.threads)
    if (t.joinable()) t.join();
  s.threads.clear();
}

Loader::~Loader() {
  stop_workers();
  for (BatchSlot& slot : state_->slots)
    cuda_runtime::release_pinned(slot.pinned);
}

void Loader::start_epoch(int64_t epoch) {
  std::vector<int64_t> order;
  if (options_.shuffle) {
    order = shuffled_order(size(), options_.seed, epoch);
  } else {
    order.resize(samples_.size());
    for (size_t i = 0; i < order.size(); ++i)
      order[i] = int64_t(i);
  }
  start_epoch(epoch, std::move(order));
}

void Loader::start_epoch(int64_t epoch, std::vector<int64_t> order) {
  THAW_CHECK(epoch >= 0 && epoch < (int64_t(1) << 31), "Loader::start_epoch: epoch {} is not in [0, 2^31)",
             epoch);
  std::vector<int32_t> occurrence(order.size());
  {
    std::vector<int32_t> seen(samples_.size(), 0);
    for (size_t p = 0; p < order.size(); ++p) {
      const int64_t i = order[p];
      THAW_CHECK(i >= 0 && i < size(), "Loader::start_epoch: order[{}] = {} is not a sample index in [0, {})",
                 p, i, size());
      occurrence[p] = seen[size_t(i)]++;
    }
  }
  const int64_t bs = options_.batch_size;
  const int64_t n = int64_t(order.size());
  const int64_t num_batches = options_.drop_last ? n / bs : (n + bs - 1) / bs;

  State& s = *state_;
  std::unique_lock<std::mutex> lock(s.mutex);
  // Cancel the previous epoch and wait for the images in flight (their buffers are about to be reused).
  s.active = false;
  ++s.generation;
  s.done_cv.wait(lock, [&] { return s.in_flight == 0; });
  {
    // Images that were travelling whole in batches of the cancelled epoch never reached the cache.
    std::lock_guard<std::mutex> guard(s.cache_mutex);
    for (State::DeviceCached& entry : s.device_cache)
      if (entry.state == State::kPending) entry.state = State::kNone;
  }

  s.started = true;
  s.epoch = epoch;
  s.order = std::move(order);
  s.occurrence = std::move(occurrence);
  s.num_batches = num_batches;
  s.end = std::min(n, num_batches * bs);
  s.next_position = 0;
  s.consumed = 0;
  for (int64_t b = 0; b < options_.prefetch; ++b) {
    BatchSlot& slot = s.slots[size_t(b)];
    slot.remaining = b < num_batches ? s.batch_end(b, bs) - s.batch_begin(b, bs) : 0;
  }
  s.active = true;
  lock.unlock();
  s.work_cv.notify_all();
}

int64_t Loader::batches_in_epoch() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->num_batches;
}

bool Loader::next(Batch& batch) {
  State& s = *state_;
  const int64_t bs = options_.batch_size;
  const int64_t crop = options_.transform.crop_size;
  std::unique_lock<std::mutex> lock(s.mutex);
  THAW_CHECK(s.started, "Loader::next: call start_epoch(epoch) before asking for batches");
  for (;;) {
    if (!s.active || s.consumed >= s.num_batches) return false;
    const int64_t b = s.consumed;
    BatchSlot& slot = s.slots[size_t(b % options_.prefetch)];
    s.done_cv.wait(lock, [&] { return slot.remaining == 0; });
    const int64_t begin = s.batch_begin(b, bs), count = s.batch_end(b, bs) - begin;

    // The first error of the batch (by position, so the same file is reported whatever the thread count)
    // ends the epoch.
    for (int64_t k = 0; k < count; ++k) {
      if (slot.errors[size_t(k)]) {
        std::exception_ptr error = slot.errors[size_t(k)];
        s.active = false;
        ++s.generation;
        lock.unlock();
        std::rethrow_exception(error);
      }
    }
    std::vector<int64_t> kept;  // positions in the batch that loaded
    for (int64_t k = 0; k < count; ++k)
      if (slot.ok[size_t(k)]) kept.push_back(k);
    const int64_t n = int64_t(kept.size());
    std::vector<int64_t> indices(kept.size()), labels(kept.size());
    for (size_t j = 0; j < kept.size(); ++j) {
      indices[j] = s.order[size_t(begin + kept[j])];
      labels[j] = samples_[size_t(indices[j])].label;
    }
    lock.unlock();

    // Workers cannot touch this slot until `consumed` moves past it.
    Tensor images, label_tensor;
    if (options_.device_transforms) {
      try {
        const int slot_index = int(b % options_.prefetch);
        if (s.transformer) s.transformer->wait_until_writable(slot_index);
        for (int64_t k = 0, j = 0; k < count; ++k)
          set_packed_output(slot.packed + k * s.region_bytes, slot.ok[size_t(k)] ? int32_t(j++) : -1);
        if (n > 0) {
          images = Tensor::empty({n, 3, crop, crop}, DType::Float32, options_.device);
          if (s.transformer) {
            label_tensor = Tensor::empty({n}, DType::Int64, options_.device);
            s.transformer->run(slot_index, count, labels, images, label_tensor);
          } else {
            unpack_batch_cpu(slot.packed, s.region_bytes, count, images.data<float>());
          }
        }
        if (options_.cache_on_device) mark_device_cached(slot.packed, begin, count);
      } catch (...) {
        // A device error (or no memory for the batch): the epoch ends here, as for a file's error; the slot
        // is not handed out again.
        lock.lock();
        s.active = false;
        ++s.generation;
        throw;
      }
    } else if (n > 0) {
      const size_t image_bytes = size_t(s.image_floats) * sizeof(float);
      float* src = slot.pinned != nullptr ? slot.pinned : slot.images.data<float>();
      if (options_.device.is_cpu() && n == bs) {
        images = slot.images;  // full and complete: hand the buffer itself out, give the slot a new one
        slot.images = Tensor::empty({bs, 3, crop, crop});
      } else {
        // Compact the loaded images to the front (destinations never pass their sources).
        for (int64_t j = 0; j < n; ++j)
          if (kept[size_t(j)] != j)
            std::memmove(src + j * s.image_floats, src + kept[size_t(j)] * s.image_floats, image_bytes);
        images = Tensor::empty({n, 3, crop, crop}, DType::Float32, options_.device);
        if (options_.device.is_cuda()) {
          cuda_runtime::copy_to_device(images.raw_data(), src, size_t(n) * image_bytes);
        } else {
          std::memcpy(images.raw_data(), src, size_t(n) * image_bytes);
        }
      }
    }

    lock.lock();
    // Release the slot for batch b + prefetch.
    const int64_t refill = b + options_.prefetch;
    slot.remaining = refill < s.num_batches ? s.batch_end(refill, bs) - s.batch_begin(refill, bs) : 0;
    s.consumed = b + 1;
    s.work_cv.notify_all();
    if (n == 0) continue;  // every file of this batch was skipped
    lock.unlock();
    batch.images = images;
    batch.labels =
        label_tensor.defined() ? label_tensor : Tensor::from_data<int64_t>({n}, labels, options_.device);
    batch.indices = std::move(indices);
    return true;
  }
}

LoaderStats Loader::stats() const {
  State& s = *state_;
  LoaderStats out;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    out.workers = s.worker_stats;
    out.bad_files.assign(s.bad_files.begin(), s.bad_files.end());
  }
  {
    std::lock_guard<std::mutex> lock(s.cache_mutex);
    out.cached_images = s.cached_images;
    out.cached_bytes = s.cached_bytes;
    out.cache_full_decodes = s.cache_full_decodes;
    out.device_cached_images = s.device_cached_images;
    out.device_cached_bytes = s.device_cached_bytes;
  }
  if (s.transformer) {
    const DeviceTransformer::Times t = s.transformer->times();
    out.device_upload_seconds = t.upload_seconds;
    out.device_transform_seconds = t.transform_seconds;
    out.device_timed_batches = t.batches;
  }
  for (const WorkerStats& w : out.workers) {
    out.decoded += w.decoded;
    out.cache_hits += w.cache_hits;
    out.skipped += w.skipped;
    out.packed += w.packed;
  }
  return out;
}

std::string LoaderStats::summary() const {
  std::string text = fmt::format(
      "loader: {} images decoded, {} from the cache ({} images, {:.1f} MiB cached), "
      "{} skipped\n",
      decoded, cache_hits, cached_images, cached_bytes / 1048576.0, skipped);
  if (packed > 0) text += fmt::format("  {} images packed for the transforms on the device\n", packed);
  if (device_timed_batches > 0)
    text += fmt::format(
        "  on the device ({} batches timed): uploading {:.3f} s, transforming {:.3f} s of GPU time\n",
        device_timed_batches, device_upload_seconds, device_transform_seconds);
  if (device_cached_images > 0)
    text += fmt::format("  the decoded-image cache is on the device: {} images, {:.1f} MiB\n",
                        device_cached_images, device_cached_bytes / 1048576.0);
  if (cache_full_decodes > 0)
    text += fmt::format("  the cache is full: {} decodes of images it could not keep\n", cache_full_decodes);
  for (size_t w = 0; w < workers.size(); ++w) {
    const WorkerStats& ws = workers[w];
    text += fmt::format(
        "  worker {}: {} decoded, {} cache hits, {} skipped; {:.2f} s decoding, {:.2f} s "
        "transforming\n",
        w, ws.decoded, ws.cache_hits, ws.skipped, ws.decode_seconds, ws.transform_seconds);
  }
  if (!bad_files.empty()) {
    text += fmt::format("  {} undecodable file(s) skipped:\n", bad_files.size());
    for (const std::string& f : bad_files)
      text += fmt::format("    {}\n", f);
  }
  return text;
}

}  // namespace thaw::data
