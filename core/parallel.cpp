// A small blocking thread pool behind parallel_for.
//
// Why not OpenMP: libgomp's idle threads spin for a while after every parallel region (its
// default wait policy), and the CPU backend alternates short regions (im2col, elementwise) with
// OpenBLAS calls whose own threads then find both cores taken. On the 2-core CI machine that made
// LeNet-5 training ~10x slower than with OMP_WAIT_POLICY=passive (387 vs 2.5k img/s with
// OpenBLAS threaded, 5.0k with it single-threaded; ./bin/best_lr --skip_test=0.05
// --limit_train_batches=100). These workers spin only briefly, then sleep on a condition
// variable, so they never hold a core someone else needs.
//
// The chunking is parallel_for's (fixed by n and grain), so results do not depend on how many
// workers there are or which one runs which chunk. A parallel_for issued while the pool is busy
// (from a worker, or from another thread such as a data-loader worker) runs inline.
#include "cyclone/core/parallel.h"

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "cyclone/core/error.h"
#include "cyclone/core/resource_limits.h"

namespace cyclone {

namespace {

int threads_from_env() {
  for (const char* name : {"CYCLONE_NUM_THREADS", "OMP_NUM_THREADS"}) {
    if (const char* v = std::getenv(name)) {
      const int n = std::atoi(v);
      if (n >= 1) return std::min(n, 1024);
    }
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

class Pool {
 public:
  explicit Pool(int threads) {
    for (int i = 1; i < threads; ++i) {
      try {
        workers_.emplace_back([this] { work(); });
      } catch (const std::system_error& e) {
        // Under ulimit -u or ulimit -v; the threads already started must be joined, or their
        // std::thread destructors would terminate the process.
        stop();
        // OutOfMemory: like memory, a limit of this machine, not a bad input (see core/error.h).
        throw OutOfMemory(thread_start_failure(
            detail::str_cat("CPU worker thread ", i + 1, " of ", threads), e,
            detail::str_cat("set CYCLONE_NUM_THREADS=", i, " (now ", threads, ")")));
      }
    }
  }
  ~Pool() { stop(); }

  void stop() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
      ++generation_;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  // False when the pool is busy: the caller then runs the chunks itself.
  bool run(int64_t chunks, const std::function<void(int64_t)>& chunk) {
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock() || workers_.empty()) return false;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &chunk;
      chunks_ = chunks;
      next_.store(0);
      done_ = 0;
      error_ = nullptr;
      ++generation_;
    }
    wake_.notify_all();
    const int64_t mine = drain();
    std::unique_lock<std::mutex> lock(mutex_);
    done_ += mine;
    // Every chunk ran, and no worker is still inside drain(): one that woke late and found no
    // chunk left must be out before the next run() rewrites job_, chunks_ and next_.
    finished_.wait(lock, [&] { return done_ == chunks_ && active_ == 0; });
    job_ = nullptr;
    if (error_) std::rethrow_exception(error_);
    return true;
  }

 private:
  // Takes chunks until none is left; returns how many this thread ran.
  int64_t drain() {
    int64_t ran = 0;
    for (int64_t c; (c = next_.fetch_add(1)) < chunks_; ++ran) {
      try {
        (*job_)(c);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
      }
    }
    return ran;
  }

  void work() {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
        if (stop_) return;
        if (job_ == nullptr) continue;
        ++active_;  // taken with the job under the lock: run() waits for it to leave
      }
      const int64_t ran = drain();
      std::lock_guard<std::mutex> lock(mutex_);
      done_ += ran;
      --active_;
      if (done_ == chunks_ && active_ == 0) finished_.notify_one();
    }
  }

  std::vector<std::thread> workers_;
  std::mutex busy_;   // held by the thread whose job the pool runs
  std::mutex mutex_;  // guards the fields below except next_
  std::condition_variable wake_, finished_;
  const std::function<void(int64_t)>* job_ = nullptr;
  int64_t chunks_ = 0, done_ = 0;
  int active_ = 0;  // workers inside drain() for the current job
  std::atomic<int64_t> next_{0};
  uint64_t generation_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

Pool& pool() {
  static Pool p(cpu_threads());
  return p;
}

}  // namespace

int cpu_threads() {
  static const int n = threads_from_env();
  return n;
}

namespace detail {
void run_chunks(int64_t chunks, const std::function<void(int64_t)>& chunk) {
  if (pool().run(chunks, chunk)) return;
  for (int64_t c = 0; c < chunks; ++c) chunk(c);
}
}  // namespace detail

}  // namespace cyclone
