// parallel_for: splits [0, n) into fixed chunks of `grain` elements and runs f(begin, end) on
// them on a pool of worker threads (core/parallel.cpp). The chunking depends only on n and grain,
// never on the thread count, so a kernel that combines per-chunk results in chunk order is
// deterministic on any machine. Below one grain it runs inline (no thread wake-up for small
// tensors). The pool lives in core/parallel.cpp.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>

namespace cyclone {

// Threads the CPU backend uses (CYCLONE_NUM_THREADS, else OMP_NUM_THREADS, else the core count).
int cpu_threads();

namespace detail {
// Runs chunk(c) for c in [0, chunks) on the pool (inline when it is busy).
void run_chunks(int64_t chunks, const std::function<void(int64_t)>& chunk);
}  // namespace detail

template <class F>
void parallel_for(int64_t n, int64_t grain, F&& f) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t chunks = (n + grain - 1) / grain;
  if (chunks == 1) {
    f(int64_t{0}, n);
    return;
  }
  detail::run_chunks(chunks, [&](int64_t c) { f(c * grain, std::min(n, (c + 1) * grain)); });
}

}  // namespace cyclone
