// DeviceTransformer (data/device_transforms.h) on CUDA: page-locked batch buffers, an upload stream, and the
// five expansion kernels of data/packed_sample.h, one thread per output pixel, on thaw's compute stream (the
// legacy default stream, as kernels/cuda/launch.h).
//
// Ordering, per slot s (no host waits on the compute stream):
//   upload stream:  wait consumed[s] -> copy the packed regions and labels -> record uploaded[s]
//   compute stream: wait uploaded[s] -> rows, columns, rotate, contrast luma, finish, labels -> record
//   consumed[s]
// Workers block on uploaded[s] (wait_until_writable) before packing into the slot's host buffer again.
// The scratch images are shared by all slots: the expansions run one after the other on the compute stream.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <vector>

#include "core/error.h"
#include "data/device_transforms.h"
#include "data/packed_sample.h"
#include "data/transform_parts.h"

namespace thaw::data {

using packed::PackedHeader;

namespace {

constexpr int kThreads = 256;
static_assert(kThreads % 32 == 0, "the luma sum's warp shuffle needs whole warps");
static_assert(sizeof(PackedHeader) % 16 == 0 && alignof(PackedHeader) == 8,
              "the taps follow the header at a 16-byte boundary; host and device agree on its layout");

// Makes the transformer's device current for the calling thread (a loader worker, the consumer, the
// destructor) and restores the thread's previous device at scope exit.
class DeviceScope {
 public:
  explicit DeviceScope(int device) {
    cudaGetDevice(&previous_);
    if (previous_ != device) cudaSetDevice(device);
    device_ = device;
  }
  ~DeviceScope() {
    if (previous_ != device_) cudaSetDevice(previous_);
  }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  int previous_ = 0, device_ = 0;
};

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess)
    fail("CUDA error in the device transforms ({}): {}", what, cudaGetErrorString(status));
}

void check_launch(const char* kernel) {
  check(cudaGetLastError(), kernel);
}

struct BatchArgs {
  const uint8_t* regions;
  int64_t region_bytes;
  int64_t count;
  uint8_t* temp;  // per sample temp_stride bytes: window_h x size x 3
  int64_t temp_stride;
  uint8_t* flipped;  // per sample image_stride bytes: size x size x 3
  uint8_t* rotated;
  int64_t image_stride;
  unsigned long long* luma_sums;  // per sample
  const float* table;             // normalize_table(), 3 x 256
  float* out;                     // (n, 3, size, size)
};

__device__ PackedHeader header_of(const BatchArgs& a, int64_t k) {
  return *reinterpret_cast<const PackedHeader*>(a.regions + k * a.region_bytes);
}

// Pixel indices within one sample fit 32 bits (run() checks it): no 64-bit division per pixel.
__device__ int32_t first_thread() {
  return int32_t(blockIdx.x * blockDim.x + threadIdx.x);
}
__device__ int32_t thread_stride() {
  return int32_t(gridDim.x * blockDim.x);
}

// Calls visit(k, h) for every sample k of the batch that has an output (h its header), the samples spread
// over blockIdx.y; each visit loops over the sample's pixels with first_thread() and thread_stride(). The
// same k for every thread of a block, so a visit may use block-wide or warp-wide operations.
template <typename Visit>
__device__ void for_each_sample(const BatchArgs& a, Visit visit) {
  for (int64_t k = blockIdx.y; k < a.count; k += gridDim.y) {
    const PackedHeader h = header_of(a, k);
    if (h.output_index >= 0) visit(k, h);
  }
}

__global__ void rows_kernel(BatchArgs a) {
  for_each_sample(a, [&](int64_t k, const PackedHeader& h) {
    for (int32_t i = first_thread(); i < h.window_h * h.size; i += thread_stride())
      packed::resample_row_pixel(h, a.regions + k * a.region_bytes, i / h.size, i % h.size,
                                 a.temp + k * a.temp_stride);
  });
}

__global__ void columns_kernel(BatchArgs a) {
  for_each_sample(a, [&](int64_t k, const PackedHeader& h) {
    for (int32_t i = first_thread(); i < h.size * h.size; i += thread_stride())
      packed::resample_column_pixel(h, a.regions + k * a.region_bytes, a.temp + k * a.temp_stride, i / h.size,
                                    i % h.size, a.flipped + k * a.image_stride);
  });
}

