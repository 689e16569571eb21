// Differentiable batch normalization (the pattern of layers/ops.h) on kernels/batchnorm.h, as
// torch.nn.functional.batch_norm(x, running_mean, running_var, weight, bias, training, momentum,
// eps).
//
// x: [N, C] or [N, C, H, W] (any [N, C, ...]); running_mean, running_var, weight, bias: [C] of x's
// dtype and device. weight and bias may be undefined (no affine transform); the running stats may
// be undefined in training mode (track_running_stats=False) and are required in eval mode.
//   training: normalise with the batch's mean and biased variance; update running_mean and
//     running_var in place (running = (1 - momentum) running + momentum batch, with the unbiased
//     batch variance for running_var; the update is not recorded by autograd, and happens under
//     NoGradGuard too, as in PyTorch).
//   eval: normalise with running_mean and running_var (nothing is updated).
// Gradients flow to x, weight and bias (the formulas of kernels/batchnorm.h; in eval mode the
// statistics are constants). The backward is one kernel and is not itself recorded: no second
// derivatives. Defaults are PyTorch's BatchNorm2d: momentum 0.1, eps 1e-5.
#pragma once

#include "cyclone/core/tensor.h"

namespace cyclone {

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum = 0.1,
                  double eps = 1e-5);

}  // namespace cyclone
