// The shared-memory tile transpose: a 32 x 8 block moves a 32 x 32 tile, reading rows of x and
// writing rows of y (both coalesced); the tile is 32 x 33 so the column reads of shared memory
// hit 32 different banks. Grid: (column tiles, row tiles, batch), with loops over y and z for
// shapes beyond the grid's 65535 limits. Narrow matrices take transpose_narrow_kernel.
#include <algorithm>
#include <cstdint>

#include "cyclone/core/cuda/check.h"
#include "cyclone/kernels/cuda/launch.cuh"
#include "cyclone/kernels/cuda/transpose.h"

namespace cyclone::kernels::cuda {

namespace {

constexpr int kTile = 32, kRowsPerPass = 8;

template <class E>
__global__ void transpose_kernel(const E* __restrict__ x, E* __restrict__ y, int64_t batch,
                                 int64_t rows, int64_t cols) {
  __shared__ E tile[kTile][kTile + 1];
  const int64_t row_tiles = (rows + kTile - 1) / kTile;
  const int64_t c0 = int64_t(blockIdx.x) * kTile;
  for (int64_t b = blockIdx.z; b < batch; b += gridDim.z) {
    const E* xb = x + b * rows * cols;
    E* yb = y + b * rows * cols;
    for (int64_t rt = blockIdx.y; rt < row_tiles; rt += gridDim.y) {
      const int64_t r0 = rt * kTile;
      for (int j = threadIdx.y; j < kTile; j += kRowsPerPass) {
        const int64_t r = r0 + j, c = c0 + threadIdx.x;
        if (r < rows && c < cols) tile[j][threadIdx.x] = xb[r * cols + c];
      }
      __syncthreads();
      for (int j = threadIdx.y; j < kTile; j += kRowsPerPass) {
        const int64_t c = c0 + j, r = r0 + threadIdx.x;
        if (r < rows && c < cols) yb[c * rows + r] = tile[threadIdx.x][j];
      }
      __syncthreads();
    }
  }
}

// Narrow matrices (rows or cols under a tile's width, e.g. a 3x3 filter's [Cin, 9] per output
// channel, what channels-last convolutions transpose every step) would leave most of a 32 x 32
// tile idle: one thread per output element instead, writes coalesced, reads strided by cols
// (whole such tensors are small and served from L2). 32-bit indices (n < 2^31).
template <class E>
__global__ void transpose_narrow_kernel(const E* __restrict__ x, E* __restrict__ y, uint32_t n,
                                        uint32_t rows, uint32_t cols) {
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    const uint32_t r = i % rows, bc = i / rows;  // y[b][c][r]
    const uint32_t c = bc % cols, b = bc / cols;
    y[i] = x[(b * rows + r) * cols + c];
  }
}

template <class E>
void launch(Context& ctx, const void* x, int64_t batch, int64_t rows, int64_t cols, void* y) {
  const int64_t n = batch * rows * cols;
  if ((rows < kTile || cols < kTile) && n < (int64_t{1} << 31)) {
    transpose_narrow_kernel<E><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(
        static_cast<const E*>(x), static_cast<E*>(y), static_cast<uint32_t>(n),
        static_cast<uint32_t>(rows), static_cast<uint32_t>(cols));
    return;
  }
  const int64_t col_tiles = (cols + kTile - 1) / kTile, row_tiles = (rows + kTile - 1) / kTile;
  CYCLONE_CHECK(col_tiles <= 0x7fffffff, "batched_transpose: ", cols, " columns is too many");
  const dim3 grid(static_cast<unsigned>(col_tiles),
                  static_cast<unsigned>(std::min<int64_t>(row_tiles, 65535)),
                  static_cast<unsigned>(std::min<int64_t>(batch, 65535)));
  transpose_kernel<E><<<grid, dim3(kTile, kRowsPerPass), 0, stream_of(ctx)>>>(
      static_cast<const E*>(x), static_cast<E*>(y), batch, rows, cols);
}

}  // namespace

void batched_transpose(Context& ctx, const void* x, size_t element_size, int64_t batch,
                       int64_t rows, int64_t cols, void* y) {
  switch (element_size) {
    case 1:
      launch<uint8_t>(ctx, x, batch, rows, cols, y);
      break;
    case 2:
      launch<uint16_t>(ctx, x, batch, rows, cols, y);
      break;
    case 4:
      launch<uint32_t>(ctx, x, batch, rows, cols, y);
      break;
    case 8:
      launch<uint64_t>(ctx, x, batch, rows, cols, y);
      break;
    default:
      CYCLONE_THROW("batched_transpose: unsupported element size ", element_size);
  }
  gpu::check_launch("batched_transpose", ctx.stream());
}

}  // namespace cyclone::kernels::cuda
