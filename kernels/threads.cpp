// The CPU thread budget and the pool that runs the CPU kernels' parallel loops (kernels/cpu/parallel.h).
//
// Budget: ops::cpu_threads() threads compute, the calling thread included. The default is the first of
//   THAW_NUM_THREADS, OMP_NUM_THREADS (its first value), or the CPUs this process may run on (its affinity
//   mask, capped by a cgroup v2 CPU quota, so that a container limited to 2 CPUs gets 2 threads).
// Pool: cpu_threads() - 1 worker threads, started at the first parallel loop. OpenBLAS runs single-threaded
//   inside the tasks (its OpenMP build reads the calling thread's omp_get_max_threads(), so every thread that
//   calls a GEMM sets it to 1 first: kernels/cpu/blas.h), so the GEMMs share this pool instead of starting
//   their own threads.
//
// One loop at a time: a loop publishes its task and count under a generation number, and threads claim
// task indices with a compare-and-swap on one 64-bit word (generation << 32 | next index), so a thread that
// wakes late can never claim a task of a later loop. The caller claims tasks too, then waits until the count
// of unfinished tasks reaches zero. Every wait spins briefly (a few microseconds, with the CPU's pause hint)
// and then sleeps on a futex (Linux's futex(2) directly: libstdc++ 12's std::atomic::wait can miss a
// notify_all); a waker makes the system call only when someone sleeps.
#include <cblas.h>
#include <linux/futex.h>
#include <omp.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "kernels/cpu/parallel.h"
#include "kernels/ops.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define THAW_CPU_RELAX() _mm_pause()
#else
#define THAW_CPU_RELAX() std::this_thread::yield()
#endif

namespace thaw {

namespace {

// A positive integer from the environment variable, or 0.
int env_threads(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return 0;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);  // OMP_NUM_THREADS may be a list ("4,2"): its first value
  return n >= 1 && n <= 4096 ? int(n) : 0;
}

// CPUs the process may use: its affinity mask, capped by a cgroup v2 quota ("max" or "quota period").
int available_cpus() {
  int cpus = int(std::thread::hardware_concurrency());
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) cpus = CPU_COUNT(&set);
  std::ifstream max_file("/sys/fs/cgroup/cpu.max");
  std::string quota;
  long long period = 0;
  if (max_file >> quota >> period && quota != "max" && period > 0) {
    const long long q = std::atoll(quota.c_str());
    if (q > 0) cpus = std::min<int>(cpus, int((q + period - 1) / period));
  }
  return std::max(cpus, 1);
}

int default_threads() {
  if (int n = env_threads("THAW_NUM_THREADS")) return n;
  if (int n = env_threads("OMP_NUM_THREADS")) return n;
  return available_cpus();
}

// A word that threads sleep on until it changes: bump() changes it and wakes the sleepers.
class WaitWord {
 public:
  uint32_t load() const { return word_.load(std::memory_order_acquire); }
  void bump() {
    word_.fetch_add(1, std::memory_order_seq_cst);
    if (sleepers_.load(std::memory_order_seq_cst) > 0)
      syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word_), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr,
              0);
  }
  // Spins about `micros` microseconds or until done() holds; then, while done() does not hold, sleeps until
  // the word changes. done() must become true only after a bump() (or be true already).
  template <typename Done>
  void wait(int micros, Done done) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(micros);
    for (int i = 1;; ++i) {
      if (done()) return;
      THAW_CPU_RELAX();
      if (i % 64 == 0 && std::chrono::steady_clock::now() > until) break;
    }
    for (;;) {
      const uint32_t old = word_.load(std::memory_order_seq_cst);
      sleepers_.fetch_add(1, std::memory_order_seq_cst);
      // Checked after announcing the sleep: a bump() from here on sees sleepers_ > 0 and wakes us, and the
      // kernel sleeps only while the word still holds `old`.
      if (!done())
        syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word_), FUTEX_WAIT_PRIVATE, old, nullptr, nullptr, 0);
      sleepers_.fetch_sub(1, std::memory_order_seq_cst);
      if (done()) return;
    }
  }

 private:
  std::atomic<uint32_t> word_{0};
  std::atomic<int> sleepers_{0};
};

thread_local bool t_in_region = false;

class Pool {
 public:
  Pool() : threads_(default_threads()) {}
  ~Pool() { stop_workers(); }

  int threads() const { return threads_.load(std::memory_order_relaxed); }

  void set_threads(int n) {
    std::lock_guard<std::mutex> lock(region_mutex_);
    if (n == threads()) return;
    stop_workers();
    threads_.store(n, std::memory_order_relaxed);
  }

