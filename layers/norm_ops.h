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

#include <functional>
#include <vector>

#include "cyclone/core/tensor.h"

namespace cyclone {

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum = 0.1,
                  double eps = 1e-5);

// relu(batch_norm(...)) in one kernel each way (kernels/batchnorm.h, "fused ReLU"): the same values
// and gradients as the pair, without the intermediate tensor (one activation-sized tensor less
// kept for the backward) and with one pass less over the activations each way.
Tensor batch_norm_relu(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                       const Tensor& weight, const Tensor& bias, bool training,
                       double momentum = 0.1, double eps = 1e-5);

// Adds a float64 tensor over the replicas of a data-parallel job, in place, on its device (the
// training code passes one over dist/'s communicators: NCCL for a GPU's tensors, MPI for the
// CPU's; layers/ itself knows nothing of ranks).
using ReplicaSum = std::function<void(const Tensor&)>;

// Synchronized batch normalization in training mode (torch.nn.SyncBatchNorm): the statistics are
// those of the global batch, every replica's x together. With M_r values per channel on replica r
// and M = sum M_r:
//   forward: each replica's (mean_r, var_r) from kernels/batchnorm.h's two-pass statistics are
//     combined exactly (Chan et al.): mean = sum M_r mean_r / M, var = sum M_r (var_r + mean_r^2) /
//     M - mean^2 (in double); y and the running statistics as batch_norm with those (unbiased
//     running_var with M).
//   backward: S1 = sum over all replicas of dy, S2 = sum of dy * xhat; dx = weight * invstd *
//     (dy - S1 / M - xhat * S2 / M); dweight and dbias are this replica's sums (the gradient
//     averaging over replicas adds them up, as PyTorch's DDP does for SyncBatchNorm).
// With one replica (a ReplicaSum that does nothing) it equals batch_norm(training = true).
// cost: batch_norm's passes over x forward (statistics, then one normalisation with the global
// ones) plus one extra pass backward, one replica sum of
// 2C + 1 doubles each way, and O(C) kernels (kernels/sync_batchnorm.h): everything stays on x's
// device (no copy to the host), except reading the global count where a replica has M_r <= 1.
// The replica sum itself may wait: the apps' (train/distributed.cpp) waits on the host for each
// all-reduce, under the communicator's deadline, so a dead rank stops the job instead of hanging
// it; on GPUs that drains the stream twice per layer and step (its cost is a GPU measurement).
Tensor sync_batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                       const Tensor& weight, const Tensor& bias, double momentum, double eps,
                       const ReplicaSum& replica_sum);

}  // namespace cyclone
