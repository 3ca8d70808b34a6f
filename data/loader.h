// Loader: a multi-threaded image loader that turns a list of (image path, label) samples into batches of
// normalized float images, in a deterministic order, ahead of the consumer.
//
// Each epoch visits the samples in an order: a seeded shuffle (shuffled_order below) or one given by the
// caller (e.g. a weighted over-sampling sampler; indices may repeat). Worker threads decode each image (or
// take it from the decoded-image cache), draw its augmentation from its own random stream and write the
// transformed image straight into its slot of a batch buffer; at most `prefetch` batches are in flight.
// next() hands the batches out in order. Every random draw depends only on (seed, epoch, sample index), so
// the batches are bit-identical for any number of threads.
//
// Randomness (documented so that other implementations, e.g. a device-side transform, can reproduce it):
//   order of epoch e (shuffle on):  shuffled_order(n, seed, e), Fisher-Yates with Generator(seed, e)
//   augmentation of sample i in epoch e:  draw_sample_params(config, h, w, Generator(seed, (e << 32) | i));
//     when an explicit order repeats sample i, its k-th occurrence (k = 0, 1, ...) in that epoch uses the
//     (k+1)-th draw from the same generator, so duplicates are augmented differently.
//
// Decoded-image cache (options.cache): each decoded image is kept in RAM as uint8, downscaled with
// resize_shorter_side to S = max(resize_size, crop_size) when its shorter side is larger than S, and with
// the cache on every epoch (the first too) transforms that cached image. The cached path therefore
// resamples once more than an uncached one (a bilinear downscale to S, then the transform's own resampling),
// so its batches differ slightly from an uncached loader's; they do not depend on the thread count or on
// whether a given image was a cache hit. About 0.26 MB per pets image at S = 256 (about 2 GB for the 7,390
// images of the full dataset). options.cache_max_bytes bounds it: once the next image would pass the bound,
// images not yet cached are decoded (and downscaled to S alike, so the batches stay the same) every epoch;
// stats().cache_full_decodes counts those decodes.
//
// Bad files: an image that cannot be decoded is an error naming the file, raised from next() for the batch
// that holds it, which also ends the epoch. With options.skip_bad it is left out of its batch instead (the
// batch is then smaller), counted, and listed in stats(); a batch left with no sample is skipped.
//
// Device: batches are assembled on the host; for a CUDA target in page-locked (pinned) buffers, copied to
// the device by next() (a synchronous copy). For the CPU the batch tensor is handed out without a copy.
//
// Device transforms (options.device_transforms): workers only decode (downscaling to S as the cache does,
// whether the cache is on or not) and pack each sample: its parameters, resampling taps and the source
// pixels its crop needs (data/device_transforms.h). For a CUDA target next() queues the batch's upload on
// a copy stream and the transforms as kernels on the compute stream, and returns without waiting for the
// device (it waits only when the host runs about two prefetch windows ahead of the GPU); for a CPU target
// next() expands the batch itself (the same code as the kernels' specification, one thread: for tests).
// Either way the batches equal the CPU loader's with cache = true, bit for bit. With options.cache_on_device
// as well (it needs cache and device_transforms), the decoded-image cache lives in the device's memory
// instead of RAM: an image travels whole, once, in the batch of its first sample and is copied into the cache
// there; its later samples carry only their parameters and taps (a few KB instead of a few hundred), and no
// worker decodes it again. The same bound (cache_max_bytes) applies; images past it, or too large to travel
// whole in one region, are decoded every epoch (cache_full_decodes counts them). On a CPU target the "device"
// cache is host memory, so the tests can check this path without a GPU.
//
// Threads: one Loader is used by one consumer thread. Destroying it, or starting a new epoch, while workers
// are busy cancels the remaining work, waits for the images being processed (at most one per worker) and
// returns; nothing is leaked.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/tensor.h"
#include "data/transforms.h"