__global__ void rotate_kernel(BatchArgs a) {
  for_each_sample(a, [&](int64_t k, const PackedHeader& h) {
    for (int32_t i = first_thread(); i < h.size * h.size; i += thread_stride())
      packed::rotate_or_copy_pixel(h, a.flipped + k * a.image_stride, i / h.size, i % h.size,
                                   a.rotated + k * a.image_stride);
  });
}

// Integer sums: atomics in any order give the same total.
__global__ void contrast_luma_kernel(BatchArgs a) {
  for_each_sample(a, [&](int64_t k, const PackedHeader& h) {
    if (packed::contrast_step(h) == h.jitters) return;  // no contrast in this sample: the same for the block
    unsigned long long sum = 0;
    for (int32_t i = first_thread(); i < h.size * h.size; i += thread_stride())
      sum += packed::contrast_luma(h, a.rotated + k * a.image_stride, i);
    for (int offset = 16; offset > 0; offset /= 2)
      sum += __shfl_down_sync(0xffffffffu, sum, offset);
    if ((threadIdx.x & 31) == 0 && sum != 0) atomicAdd(&a.luma_sums[k], sum);
  });
}

__global__ void finish_kernel(BatchArgs a) {
  for_each_sample(a, [&](int64_t k, const PackedHeader& h) {
    const int32_t n = h.size * h.size;
    const int mean = packed::contrast_step(h) < h.jitters ? packed::contrast_mean(a.luma_sums[k], n) : 0;
    float* image = a.out + int64_t(h.output_index) * 3 * n;
    for (int32_t i = first_thread(); i < n; i += thread_stride())
      packed::finish_pixel(h, a.rotated + k * a.image_stride, i, mean, a.table, image);
  });
}

dim3 grid_for(int64_t elements_per_sample, int64_t count) {
  const int64_t blocks = std::min<int64_t>((elements_per_sample + kThreads - 1) / kThreads, 4096);
  return dim3(unsigned(std::max<int64_t>(blocks, 1)), unsigned(std::min<int64_t>(count, 65535)));
}

}  // namespace

struct DeviceTransformer::Impl {
  struct Slot {
    uint8_t* host = nullptr;    // page-locked: batch_size regions, then batch_size int64 labels
    uint8_t* device = nullptr;  // the same layout on the device
    cudaEvent_t uploaded = nullptr, consumed = nullptr;
    // Timing (DeviceTransformer::times): around the upload and around the expansion of the slot's last batch.
    cudaEvent_t upload_begin = nullptr, upload_end = nullptr, expand_begin = nullptr, expand_end = nullptr;
    bool timed = false;  // the four events hold a batch not yet added to `times`
  };
  int device = 0;
  int64_t region_bytes = 0, batch_size = 0, size = 0, max_window = 0;
  std::vector<Slot> slots;
  cudaStream_t upload = nullptr;
  uint8_t* scratch = nullptr;  // temp, flipped and rotated images of one batch
  // The decoded-image cache: segments of device memory handed out in 256-byte aligned pieces, at most
  // cache_limit bytes of segments in all; after the device refused one, no more are asked for.
  std::mutex cache_mutex;
  std::vector<uint8_t*> cache_segments;
  uint8_t* cache_next = nullptr;
  int64_t cache_left = 0, cache_reserved = 0, cache_limit = 0;
  bool cache_refused = false;
  unsigned long long* luma_sums = nullptr;
  float* table = nullptr;
  std::mutex times_mutex;  // times and every slot's `timed`: run() and stats() may be on different threads
  DeviceTransformer::Times times;

  // Adds slot s's last batch to `times` if its events have completed (never waits). Requires times_mutex.
  void collect(Slot& s) {
    if (!s.timed) return;
    for (cudaEvent_t e : {s.upload_end, s.expand_end}) {
      const cudaError_t status = cudaEventQuery(e);
      if (status == cudaErrorNotReady) return;  // not yet: next time
      check(status, "cudaEventQuery (timing)");
    }
    s.timed = false;
    float upload_ms = 0, expand_ms = 0;
    check(cudaEventElapsedTime(&upload_ms, s.upload_begin, s.upload_end), "cudaEventElapsedTime");
    check(cudaEventElapsedTime(&expand_ms, s.expand_begin, s.expand_end), "cudaEventElapsedTime");
    times.upload_seconds += upload_ms * 1e-3;
    times.transform_seconds += expand_ms * 1e-3;
    ++times.batches;
  }

