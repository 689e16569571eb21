// How the CPU batch norm cuts its sums (kernels/cpu/batchnorm_chunks.h): every value of a channel
// in exactly one chunk, and partials (two doubles per channel and chunk) that stay a fraction of
// the input, however many channels. (Correctness against plain loops: test_batchnorm.cpp.)
#include <gtest/gtest.h>

#include "cyclone/kernels/cpu/batchnorm_chunks.h"

namespace cyclone {
namespace {

using kernels::BatchNormDims;
using kernels::cpu::bn::ChunkPlan;

const BatchNormDims kPlanShapes[] = {
    {128, 3, 81},  {16, 3, 1600}, {2, 2, 10000}, {1, 1, 1},      {7, 3, 1},
    {20000, 5, 1}, {40, 9000, 1}, {1, 20000, 1}, {4096, 640, 1}, {3, 1, 5},
};

TEST(BatchNormChunks, EveryValueOfAChannelIsInExactlyOneChunk) {
  for (const BatchNormDims& d : kPlanShapes) {
    const ChunkPlan plan(d);
    SCOPED_TRACE(::testing::Message() << "N " << d.n << " C " << d.c << " inner " << d.inner);
    int64_t covered = 0;
    for (int64_t k = 0; k < plan.chunks; ++k) {
      ASSERT_GT(plan.count(d, k), 0) << "chunk " << k;
      covered += plan.count(d, k);
    }
    EXPECT_EQ(covered, d.per_channel());
    EXPECT_EQ(plan.items, plan.planar ? d.c * plan.chunks : plan.chunks);
    if (!plan.planar) continue;
    // A chunk's segments are the channel's values in (n, i) order, each within one run.
    int64_t next = 0;
    for (int64_t k = 0; k < plan.chunks; ++k)
      kernels::cpu::bn::for_segments(d, 1 % d.c, k * plan.len, k * plan.len + plan.count(d, k),
                                     [&](int64_t off, int64_t len) {
                                       const int64_t n = next / d.inner, i = next % d.inner;
                                       EXPECT_EQ(off, (n * d.c + 1 % d.c) * d.inner + i);
                                       EXPECT_LE(i + len, d.inner);
                                       next += len;
                                     });
    EXPECT_EQ(next, d.per_channel());
  }
}

// The partials are scratch beside the input: at most a quarter of a float32 input's bytes, plus
// one chunk's worth. One row per chunk (as once for 8192 channels or more) made them four times
// the input: a BatchNorm1d over [4096, 16384] floats (256 MiB) asked for 1 GiB more.
TEST(BatchNormChunks, PartialsStayAFractionOfTheInput) {
  for (const BatchNormDims& d : kPlanShapes) {
    const ChunkPlan plan(d);
    const int64_t partial_bytes = 2 * d.c * plan.chunks * static_cast<int64_t>(sizeof(double));
    const int64_t input_bytes = d.n * d.c * d.inner * static_cast<int64_t>(sizeof(float));
    EXPECT_LE(partial_bytes, input_bytes / 4 + 2 * d.c * static_cast<int64_t>(sizeof(double)))
        << "N " << d.n << " C " << d.c << " inner " << d.inner << ": " << plan.chunks
        << " chunks per channel";
  }
}

}  // namespace
}  // namespace cyclone
