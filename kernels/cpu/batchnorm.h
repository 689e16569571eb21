// CPU reference implementations of kernels/batchnorm.h (arguments already validated): double
// accumulation in shape-fixed chunks spread over the thread pool, combined in a fixed order (the
// results do not depend on the thread count). relu selects the fused variants; the backward reads
// bias only then.
#pragma once

#include "cyclone/kernels/batchnorm.h"

namespace cyclone::kernels::cpu {
void batch_norm_forward(Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& bias,
                        const Tensor& running_mean, const Tensor& running_var, bool training,
                        double momentum, double eps, const Tensor& y, const Tensor& save_mean,
                        const Tensor& save_invstd, bool relu);
void batch_norm_backward(Context& ctx, const Tensor& x, const Tensor& dy, const Tensor& weight,
                         const Tensor& bias, const Tensor& save_mean, const Tensor& save_invstd,
                         bool training, const Tensor& dx, const Tensor& dweight,
                         const Tensor& dbias, bool relu);
}  // namespace cyclone::kernels::cpu
