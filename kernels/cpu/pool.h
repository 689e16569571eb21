// CPU implementation of kernels/pool.h (arguments already validated): loops over planes, in
// parallel, calling the shared per-element math of kernels/pool_math.h.
#pragma once

#include "cyclone/kernels/pool.h"

namespace cyclone::kernels::cpu {
void max_pool2d_forward(Context& ctx, const Pool2dGeometry& g, const Tensor& x, const Tensor& y,
                        const Tensor& indices);
void max_pool2d_backward(Context& ctx, const Pool2dGeometry& g, const Tensor& dy,
                         const Tensor& indices, const Tensor& dx);
void avg_pool2d_forward(Context& ctx, const Pool2dGeometry& g, const Tensor& x, const Tensor& y);
void avg_pool2d_backward(Context& ctx, const Pool2dGeometry& g, const Tensor& dy, const Tensor& dx);
}  // namespace cyclone::kernels::cpu
