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
// Whether cuDNN's non-fused Winograd algorithms may serve a convolution of this data type and
// filter size (conv.cpp says what they cost in precision): float32 with filters up to 3x3, or
// with TF32 allowed; never the 16-bit types or float64.
CYCLONE_CUDA_FN(bool conv_winograd_allowed(DType dt, bool allow_tf32, int64_t kh, int64_t kw))
}  // namespace cyclone::kernels::cuda
