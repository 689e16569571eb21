// CUDA implementation of kernels/step_guard.h (arguments already validated).
#pragma once

#include "cyclone/core/cuda_decl.h"
#include "cyclone/kernels/step_guard.h"

namespace cyclone::kernels::cuda {
CYCLONE_CUDA_FN(void step_guard(Context& ctx, const StepGuardConfig& cfg, const Tensor& loss,
                                const Tensor& grad_sq, const Tensor& correct, const Tensor& state,
                                const Tensor& gate, const Tensor& scale, const Tensor& loss_scale))
}  // namespace cyclone::kernels::cuda
