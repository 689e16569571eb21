// CUDA implementations of kernels/softmax.h (arguments already validated). `log` picks
// log_softmax over softmax.
#pragma once

#include "cyclone/core/cuda_decl.h"
#include "cyclone/kernels/softmax.h"

namespace cyclone::kernels::cuda {
CYCLONE_CUDA_FN(void softmax_forward(Context& ctx, const Tensor& x, const Tensor& y, bool log))
CYCLONE_CUDA_FN(void softmax_backward(Context& ctx, const Tensor& y, const Tensor& dy,
                                      const Tensor& dx, bool log))
CYCLONE_CUDA_FN(void softmax_cross_entropy_forward(Context& ctx, const Tensor& logits,
                                                   const Tensor& labels, double label_smoothing,
                                                   const Tensor& loss, const Tensor& lse))
CYCLONE_CUDA_FN(void softmax_cross_entropy_backward(Context& ctx, const Tensor& logits,
                                                    const Tensor& labels, double label_smoothing,
                                                    const Tensor& lse, const Tensor& dloss,
                                                    const Tensor& dlogits))
CYCLONE_CUDA_FN(void argmax_rows(Context& ctx, const Tensor& x, const Tensor& out))
CYCLONE_CUDA_FN(void topk_correct(Context& ctx, const Tensor& logits, const Tensor& labels, int k,
                                  const Tensor& count))
}  // namespace cyclone::kernels::cuda
