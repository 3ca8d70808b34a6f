// Device transforms: the report's transforms (data/transforms.h) applied to a whole batch by the GPU, from
// parameters the host drew, with the same result as the CPU loader, bit for bit.
//
// The work is split in two. A loader worker packs each sample (pack_sample): from the decoded image and its
// SampleParams it writes the sizes, the flip, PIL's rotation matrix, the jitter factors in the order they
// apply, the resampling taps, and only the source pixels the output needs (the crop box and the filter's
// margin) into a fixed-size region of the batch buffer. The device then expands the batch's regions into
// normalized float images (DeviceTransformer::run; the steps are listed in data/packed_sample.h). On the CPU,
// unpack_batch_cpu expands them the same way: the specification the tests hold the kernels to, and the
// loader's path when device_transforms is asked for a CPU target.
//
// The source image must be at most S = max(resize_size, crop_size) on its shorter side, as the loader's
// decoded cache stores it; that bounds a packed sample (packed_region_bytes). The result then equals
// transform_to_chw(image, config, params) exactly: same integer taps, same 8-bit rounding between steps, and
// floating-point steps that are never contracted (data/pil_pixels.h).
//
// Streams (CUDA): the host regions of a batch are uploaded on the transformer's own stream, the expansion
// runs on thaw's compute stream after the upload (an event, no host wait), and a slot's host regions are
// written again only after their upload has finished (wait_until_writable). That upload itself waits until
// the slot's previous expansion has run on the compute stream, behind the training kernels queued before
// it; so the host waits only when it is about two prefetch windows ahead of the GPU: back-pressure, not a
// synchronisation per batch.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "core/device.h"
#include "core/tensor.h"
#include "data/image.h"
#include "data/transforms.h"

namespace thaw::data {

// The most rows (and columns) of source pixels a packed sample of `config` holds.
int64_t packed_max_window(const TransformConfig& config);

// The region size (bytes, a multiple of 256) that holds any packed sample of `config` whose source image is
// at most max(resize_size, crop_size) on its shorter side.
int64_t packed_region_bytes(const TransformConfig& config);

// Writes sample (image, params) into region (region_bytes from packed_region_bytes, 16-byte aligned) and
// returns the bytes used; output_index is left at -1 (the consumer numbers the kept samples). With
// config.augment the crop box must lie inside the image (draw_sample_params's always does). Throws
// thaw::Error when the image is larger than the bound above.
int64_t pack_sample(const Image& image, const TransformConfig& config, const SampleParams& params,
                    uint8_t* region, int64_t region_bytes);

// The decoded-image cache on the device (LoaderOptions::cache_on_device): an image is uploaded whole once,
// in the region of its first sample, and copied from there to cache_address (device memory, or host memory
// for the CPU twin) by the expansion; later samples of it carry only their parameters and taps.
//   pack_sample_for_cache: like pack_sample, with the whole image; returns -1 (and writes nothing useful)
//     when the whole image does not fit the region;
//   pack_cached_sample: the image (height x width) is at cache_address, placed there by an earlier batch's
//     expansion on the same stream.
// whole_image_packed_bytes: an upper bound of what pack_sample_for_cache needs for a height x width image.
int64_t pack_sample_for_cache(const Image& image, uint8_t* cache_address, const TransformConfig& config,
                              const SampleParams& params, uint8_t* region, int64_t region_bytes);
int64_t pack_cached_sample(int64_t height, int64_t width, const uint8_t* cache_address,
                           const TransformConfig& config, const SampleParams& params, uint8_t* region,
                           int64_t region_bytes);
int64_t whole_image_packed_bytes(const TransformConfig& config, int64_t height, int64_t width);

// Whether the region's sample carries its whole image into the cache (was packed by pack_sample_for_cache).
bool packed_carries_image(const uint8_t* region);

// Marks region as holding no sample (a skipped file) / as batch entry output_index.
void set_packed_output(uint8_t* region, int32_t output_index);

// The CPU twin of DeviceTransformer::run: copies the whole images that regions carry into the cache, then
// expands the `count` regions at regions, regions + region_bytes, ...
// (those with output_index >= 0) into out, float32 (n, 3, crop, crop) with n = 1 + the largest output_index.
void unpack_batch_cpu(const uint8_t* regions, int64_t region_bytes, int64_t count, float* out);

// Batch buffers and kernels on one CUDA device. Built without CUDA, the constructor throws.
class DeviceTransformer {
 public:
  // `slots` batch buffers of batch_size regions of region_bytes each, in page-locked host memory and on
  // `device`, plus the scratch images of one batch of crop x crop outputs.
  DeviceTransformer(const TransformConfig& config, int64_t region_bytes, int64_t batch_size, int slots,
                    Device device);
  ~DeviceTransformer();  // waits for the device to finish with the buffers, then frees them
  DeviceTransformer(const DeviceTransformer&) = delete;
  DeviceTransformer& operator=(const DeviceTransformer&) = delete;

  uint8_t* host_regions(int slot);  // batch_size regions of region_bytes
  // Blocks until the device has copied everything it was given from this slot's host buffers: call before
  // writing them again.
  void wait_until_writable(int slot);
  // GPU time spent so far on the uploads (copy stream) and on the expansions (compute stream), from CUDA
  // events around each batch's work. Never waits: a batch still in flight is added by a later call, and one
  // whose events had not completed when its slot came round again is left out (`batches` counts those in).
  struct Times {
    double upload_seconds = 0, transform_seconds = 0;
    int64_t batches = 0;
  };
  Times times();
  // Device memory for the decoded-image cache, kept until the transformer is destroyed; nullptr when the
  // cache's limit is reached or the device has no room (then no more is asked for). The limit is `bytes` from
  // set_cache_limit, else half the device memory free when the transformer was made. Thread-safe.
  uint8_t* allocate_cache(int64_t bytes);
  void set_cache_limit(int64_t bytes);  // bytes > 0
  // Copies the whole images the slot's first `count` regions carry into the cache, then expands those regions
  // (output_index numbered 0 .. n-1 or -1) into `images`, float32
  // (n, 3, crop, crop) on the device, and uploads `labels` (n values) into `label_tensor`, int64 (n,) on the
  // device. Asynchronous: returns once the work is queued.
  void run(int slot, int64_t count, const std::vector<int64_t>& labels, Tensor& images, Tensor& label_tensor);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace thaw::data
