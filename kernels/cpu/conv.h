// CPU implementation of kernels/conv.h (arguments already validated): im2col + OpenBLAS GEMM.
#pragma once

#include "cyclone/kernels/conv.h"

namespace cyclone::kernels::cpu {
void conv2d_forward(Context& ctx, const Conv2dGeometry& g, const Tensor& x, const Tensor& weight,
                    const Tensor& bias, const Tensor& y);
void conv2d_backward_data(Context& ctx, const Conv2dGeometry& g, const Tensor& dy,
                          const Tensor& weight, const Tensor& dx);
void conv2d_backward_filter(Context& ctx, const Conv2dGeometry& g, const Tensor& x,
                            const Tensor& dy, const Tensor& dw);
}  // namespace cyclone::kernels::cpu
