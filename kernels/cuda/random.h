// CUDA backend of kernels/random.h (arguments already checked by the dispatcher). In a build
// without CUDA these are stubs that throw (core/cuda_decl.h).
#pragma once

#include <cstdint>

#include "cyclone/core/context.h"
#include "cyclone/core/cuda_decl.h"
#include "cyclone/core/tensor.h"

namespace cyclone::kernels::cuda {

CYCLONE_CUDA_FN(void uniform_(Context& ctx, const Tensor& out, double lo, double hi, uint64_t seed,
                              uint64_t offset))
CYCLONE_CUDA_FN(void normal_(Context& ctx, const Tensor& out, double mean, double std,
                             uint64_t seed, uint64_t offset))
CYCLONE_CUDA_FN(void bernoulli_(Context& ctx, const Tensor& out, double p, uint64_t seed,
                                uint64_t offset))

}  // namespace cyclone::kernels::cuda
