// CPU reference implementations of kernels/softmax.h (arguments already validated). `log` picks
// log_softmax over softmax. Bad labels throw here, naming the row and the value.
#pragma once

#include "cyclone/kernels/softmax.h"

namespace cyclone::kernels::cpu {
void softmax_forward(Context& ctx, const Tensor& x, const Tensor& y, bool log);
void softmax_backward(Context& ctx, const Tensor& y, const Tensor& dy, const Tensor& dx, bool log);
void softmax_cross_entropy_forward(Context& ctx, const Tensor& logits, const Tensor& labels,
                                   double label_smoothing, const Tensor& loss, const Tensor& lse);
void softmax_cross_entropy_backward(Context& ctx, const Tensor& logits, const Tensor& labels,
                                    double label_smoothing, const Tensor& lse, const Tensor& dloss,
                                    const Tensor& dlogits);
void argmax_rows(Context& ctx, const Tensor& x, const Tensor& out);
void topk_correct(Context& ctx, const Tensor& logits, const Tensor& labels, int k,
                  const Tensor& count);
}  // namespace cyclone::kernels::cpu
