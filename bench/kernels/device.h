// thaw bench kernels: the GPU side of timing. Plain C++ declarations; bench_kernels_device.cpp implements
// them with the CUDA runtime and cuBLAS, bench_kernels_device_none.cpp (CPU-only builds) throws.
#pragma once

#include <functional>
#include <string>

#include "bench/kernels/report.h"

namespace thaw::bench {

std::string device_description();  // "NVIDIA H200 (132 SMs, 139.8 GiB, L2 60 MiB), driver 13.0"

// The ceilings the rows are measured against, timed once: a device-to-device copy of 1 GiB, and a
// float32 cuBLAS SGEMM of 8192^3 (pedantic math: no TF32), each the best of a few runs.
Peaks measure_peaks();

// Median milliseconds of f() over repeat runs, after warmup runs. Each run: the L2 cache is flushed (a
// buffer of twice its size is written), then f() is bracketed by two CUDA events on thaw's stream (the
// default stream, on which thaw, cuBLAS and cuDNN all run here). Throws when repeat < 1.
double median_ms(int repeat, int warmup, const std::function<void()>& f);

}  // namespace thaw::bench
