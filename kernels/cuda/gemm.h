// CUDA implementation of kernels/gemm.h (arguments already validated): cuBLAS on ctx's handle.
#pragma once

#include "cyclone/core/cuda_decl.h"
#include "cyclone/kernels/gemm.h"

namespace cyclone::kernels::cuda {
CYCLONE_CUDA_FN(void gemm(Context& ctx, const GemmProblem& p, const Tensor& a, const Tensor& b,
                          const Tensor& c))
}  // namespace cyclone::kernels::cuda
