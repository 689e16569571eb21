// CUDA implementation of kernels/conv.h (arguments already validated): cuDNN on ctx's handle.
#pragma once

#include "cyclone/core/cuda_decl.h"
#include "cyclone/kernels/conv.h"

namespace cyclone::kernels::cuda {
CYCLONE_CUDA_FN(void conv2d_forward(Context& ctx, const Conv2dGeometry& g, const Tensor& x,
                                    const Tensor& weight, const Tensor& bias, const Tensor& y))
CYCLONE_CUDA_FN(void conv2d_backward_data(Context& ctx, const Conv2dGeometry& g, const Tensor& dy,
                                          const Tensor& weight, const Tensor& dx))
CYCLONE_CUDA_FN(void conv2d_backward_filter(Context& ctx, const Conv2dGeometry& g, const Tensor& x,
                                            const Tensor& dy, const Tensor& dw))
}  // namespace cyclone::kernels::cuda
