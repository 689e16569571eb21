// CUDA implementation of kernels/transpose.h (arguments already validated): the shared-memory
// tile transpose.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cyclone/core/context.h"
#include "cyclone/core/cuda_decl.h"

namespace cyclone::kernels::cuda {
CYCLONE_CUDA_FN(void batched_transpose(Context& ctx, const void* x, size_t element_size,
                                       int64_t batch, int64_t rows, int64_t cols, void* y))
}  // namespace cyclone::kernels::cuda
