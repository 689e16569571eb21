// CPU implementation of kernels/gemm.h (arguments already validated): OpenBLAS cblas_?gemm.
#pragma once

#include "cyclone/kernels/gemm.h"

namespace cyclone::kernels::cpu {
void gemm(Context& ctx, const GemmProblem& p, const Tensor& a, const Tensor& b, const Tensor& c);
}  // namespace cyclone::kernels::cpu
