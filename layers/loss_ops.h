// Differentiable softmax family and classification losses (the pattern of layers/ops.h), on the
// fused kernels of kernels/softmax.h. All act on the last dimension.
//
// softmax(x), log_softmax(x): torch.softmax / torch.log_softmax over dim -1.
// cross_entropy(logits [N, C], labels int32 [N], eps): torch.nn.functional.cross_entropy with
//   reduction "mean" and label_smoothing eps, as a scalar (shape []):
//   loss = mean_r [ -(1-eps) log p[r, label_r] - (eps/C) sum_c log p[r, c] ].
//   Its backward is one fused pass reading the upstream gradient on the device (no host sync).
//   A label outside [0, C) is an Error on the CPU; on the GPU the loss becomes NaN (see
//   kernels/softmax.h).
// accuracy_topk(logits, labels, k): fraction of rows whose label is among the k largest logits
//   (ties toward the lower index); a metric, not differentiable; reads one integer back to the
//   host. NaN for an empty batch.
// Gradients of these are first-order only (the engine runs backward with grad mode off).
#pragma once

#include "cyclone/core/tensor.h"

namespace cyclone {

Tensor softmax(const Tensor& x);
Tensor log_softmax(const Tensor& x);
Tensor cross_entropy(const Tensor& logits, const Tensor& labels, double label_smoothing = 0);
double accuracy_topk(const Tensor& logits, const Tensor& labels, int k = 1);

}  // namespace cyclone
