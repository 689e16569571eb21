// CUDA implementations of kernels/sync_batchnorm.h (arguments already validated).
#pragma once

#include "cyclone/core/cuda_decl.h"
#include "cyclone/kernels/sync_batchnorm.h"

namespace cyclone::kernels::cuda {
CYCLONE_CUDA_FN(void sync_batch_norm_pack(Context& ctx, const Tensor& save_mean,
                                          const Tensor& save_invstd, double eps, double m,
                                          const Tensor& sums))
CYCLONE_CUDA_FN(void sync_batch_norm_stats(Context& ctx, const Tensor& sums, double eps,
                                           double momentum, const Tensor& mean, const Tensor& var,
                                           const Tensor& invstd, const Tensor& running_mean,
                                           const Tensor& running_var))
CYCLONE_CUDA_FN(void sync_batch_norm_dx_affine(Context& ctx, const Tensor& sums,
                                               const Tensor& grads, const Tensor& weight,
                                               double eps, const Tensor& alpha, const Tensor& beta))
}  // namespace cyclone::kernels::cuda
