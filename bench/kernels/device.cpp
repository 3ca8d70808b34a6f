// thaw bench kernels: CUDA-event timing with an L2 flush, and the measured peaks (copy, SGEMM).
#include "bench/kernels/device.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "core/error.h"

namespace thaw::bench {

namespace {

void check(cudaError_t status, const char* call) {
  if (status != cudaSuccess) fail("bench kernels: {} failed: {}", call, cudaGetErrorString(status));
}
void check(cublasStatus_t status, const char* call) {
  if (status != CUBLAS_STATUS_SUCCESS) fail("bench kernels: {} failed: cuBLAS status {}", call, int(status));
}

// Device memory owned for the life of the object.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) { check(cudaMalloc(&ptr_, bytes), "cudaMalloc"); }
  ~DeviceBuffer() { cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* get() const { return ptr_; }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_;
};

class EventPair {
 public:
  EventPair() {
    check(cudaEventCreate(&start_), "cudaEventCreate");
    check(cudaEventCreate(&stop_), "cudaEventCreate");
  }
  ~EventPair() {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }
  EventPair(const EventPair&) = delete;
  EventPair& operator=(const EventPair&) = delete;
  void start() { check(cudaEventRecord(start_, nullptr), "cudaEventRecord"); }
  float stop_ms() {
    check(cudaEventRecord(stop_, nullptr), "cudaEventRecord");
    check(cudaEventSynchronize(stop_), "cudaEventSynchronize");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start_, stop_), "cudaEventElapsedTime");
    return ms;
  }

 private:
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

int current_device() {
  int device = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  return device;
}

// A buffer twice the size of the L2 cache; writing it evicts whatever the previous run left there.
DeviceBuffer& l2_flush_buffer() {
  static DeviceBuffer buffer = [] {
    int l2 = 0;
    check(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, current_device()),
          "cudaDeviceGetAttribute(L2)");
    return DeviceBuffer(std::max<size_t>(size_t(l2) * 2, size_t(1) << 20));
  }();
  return buffer;
}

// The best of a few timed runs: peaks are ceilings, so noise only ever lowers them.
template <typename F>
double best_ms(int runs, F&& f) {
  EventPair events;
  f();  // warm-up
  double best = 1e30;
  for (int i = 0; i < runs; ++i) {
    events.start();
    f();
    best = std::min(best, double(events.stop_ms()));
  }
  return best;
}

}  // namespace

std::string device_description() {
  cudaDeviceProp prop{};
  const int device = current_device();
  check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  int driver = 0;
  check(cudaDriverGetVersion(&driver), "cudaDriverGetVersion");
  return fmt::format("{} ({} SMs, {:.1f} GiB, L2 {} MiB, sm_{}{}), CUDA driver {}.{}", prop.name,
                     prop.multiProcessorCount, double(prop.totalGlobalMem) / (1 << 30),
                     prop.l2CacheSize >> 20, prop.major, prop.minor, driver / 1000, (driver % 1000) / 10);
}

Peaks measure_peaks() {
  Peaks peaks;
  {
    const size_t bytes = size_t(1) << 30;
    DeviceBuffer src(bytes), dst(bytes);
    check(cudaMemset(src.get(), 1, bytes), "cudaMemset");
    const double ms = best_ms(5, [&] {
      check(cudaMemcpyAsync(dst.get(), src.get(), bytes, cudaMemcpyDeviceToDevice, nullptr),
            "cudaMemcpyAsync");
    });
    peaks.copy_gbps = 2.0 * double(bytes) / (ms * 1e-3) * 1e-9;  // each byte read once and written once
  }
  {
    const int n = 8192;
    const size_t bytes = size_t(n) * n * sizeof(float);
    DeviceBuffer a(bytes), b(bytes), c(bytes);
    check(cudaMemset(a.get(), 0x3c, bytes), "cudaMemset");  // 0x3c3c3c3c: about 0.0115, not zero
    check(cudaMemset(b.get(), 0x3c, bytes), "cudaMemset");
    cublasHandle_t handle = nullptr;
    check(cublasCreate(&handle), "cublasCreate");
    const float alpha = 1, beta = 0;
    try {
      check(cublasSetMathMode(handle, CUBLAS_PEDANTIC_MATH), "cublasSetMathMode(CUBLAS_PEDANTIC_MATH)");
      check(cublasSetStream(handle, nullptr), "cublasSetStream");
      const double ms = best_ms(3, [&] {
        check(
            cublasSgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, static_cast<const float*>(a.get()),
                        n, static_cast<const float*>(b.get()), n, &beta, static_cast<float*>(c.get()), n),
            "cublasSgemm");
      });
      peaks.sgemm_tflops = 2.0 * double(n) * n * n / (ms * 1e-3) * 1e-12;
    } catch (...) {
      cublasDestroy(handle);
      throw;
    }
    cublasDestroy(handle);
  }
  return peaks;
}

double median_ms(int repeat, int warmup, const std::function<void()>& f) {
  THAW_CHECK(repeat >= 1, "bench kernels: repeat must be at least 1 (got {})", repeat);
  for (int i = 0; i < warmup; ++i)
    f();
  check(cudaDeviceSynchronize(), "cudaDeviceSynchronize after warm-up");
  DeviceBuffer& flush = l2_flush_buffer();
  EventPair events;
  std::vector<double> times;
  for (int i = 0; i < repeat; ++i) {
    check(cudaMemsetAsync(flush.get(), i & 0xff, flush.bytes(), nullptr), "cudaMemsetAsync (L2 flush)");
    events.start();
    f();
    times.push_back(events.stop_ms());
  }
  std::sort(times.begin(), times.end());
  const size_t mid = times.size() / 2;
  return times.size() % 2 == 1 ? times[mid] : 0.5 * (times[mid - 1] + times[mid]);
}

}  // namespace thaw::bench
