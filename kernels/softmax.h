// Softmax family over the last dimension of x viewed as [rows, classes] (numerically stable:
// max-subtracted, accumulated in float for float32 / double for float64).
//
// softmax:      y[r, c] = exp(x[r, c] - m_r) / sum_k exp(x[r, k] - m_r)
// log_softmax:  y[r, c] = x[r, c] - m_r - log sum_k exp(x[r, k] - m_r)
//   backward (given y and dy): softmax dx = y * (dy - sum_c dy*y);
//                              log_softmax dx = dy - exp(y) * sum_c dy
// softmax_cross_entropy: labels int32 [rows] in [0, classes); label smoothing eps (PyTorch's
//   CrossEntropyLoss(label_smoothing=eps)): target q = (1-eps)*onehot + eps/classes;
//   loss = mean_r sum_c -q[r,c] * log_softmax(x)[r,c]. Saves nothing but writes the per-row
//   log-sum-exp so that backward is one pass: dx = (softmax(x) - q) * dloss / rows.
//   A label outside [0, classes) is an Error naming the row and value (checked on the CPU; on the
//   GPU the kernel flags it and the host reads the flag only in debug (CYCLONE_SYNC=1) mode, while
//   the loss of such a row becomes NaN so that the trainer's non-finite check catches it).
// cost: ~3 passes over rows*classes elements.
//   Zero rows give a NaN loss (torch's mean of nothing). Accumulation: per row in the element type,
//   the mean over rows in double (in a fixed order on the GPU: deterministic).
// argmax_rows / topk_correct: predictions and accuracy; topk_correct counts rows whose label is
// among the k largest logits (ties broken toward the lower index, as torch.topk on CPU; NaN ranks
// above every number, as in torch). 1 <= k <= classes. A bad label is an Error on the CPU and
// counts as a wrong row on the GPU.
#pragma once

#include "cyclone/core/context.h"
#include "cyclone/core/tensor.h"

namespace cyclone::kernels {

void softmax_forward(Context& ctx, const Tensor& x, const Tensor& y);
void softmax_backward(Context& ctx, const Tensor& y, const Tensor& dy, const Tensor& dx);
void log_softmax_forward(Context& ctx, const Tensor& x, const Tensor& y);
void log_softmax_backward(Context& ctx, const Tensor& y, const Tensor& dy, const Tensor& dx);

// loss: one element (the mean over rows); lse: [rows] saved for the backward.
void softmax_cross_entropy_forward(Context& ctx, const Tensor& logits, const Tensor& labels,
                                   double label_smoothing, const Tensor& loss, const Tensor& lse);
// dlogits = (softmax - q) * dloss / rows, with dloss read from a one-element device tensor (so a
// captured graph need not know it on the host).
void softmax_cross_entropy_backward(Context& ctx, const Tensor& logits, const Tensor& labels,
                                    double label_smoothing, const Tensor& lse, const Tensor& dloss,
                                    const Tensor& dlogits);

void argmax_rows(Context& ctx, const Tensor& x, const Tensor& out);  // out int32 [rows]
// Number of rows whose label is among the top k (one int32 element in `count`).
void topk_correct(Context& ctx, const Tensor& logits, const Tensor& labels, int k,
                  const Tensor& count);

}  // namespace cyclone::kernels
