// How the CPU batch norm (kernels/cpu/batchnorm.cpp) cuts its work: the per-channel sums into
// chunks fixed by the shape alone, so that combining the chunk partials in chunk order gives the
// same bits for any CYCLONE_NUM_THREADS, and the elementwise passes into runs that walk memory
// contiguously. Two layouts: planar (inner > 1, NCHW) chunks a channel's runs of `inner` values;
// interleaved (inner = 1: BatchNorm2d's [N H W, C] view of NHWC, or [N, C]) chunks rows of C
// values and sums all channels of a row at once (per channel, that walk would stride by C and pull
// every cache line of the tensor once per channel).
#pragma once

#include <algorithm>
#include <cstdint>

#include "cyclone/core/parallel.h"
#include "cyclone/kernels/batchnorm.h"

namespace cyclone::kernels::cpu::bn {

// Values per summed chunk: its second pass (deviations) finds it in L1/L2.
inline constexpr int64_t kChunkElements = 1 << 13;
// Values per parallel task: enough work that waking a thread pays off.
inline constexpr int64_t kGrainElements = 1 << 15;
// Rows per interleaved chunk at least. A chunk keeps two double partials per channel (16 bytes per
// row of C values in it), so with one row per chunk (C >= kChunkElements) the partials took four
// times the memory of a float32 input; from 16 rows they take at most a quarter of it.
inline constexpr int64_t kMinRowsPerChunk = 16;

// How a channel's M = N * inner values are cut into chunks (a function of the shape only).
// Planar: chunk k of channel c holds values [k len, (k + 1) len) of the channel in (n, i) order,
// len a whole number of runs where a run fits. Interleaved: chunk k is rows [k len, (k + 1) len)
// of the [N, C] matrix, for every channel at once.
struct ChunkPlan {
  bool planar = true;
  int64_t len = 1;     // values of one channel per chunk (interleaved: rows)
  int64_t chunks = 0;  // per channel
  int64_t items = 0;   // units of parallel work: (channel, chunk) pairs, or chunks of rows

  explicit ChunkPlan(const BatchNormDims& d) : planar(d.inner != 1) {
    const int64_t m = d.per_channel();
    if (planar) {
      const int64_t inner = std::max<int64_t>(d.inner, 1);
      len = inner <= kChunkElements ? kChunkElements / inner * inner : kChunkElements;
    } else {
      len = std::max(kMinRowsPerChunk, kChunkElements / std::max<int64_t>(d.c, 1));
    }
    chunks = (m + len - 1) / len;
    items = planar ? d.c * chunks : chunks;
  }
  int64_t count(const BatchNormDims& d, int64_t k) const {
    return std::min(d.per_channel(), (k + 1) * len) - k * len;
  }
  // Where channel c's partial of chunk k lives: each item writes a contiguous run.
  int64_t slot(const BatchNormDims& d, int64_t c, int64_t k) const {
    return planar ? c * chunks + k : k * d.c + c;
  }
  int64_t grain() const { return std::max<int64_t>(1, kGrainElements / kChunkElements); }
};

// Calls f(offset, length) for the contiguous pieces of channel c's values [m_lo, m_hi) (planar).
template <class F>
inline void for_segments(const BatchNormDims& d, int64_t c, int64_t m_lo, int64_t m_hi, F&& f) {
  int64_t n = m_lo / d.inner, i = m_lo % d.inner;
  for (int64_t m = m_lo; m < m_hi; ++n, i = 0) {
    const int64_t len = std::min(d.inner - i, m_hi - m);
    f((n * d.c + c) * d.inner + i, len);
    m += len;
  }
}

// Runs planar(c, k) on the pool for each planar (channel, chunk) pair, or rows(k, r_lo, r_hi) for
// each interleaved chunk of rows.
template <class Planar, class Rows>
void for_chunks(const BatchNormDims& d, const ChunkPlan& plan, Planar&& planar, Rows&& rows) {
  parallel_for(plan.items, plan.grain(), [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      if (plan.planar) {
        planar(t / plan.chunks, t % plan.chunks);
      } else {
        rows(t, t * plan.len, std::min(d.n, (t + 1) * plan.len));
      }
    }
  });
}

// Runs the elementwise pass planar(off, c) over every run of `inner` values at offset off (of
// channel c), or rows(r_lo, r_hi) over rows of C values (interleaved).
template <class Planar, class Rows>
void for_elements(const BatchNormDims& d, Planar&& planar, Rows&& rows) {
  if (d.inner != 1) {
    const int64_t inner = std::max<int64_t>(d.inner, 1);
    parallel_for(d.n * d.c, std::max<int64_t>(1, kGrainElements / inner),
                 [&](int64_t lo, int64_t hi) {
                   for (int64_t r = lo; r < hi; ++r) planar(r * d.inner, r % d.c);
                 });
  } else {
    parallel_for(d.n, std::max<int64_t>(1, kGrainElements / std::max<int64_t>(d.c, 1)), rows);
  }
}

}  // namespace cyclone::kernels::cpu::bn
