#include "cyclone/kernels/cpu/transpose.h"

#include <algorithm>
#include <cstring>

#include "cyclone/core/error.h"
#include "cyclone/core/parallel.h"

namespace cyclone::kernels::cpu {

namespace {

constexpr int64_t kTile = 32;

// One (batch, row tile) unit of work: rows [r0, r0 + kTile) of batch b, all columns, in tiles.
template <class E>
void transpose_rows(const E* x, E* y, int64_t rows, int64_t cols, int64_t b, int64_t r0) {
  const E* xb = x + b * rows * cols;
  E* yb = y + b * rows * cols;
  const int64_t r1 = std::min(rows, r0 + kTile);
  for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
    const int64_t c1 = std::min(cols, c0 + kTile);
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t c = c0; c < c1; ++c) yb[c * rows + r] = xb[r * cols + c];
  }
}

template <class E>
void transpose_all(const void* x, int64_t batch, int64_t rows, int64_t cols, void* y) {
  const int64_t row_tiles = (rows + kTile - 1) / kTile;
  const int64_t grain =
      std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(kTile * cols, 1));
  parallel_for(batch * row_tiles, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t u = lo; u < hi; ++u)
      transpose_rows(static_cast<const E*>(x), static_cast<E*>(y), rows, cols, u / row_tiles,
                     (u % row_tiles) * kTile);
  });
}

}  // namespace

void batched_transpose(Context&, const void* x, size_t element_size, int64_t batch, int64_t rows,
                       int64_t cols, void* y) {
  switch (element_size) {
    case 1:
      return transpose_all<uint8_t>(x, batch, rows, cols, y);
    case 2:
      return transpose_all<uint16_t>(x, batch, rows, cols, y);
    case 4:
      return transpose_all<uint32_t>(x, batch, rows, cols, y);
    case 8:
      return transpose_all<uint64_t>(x, batch, rows, cols, y);
    default:
      CYCLONE_THROW("batched_transpose: unsupported element size ", element_size);
  }
}

}  // namespace cyclone::kernels::cpu
