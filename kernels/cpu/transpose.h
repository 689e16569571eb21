// CPU implementation of kernels/transpose.h (arguments already validated): tiled loops.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cyclone/core/context.h"

namespace cyclone::kernels::cpu {
void batched_transpose(Context& ctx, const void* x, size_t element_size, int64_t batch,
                       int64_t rows, int64_t cols, void* y);
}  // namespace cyclone::kernels::cpu
