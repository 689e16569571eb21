#include <gtest/gtest.h>

#include <atomic>
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

}  // namespace
}  // namespace cyclone
