// The timing rule of thaw's benchmark programs: run once to warm up (caches, the CUDA allocator), then
// `repeat` timed runs, and report the median. `wait` is called before each clock read: it synchronises the
// GPU when one is used (its work is queued, not done, when a launch returns); the CPU backend is synchronous.
#pragma once

#include <algorithm>
#include <chrono>
#include <vector>

namespace thaw::bench {

template <typename Run, typename Wait>
double median_seconds(int repeat, Run&& run, Wait&& wait) {
  run();
  wait();
  std::vector<double> times;
  for (int r = 0; r < repeat; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    run();
    wait();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

template <typename Run>
double median_seconds(int repeat, Run&& run) {
  return median_seconds(repeat, run, [] {});
}

}  // namespace thaw::bench