namespace thaw::data {

struct LoaderSample {
  std::string path;   // image file (JPEG, PNG, GIF or BMP, whatever its extension)
  int64_t label = 0;  // class index
};

struct LoaderOptions {
  int64_t batch_size = 32;
  int threads = 2;         // worker threads, >= 1
  bool shuffle = true;     // seeded shuffle per epoch (ignored when start_epoch is given an order)
  bool drop_last = false;  // drop the last batch when it is smaller than batch_size
  uint64_t seed = 0;
  TransformConfig transform;
  bool cache = false;              // keep decoded images in RAM (see the header comment)
  int64_t cache_max_bytes = 0;     // the cache's bound in bytes of pixels; 0: none
  bool skip_bad = false;           // skip and count undecodable files instead of failing
  int64_t prefetch = 4;            // batches decoded ahead of the consumer, >= 1
  bool device_transforms = false;  // run the transforms on `device` (see the header comment)
  bool cache_on_device = false;    // keep the decoded images in `device`'s memory (see the header comment)
  Device device = Device::cpu();
};

struct Batch {
  Tensor images;                 // float32 (N, 3, crop, crop) on options.device, normalized
  Tensor labels;                 // int64 (N,) on options.device
  std::vector<int64_t> indices;  // (N) indices into the loader's samples, in batch order
};

struct WorkerStats {
  int64_t decoded = 0;           // images decoded from file
  int64_t cache_hits = 0;        // images taken from the cache
  int64_t skipped = 0;           // undecodable files skipped (skip_bad)
  int64_t packed = 0;            // samples packed for the device transforms
  double decode_seconds = 0;     // reading + decoding (+ the cache's downscale)
  double transform_seconds = 0;  // drawing parameters + transform_to_chw (device transforms: + packing)
};

struct LoaderStats {
  int64_t decoded = 0, cache_hits = 0, skipped = 0, packed = 0;  // totals over all epochs and workers
  int64_t cached_images = 0;                                     // images now in the cache
  int64_t cached_bytes = 0;
  int64_t cache_full_decodes = 0;  // images decoded but not kept: the cache was at cache_max_bytes
  int64_t device_cached_images = 0, device_cached_bytes = 0;  // cache_on_device: images in the device's cache
  // Device transforms on CUDA: GPU time of the uploads and of the transform kernels (CUDA events), and the
  // batches those times cover.
  double device_upload_seconds = 0, device_transform_seconds = 0;
  int64_t device_timed_batches = 0;
  std::vector<std::string> bad_files;  // every file found undecodable, sorted, each once
  std::vector<WorkerStats> workers;    // one per worker thread
  std::string summary() const;         // a few lines for a log: totals, per-worker times, bad files
};

// The seeded shuffle of 0..n-1 for an epoch: Fisher-Yates from the back with Generator(seed, epoch),
// j = next_int(0, i + 1) for i = n-1 .. 1.
std::vector<int64_t> shuffled_order(int64_t n, uint64_t seed, int64_t epoch);

class Loader {
 public:
  // requires: samples non-empty, fewer than 2^32; batch_size, threads, prefetch >= 1; a CUDA device only in
  // a build with CUDA. Starts the worker threads (idle until start_epoch).
  Loader(std::vector<LoaderSample> samples, LoaderOptions options);
  ~Loader();  // cancels any running epoch and joins the workers
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Starts epoch `epoch` (>= 0, < 2^31) in the seeded order (or 0..n-1 when shuffle is off), cancelling
  // whatever is left of the previous one.
  void start_epoch(int64_t epoch);
  // Starts epoch `epoch` visiting `order` (indices into samples, each in [0, n), repeats allowed).
  void start_epoch(int64_t epoch, std::vector<int64_t> order);

  // The next batch of the current epoch, in order; false when the epoch is over. Blocks until the batch is
  // ready. Rethrows a worker's error (naming the file) and ends the epoch. Requires start_epoch first.
  bool next(Batch& batch);

  int64_t size() const { return int64_t(samples_.size()); }
  const std::vector<LoaderSample>& samples() const { return samples_; }
  const LoaderOptions& options() const { return options_; }
  int64_t batches_in_epoch() const;  // of the current epoch (before skipping bad files)
  LoaderStats stats() const;

 private:
  struct State;
  void work(int worker);         // one worker thread's loop
  void stop_workers() noexcept;  // cancels the epoch and joins the workers
  std::shared_ptr<const Image> cached_or_decoded(int64_t index, WorkerStats& delta);
  uint8_t* claim_device_cache(int64_t index, const Image& image);  // cache_on_device: a place, or nullptr
  void release_device_cache_claim(int64_t index) noexcept;
  void mark_device_cached(const uint8_t* regions, int64_t begin, int64_t count);
  std::vector<LoaderSample> samples_;
  LoaderOptions options_;
  std::unique_ptr<State> state_;
};

}  // namespace thaw::data
