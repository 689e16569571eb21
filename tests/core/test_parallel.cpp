#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "cyclone/core/parallel.h"

namespace cyclone {
namespace {

TEST(ParallelFor, CoversEveryIndexExactlyOnceInFixedChunks) {
  for (int64_t n : {0, 1, 31, 1000, 100003}) {
    std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
    std::atomic<int64_t> chunks{0};
    parallel_for(n, 1000, [&](int64_t lo, int64_t hi) {
      EXPECT_EQ(lo % 1000, 0) << "chunk boundaries depend only on the grain";
      EXPECT_LE(hi - lo, 1000);
      chunks.fetch_add(1);
      for (int64_t i = lo; i < hi; ++i) hits[i].fetch_add(1);
    });
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "n=" << n << " i=" << i;
    EXPECT_EQ(chunks.load(), (n + 999) / 1000);
  }
  EXPECT_GE(cpu_threads(), 1);
}

TEST(ParallelFor, AnExceptionInAChunkReachesTheCallerAndThePoolStaysUsable) {
  EXPECT_THROW(parallel_for(100, 1,
                            [](int64_t lo, int64_t) {
                              if (lo == 37) throw std::runtime_error("chunk 37");
                            }),
               std::runtime_error);
  std::atomic<int64_t> sum{0};
  parallel_for(100, 1, [&](int64_t lo, int64_t hi) { sum += hi - lo; });
  EXPECT_EQ(sum.load(), 100);
}

// A parallel_for inside a chunk, or from several threads at once (data-loader workers), runs
// inline when the pool is busy: every index is still covered exactly once, and nothing deadlocks.
TEST(ParallelFor, NestedAndConcurrentCallsCompleteCorrectly) {
  std::atomic<int64_t> inner{0};
  parallel_for(8, 1, [&](int64_t, int64_t) {
    parallel_for(10, 1, [&](int64_t lo, int64_t hi) { inner += hi - lo; });
  });
  EXPECT_EQ(inner.load(), 80);
  std::vector<std::thread> threads;
  std::vector<int64_t> totals(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 50; ++rep) {
        std::atomic<int64_t> s{0};
        parallel_for(1000, 7, [&](int64_t lo, int64_t hi) { s += hi - lo; });
        totals[t] += s.load();
      }
    });
  for (auto& th : threads) th.join();
  for (int64_t v : totals) EXPECT_EQ(v, 50 * 1000);
}

}  // namespace
}  // namespace cyclone
