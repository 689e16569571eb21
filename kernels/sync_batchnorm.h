// Synchronized batch norm's per-channel steps (layers/norm_ops.h sync_batch_norm) on the
// statistics' device, so that a data-parallel step adds device tensors over the ranks (NCCL on
// GPUs, MPI on CPUs) and never copies them to the host. C = channels; sums are float64 tensors; the
// [C] statistics, running statistics, weight, alpha and beta are float32 or float64, one dtype,
// on the sums' device. The arithmetic (double) is kernels/sync_batchnorm_math.h.
//
// sync_batch_norm_pack: a replica's batch statistics (batch_norm_forward's save_mean and
//   save_invstd over its M values) as the sums to add over the replicas:
//     sums[c] = M mean_c,  sums[C + c] = M (var_c + mean_c^2),  sums[2C] = M
//   with var_c = 1/invstd_c^2 - eps (all 0 when M = 0: a replica without values).
// sync_batch_norm_stats: from the added sums (M = sums[2C], which must be > 1): mean_c, the biased
//   var_c = max(0, sums[C + c]/M - mean_c^2) and invstd_c = 1/sqrt(var_c + eps) into mean, var and
//   invstd; running_mean / running_var (when defined) updated as batch_norm_forward does, with the
//   unbiased var_c M / (M - 1).
// sync_batch_norm_dx_affine: the backward's correction from the added sums of the gradients,
//   grads[c] = sum dy and grads[C + c] = sum dy xhat over every replica's values (xhat with the
//   global statistics, recomputed from `sums`): dx = dy w_c invstd_c + alpha_c x + beta_c with
//     a_c = w_c invstd_c^2 grads[C + c] / M,  alpha_c = -a_c,  beta_c = -w_c invstd_c grads[c] / M
//     + a_c mean_c
//   (w = 1 when weight is undefined).
//
// cost: O(C) each, one launch on a GPU.
#pragma once

#include "cyclone/core/context.h"
#include "cyclone/core/tensor.h"

namespace cyclone::kernels {

void sync_batch_norm_pack(Context& ctx, const Tensor& save_mean, const Tensor& save_invstd,
                          double eps, double m, const Tensor& sums);
void sync_batch_norm_stats(Context& ctx, const Tensor& sums, double eps, double momentum,
                           const Tensor& mean, const Tensor& var, const Tensor& invstd,
                           const Tensor& running_mean, const Tensor& running_var);
void sync_batch_norm_dx_affine(Context& ctx, const Tensor& sums, const Tensor& grads,
                               const Tensor& weight, double eps, const Tensor& alpha,
                               const Tensor& beta);

}  // namespace cyclone::kernels
