// Launch helpers shared by the CUDA kernels of kernels/cuda/.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "cyclone/core/context.h"
#include "cyclone/core/cuda/runtime.h"

namespace cyclone::kernels::cuda {

constexpr int kBlock = 256;

// Grid for a grid-stride loop over n elements: enough blocks to fill the GPU several times over,
// capped so huge tensors reuse threads instead of launching millions of blocks.
inline int grid_for(int64_t n, int block = kBlock) {
  const int64_t blocks = (n + block - 1) / block;
  return static_cast<int>(std::clamp<int64_t>(blocks, 1, 132 * 32));
}

inline cudaStream_t stream_of(Context& ctx) { return static_cast<cudaStream_t>(ctx.stream()); }

#define CYCLONE_GRID_STRIDE(i, n)                                           \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); \
       i += int64_t(gridDim.x) * blockDim.x)

}  // namespace cyclone::kernels::cuda
