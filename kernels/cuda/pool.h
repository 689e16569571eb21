// CUDA implementation of kernels/pool.h (arguments already validated): grid-stride kernels over
// the shared per-element math of kernels/pool_math.h.
#pragma once

#include "cyclone/core/cuda_decl.h"
#include "cyclone/kernels/pool.h"

namespace cyclone::kernels::cuda {
CYCLONE_CUDA_FN(void max_pool2d_forward(Context& ctx, const Pool2dGeometry& g, const Tensor& x,
                                        const Tensor& y, const Tensor& indices))
CYCLONE_CUDA_FN(void max_pool2d_backward(Context& ctx, const Pool2dGeometry& g, const Tensor& dy,
                                         const Tensor& indices, const Tensor& dx))
CYCLONE_CUDA_FN(void avg_pool2d_forward(Context& ctx, const Pool2dGeometry& g, const Tensor& x,
                                        const Tensor& y))
CYCLONE_CUDA_FN(void avg_pool2d_backward(Context& ctx, const Pool2dGeometry& g, const Tensor& dy,
                                         const Tensor& dx))
}  // namespace cyclone::kernels::cuda
