// kernels/cpu/parallel.h: how the CPU kernels use more than one thread (the pool lives in
// kernels/threads.cpp).
//
// One pool of ops::cpu_threads() threads (the calling thread is one of them) runs every parallel loop of
// the CPU backend, the GEMMs included: OpenBLAS is called single-threaded, from inside the tasks, so it never
// starts threads of its own. The rules a kernel follows:
//   - parallel_for(count, task) runs task(0) .. task(count - 1) and returns when all have finished.
//   - A task writes only its own part of the output and reads nothing another task of the same loop
//     writes; the result must not depend on which thread ran which task, nor on how many threads there are.
//     Loops that sum across tasks therefore cut the work into pieces by its shape only (never by the thread
//     count) and add the pieces' partial results in a fixed order.
//   - Tasks should each be worth tens of microseconds or more; a loop with one task, or a pool of one
//     thread, runs inline on the calling thread with no synchronisation at all.
// Waits: a free thread takes the next unclaimed task (dynamic scheduling), so a thread that the operating
// system preempts holds back at most the one task it is running. Idle threads and a caller waiting for the
// last tasks spin for a few microseconds, then sleep in the kernel (futex), so a busy machine gets its cores
// back instead of watching them spin.
// Nesting: a parallel_for inside a task, or one started while another thread's loop is running, runs its
// tasks in order on the calling thread: nested loops never multiply the threads.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>

namespace thaw::cpu {

// A non-owning reference to a callable void(int64_t): no allocation per parallel loop. The callable must
// outlive the call it is passed to (a lambda written at the call site does).
class TaskRef {
 public:
  template <typename F, typename = std::enable_if_t<!std::is_same_v<std::decay_t<F>, TaskRef>>>
  TaskRef(F&& f)  // NOLINT(google-explicit-constructor): written as a lambda at the call site
      : object_(const_cast<void*>(static_cast<const void*>(&f))),
        call_([](void* object, int64_t i) { (*static_cast<std::remove_reference_t<F>*>(object))(i); }) {}
  void operator()(int64_t i) const { call_(object_, i); }

 private:
  void* object_;
  void (*call_)(void*, int64_t);
};

// Runs task(i) for every i in [0, count) on the pool (the calling thread takes part) and returns when every
// task has finished. The first exception a task throws is rethrown here, after the others have finished.
void parallel_for(int64_t count, TaskRef task);

// True on a thread that is running a task of a parallel_for (where a nested one runs inline).
bool in_parallel_region();

// Threads a parallel_for started here would use: 1 inside a task, else ops::cpu_threads(). For sizing work
// that gives the same result however it is cut (tiles of a product), never for cutting a sum.
int parallel_threads();

// How many pieces of at least `grain` units [0, n) is cut into by parallel_ranges: a function of n and grain
// only, at most kMaxPieces, so that results never depend on the thread count.
inline constexpr int64_t kMaxPieces = 64;
inline int64_t piece_count(int64_t n, int64_t grain) {
  return std::clamp<int64_t>(n / std::max<int64_t>(grain, 1), 1, kMaxPieces);
}
// The half-open range of piece `i` of `pieces` over [0, n): sizes differ by at most one.
inline std::pair<int64_t, int64_t> piece_range(int64_t n, int64_t pieces, int64_t i) {
  return {n * i / pieces, n * (i + 1) / pieces};
}

// f(begin, end) over pieces of [0, n) (piece_count(n, grain) of them), in parallel.
template <typename F>
void parallel_ranges(int64_t n, int64_t grain, F&& f) {
  const int64_t pieces = piece_count(n, grain);
  if (pieces == 1) {
    if (n > 0) f(int64_t(0), n);
    return;
  }
  parallel_for(pieces, [&](int64_t i) {
    const auto [begin, end] = piece_range(n, pieces, i);
    f(begin, end);
  });
}

}  // namespace thaw::cpu