  int64_t slot_bytes() const { return batch_size * region_bytes + batch_size * int64_t(sizeof(int64_t)); }
  int64_t temp_stride() const { return max_window * size * 3; }
  int64_t image_stride() const { return size * size * 3; }

  void free_all() noexcept {
    DeviceScope scope(device);
    if (upload != nullptr) cudaStreamSynchronize(upload);
    cudaDeviceSynchronize();  // the compute stream may still read the device buffers
    for (Slot& s : slots) {
      if (s.host != nullptr) cudaFreeHost(s.host);
      if (s.device != nullptr) cudaFree(s.device);
      if (s.uploaded != nullptr) cudaEventDestroy(s.uploaded);
      if (s.consumed != nullptr) cudaEventDestroy(s.consumed);
      for (cudaEvent_t e : {s.upload_begin, s.upload_end, s.expand_begin, s.expand_end})
        if (e != nullptr) cudaEventDestroy(e);
    }
    for (uint8_t* segment : cache_segments)
      cudaFree(segment);
    if (scratch != nullptr) cudaFree(scratch);
    if (luma_sums != nullptr) cudaFree(luma_sums);
    if (table != nullptr) cudaFree(table);
    if (upload != nullptr) cudaStreamDestroy(upload);
  }
};

DeviceTransformer::DeviceTransformer(const TransformConfig& config, int64_t region_bytes, int64_t batch_size,
                                     int slots, Device device)
    : impl_(std::make_unique<Impl>()) {
  THAW_CHECK(device.is_cuda(), "DeviceTransformer: needs a CUDA device, got {}", device.str());
  THAW_CHECK(batch_size >= 1 && slots >= 1 && region_bytes >= int64_t(sizeof(PackedHeader)) &&
                 region_bytes % 256 == 0,
             "DeviceTransformer: batch_size and slots must be >= 1, region_bytes a multiple of 256 (from "
             "packed_region_bytes)");
  THAW_CHECK(packed_max_window(config) * config.crop_size < (int64_t(1) << 31),
             "DeviceTransformer: crop_size {} is too large for 32-bit pixel indices", config.crop_size);
  Impl& m = *impl_;
  m.device = device.index;
  m.region_bytes = region_bytes;
  m.batch_size = batch_size;
  m.size = config.crop_size;
  m.max_window = packed_max_window(config);
  DeviceScope scope(m.device);
  try {
    check(cudaStreamCreateWithFlags(&m.upload, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    m.slots.resize(size_t(slots));
    for (Impl::Slot& s : m.slots) {
      check(cudaMallocHost(&s.host, size_t(m.slot_bytes())), "cudaMallocHost (batch buffer)");
      check(cudaMalloc(&s.device, size_t(m.slot_bytes())), "cudaMalloc (batch buffer)");
      // Workers block on `uploaded` (wait_until_writable): a blocking wait, not a spin that takes a core from
      // the JPEG decoders.
      check(cudaEventCreateWithFlags(&s.uploaded, cudaEventDisableTiming | cudaEventBlockingSync),
            "cudaEventCreate");
      check(cudaEventCreateWithFlags(&s.consumed, cudaEventDisableTiming), "cudaEventCreate");
      for (cudaEvent_t* e : {&s.upload_begin, &s.upload_end, &s.expand_begin, &s.expand_end})
        check(cudaEventCreate(e), "cudaEventCreate (timing)");
    }
    const int64_t scratch_bytes = batch_size * (m.temp_stride() + 2 * m.image_stride());
    check(cudaMalloc(&m.scratch, size_t(scratch_bytes)), "cudaMalloc (scratch images)");
    check(cudaMalloc(&m.luma_sums, size_t(batch_size) * sizeof(unsigned long long)), "cudaMalloc (sums)");
    const NormalizeTable table = normalize_table();
    check(cudaMalloc(&m.table, sizeof(table)), "cudaMalloc (normalize table)");
    check(cudaMemcpy(m.table, table.data(), sizeof(table), cudaMemcpyHostToDevice), "cudaMemcpy (table)");
    // Without a bound from the loader, the cache may take half of what is free now: the rest is the
    // training step's.
    size_t free_bytes = 0, total_bytes = 0;
    check(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
    m.cache_limit = int64_t(free_bytes / 2);
  } catch (...) {
    m.free_all();
    throw;
  }
}

DeviceTransformer::~DeviceTransformer() {
  impl_->free_all();
}

uint8_t* DeviceTransformer::host_regions(int slot) {
  return impl_->slots.at(size_t(slot)).host;
}

void DeviceTransformer::wait_until_writable(int slot) {
  DeviceScope scope(impl_->device);
  check(cudaEventSynchronize(impl_->slots.at(size_t(slot)).uploaded), "cudaEventSynchronize (upload)");
}

DeviceTransformer::Times DeviceTransformer::times() {
  Impl& m = *impl_;
  DeviceScope scope(m.device);
  std::lock_guard<std::mutex> lock(m.times_mutex);
  for (Impl::Slot& s : m.slots)
    m.collect(s);
  return m.times;
}

void DeviceTransformer::set_cache_limit(int64_t bytes) {
  std::lock_guard<std::mutex> lock(impl_->cache_mutex);
  if (bytes > 0) impl_->cache_limit = bytes;
}

uint8_t* DeviceTransformer::allocate_cache(int64_t bytes) {
  Impl& m = *impl_;
  constexpr int64_t kSegment = int64_t(64) << 20;
  bytes = (bytes + 255) / 256 * 256;
  std::lock_guard<std::mutex> lock(m.cache_mutex);
  if (bytes > m.cache_left) {
    // A new segment: 64 MiB, or what is left under the limit, and at least this image.
    const int64_t segment_bytes = std::max(std::min(kSegment, m.cache_limit - m.cache_reserved), bytes);
    if (m.cache_refused || m.cache_reserved + segment_bytes > m.cache_limit) return nullptr;
    DeviceScope scope(m.device);
    uint8_t* segment = nullptr;
    const cudaError_t status = cudaMalloc(&segment, size_t(segment_bytes));
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();  // out of device memory: the cache is full from now on
      m.cache_refused = true;
      return nullptr;
    }
    check(status, "cudaMalloc (decoded-image cache)");
    m.cache_reserved += segment_bytes;
    m.cache_segments.push_back(segment);
    m.cache_next = segment;
    m.cache_left = segment_bytes;
  }
  uint8_t* piece = m.cache_next;
  m.cache_next += bytes;
  m.cache_left -= bytes;
  return piece;
}

void DeviceTransformer::run(int slot, int64_t count, const std::vector<int64_t>& labels, Tensor& images,
                            Tensor& label_tensor) {
  Impl& m = *impl_;
  Impl::Slot& s = m.slots.at(size_t(slot));
  THAW_CHECK(count >= 0 && count <= m.batch_size, "DeviceTransformer::run: {} regions, the slot holds {}",
             count, m.batch_size);
  const auto n = int64_t(labels.size());
  THAW_CHECK(images.numel() == n * 3 * m.size * m.size && label_tensor.numel() == n,
             "DeviceTransformer::run: output tensors do not match {} samples", n);
  auto* host_labels = reinterpret_cast<int64_t*>(s.host + m.batch_size * m.region_bytes);
  auto* device_labels = reinterpret_cast<int64_t*>(s.device + m.batch_size * m.region_bytes);
  std::memcpy(host_labels, labels.data(), size_t(n) * sizeof(int64_t));

  DeviceScope scope(m.device);
  {
    std::lock_guard<std::mutex> lock(m.times_mutex);
    m.collect(s);     // the slot's previous batch, if its events have completed
    s.timed = false;  // if they had not, that batch goes uncounted: its events are recorded again below
  }
  // If anything below throws, `uploaded` and `consumed` must still cover what was queued, or a later batch's
  // upload could overwrite this slot's device buffer while its kernels read it.
  struct Fence {
    Impl::Slot& s;
    cudaStream_t upload;
    bool armed = true;
    ~Fence() {
      if (!armed) return;
      cudaEventRecord(s.uploaded, upload);
      cudaEventRecord(s.consumed, nullptr);
      cudaGetLastError();
    }
  } fence{s, m.upload};

  // Upload: after the last expansion that read this slot's device buffer.
  check(cudaStreamWaitEvent(m.upload, s.consumed, 0), "cudaStreamWaitEvent (upload)");
  check(cudaEventRecord(s.upload_begin, m.upload), "cudaEventRecord (timing)");
  for (int64_t k = 0; k < count; ++k) {
    PackedHeader h;
    std::memcpy(&h, s.host + k * m.region_bytes, sizeof(h));
    const auto bytes = size_t(h.output_index >= 0 ? h.bytes : int32_t(sizeof(h)));
    check(cudaMemcpyAsync(s.device + k * m.region_bytes, s.host + k * m.region_bytes, bytes,
                          cudaMemcpyHostToDevice, m.upload),
          "cudaMemcpyAsync (regions)");
  }
  if (n > 0)
    check(cudaMemcpyAsync(device_labels, host_labels, size_t(n) * sizeof(int64_t), cudaMemcpyHostToDevice,
                          m.upload),
          "cudaMemcpyAsync (labels)");
  check(cudaEventRecord(s.upload_end, m.upload), "cudaEventRecord (timing)");
  check(cudaEventRecord(s.uploaded, m.upload), "cudaEventRecord (uploaded)");

  // Expand on the compute stream, once the upload is there.
  cudaStream_t compute = nullptr;
  check(cudaStreamWaitEvent(compute, s.uploaded, 0), "cudaStreamWaitEvent (compute)");
  check(cudaEventRecord(s.expand_begin, compute), "cudaEventRecord (timing)");
  // Whole images that go into the cache: from the slot's device copy to their place, before any kernel
  // (of this batch or a later one) reads them there.
  for (int64_t k = 0; k < count; ++k) {
    PackedHeader h;
    std::memcpy(&h, s.host + k * m.region_bytes, sizeof(h));
    if (h.output_index < 0 || h.cache_address == 0) continue;
    check(cudaMemcpyAsync(
              reinterpret_cast<void*>(h.cache_address), s.device + k * m.region_bytes + h.pixels_offset,
              size_t(h.source_height) * size_t(h.source_stride) * 3, cudaMemcpyDeviceToDevice, compute),
          "cudaMemcpyAsync (into the decoded-image cache)");
  }
  if (count > 0 && n > 0) {
    BatchArgs a;
    a.regions = s.device;
    a.region_bytes = m.region_bytes;
    a.count = count;
    a.temp = m.scratch;
    a.temp_stride = m.temp_stride();
    a.flipped = m.scratch + m.batch_size * m.temp_stride();
    a.rotated = a.flipped + m.batch_size * m.image_stride();
    a.image_stride = m.image_stride();
    a.luma_sums = m.luma_sums;
    a.table = m.table;
    a.out = images.data<float>();
    const int64_t pixels = m.size * m.size;
    check(cudaMemsetAsync(m.luma_sums, 0, size_t(count) * sizeof(unsigned long long), compute),
          "cudaMemsetAsync");
    rows_kernel<<<grid_for(m.max_window * m.size, count), kThreads, 0, compute>>>(a);
    check_launch("rows_kernel");
    columns_kernel<<<grid_for(pixels, count), kThreads, 0, compute>>>(a);
    check_launch("columns_kernel");
    rotate_kernel<<<grid_for(pixels, count), kThreads, 0, compute>>>(a);
    check_launch("rotate_kernel");
    contrast_luma_kernel<<<grid_for(pixels, count), kThreads, 0, compute>>>(a);
    check_launch("contrast_luma_kernel");
    finish_kernel<<<grid_for(pixels, count), kThreads, 0, compute>>>(a);
    check_launch("finish_kernel");
    check(cudaMemcpyAsync(label_tensor.raw_data(), device_labels, size_t(n) * sizeof(int64_t),
                          cudaMemcpyDeviceToDevice, compute),
          "cudaMemcpyAsync (labels to the batch)");
  }
  check(cudaEventRecord(s.expand_end, compute), "cudaEventRecord (timing)");
  check(cudaEventRecord(s.consumed, compute), "cudaEventRecord (consumed)");
  fence.armed = false;
  std::lock_guard<std::mutex> lock(m.times_mutex);
  s.timed = true;
}

}  // namespace thaw::data