  void run(int64_t count, cpu::TaskRef task) {
    if (count <= 0) return;
    std::unique_lock<std::mutex> lock(region_mutex_, std::defer_lock);
    if (count == 1 || threads() == 1 || t_in_region || !lock.try_lock()) {
      run_inline(count, task);
      return;
    }
    start_workers();
    error_ = nullptr;
    task_.store(&task, std::memory_order_relaxed);
    count_.store(count, std::memory_order_relaxed);
    unfinished_.store(count, std::memory_order_relaxed);
    const uint64_t generation = (claim_.load(std::memory_order_relaxed) >> 32) + 1;
    claim_.store(generation << 32, std::memory_order_release);
    wake_.bump();

    work(generation);
    finished_.wait(kCallerSpinMicros, [&] { return unfinished_.load(std::memory_order_acquire) == 0; });
    if (error_) std::rethrow_exception(error_);
  }

 private:
  static constexpr int kCallerSpinMicros = 30;  // waiting for the last tasks of a loop
  static constexpr int kIdleSpinMicros = 60;    // a worker waiting for the next loop

  static void run_inline(int64_t count, cpu::TaskRef task) {
    const bool outer = t_in_region;
    t_in_region = true;
    try {
      for (int64_t i = 0; i < count; ++i)
        task(i);
    } catch (...) {
      t_in_region = outer;
      throw;
    }
    t_in_region = outer;
  }

  // Claims and runs tasks of loop `generation` until none is left.
  void work(uint64_t generation) {
    t_in_region = true;
    int64_t done = 0;
    for (;;) {
      uint64_t word = claim_.load(std::memory_order_acquire);
      if ((word >> 32) != generation) break;
      const int64_t index = int64_t(word & 0xFFFFFFFFu);
      if (index >= count_.load(std::memory_order_relaxed)) break;
      if (!claim_.compare_exchange_weak(word, word + 1, std::memory_order_acq_rel)) continue;
      try {
        (*task_.load(std::memory_order_relaxed))(index);
      } catch (...) {
        std::lock_guard<std::mutex> guard(error_mutex_);
        if (!error_) error_ = std::current_exception();
      }
      ++done;
    }
    t_in_region = false;
    if (done > 0 && unfinished_.fetch_sub(done, std::memory_order_acq_rel) == done) finished_.bump();
  }

  // seen: the wake word when the worker was created (a loop or a stop may bump it before the thread runs).
  void worker_loop(uint32_t seen) {
    omp_set_num_threads(1);  // OpenBLAS (OpenMP build) stays single-threaded on this thread
    for (;;) {
      wake_.wait(kIdleSpinMicros, [&] { return wake_.load() != seen; });
      seen = wake_.load();
      if (stopping_.load(std::memory_order_acquire)) return;
      work(claim_.load(std::memory_order_acquire) >> 32);
    }
  }

  // Under region_mutex_.
  void start_workers() {
    const int wanted = threads() - 1;
    if (int(workers_.size()) == wanted) return;
    openblas_set_num_threads(1);
    for (int i = int(workers_.size()); i < wanted; ++i)
      workers_.emplace_back([this, seen = wake_.load()] { worker_loop(seen); });
  }
  void stop_workers() {
    if (workers_.empty()) return;
    stopping_.store(true, std::memory_order_release);
    wake_.bump();
    for (std::thread& t : workers_)
      t.join();
    workers_.clear();
    stopping_.store(false, std::memory_order_release);
  }

  std::atomic<int> threads_;
  std::mutex region_mutex_;  // one loop at a time; held by the loop's caller
  std::vector<std::thread> workers_;
  std::atomic<bool> stopping_{false};
  WaitWord wake_;                   // bumped to start a loop (or to stop); workers wait on it
  std::atomic<uint64_t> claim_{0};  // generation << 32 | next unclaimed task
  std::atomic<const cpu::TaskRef*> task_{nullptr};
  std::atomic<int64_t> count_{0};
  std::atomic<int64_t> unfinished_{0};  // tasks of the current loop not yet finished
  WaitWord finished_;                   // bumped when unfinished_ reaches 0; the caller waits on it
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

Pool& pool() {
  static Pool p;
  return p;
}

}  // namespace

namespace cpu {

void parallel_for(int64_t count, TaskRef task) {
  pool().run(count, task);
}

bool in_parallel_region() {
  return t_in_region;
}

int parallel_threads() {
  return t_in_region ? 1 : pool().threads();
}

}  // namespace cpu

namespace ops {

void set_cpu_threads(int threads) {
  THAW_CHECK(threads >= 1, "set_cpu_threads: need at least one thread, got {}", threads);
  pool().set_threads(threads);
}

int cpu_threads() {
  return pool().threads();
}

}  // namespace ops

}  // namespace thaw
