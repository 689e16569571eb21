// dst[i] += src[i] on the GPU for the autograd engine (core/autograd.h). float32, float64 or
// bfloat16 (added in float, rounded once).
#pragma once

#include <cstdint>

#include "cyclone/core/cuda_decl.h"
#include "cyclone/core/dtype.h"

namespace cyclone::gpu {
CYCLONE_CUDA_FN(void accumulate(DType dtype, void* dst, const void* src, int64_t n, void* stream))
}  // namespace cyclone::gpu
