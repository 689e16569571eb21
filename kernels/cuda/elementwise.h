// CUDA implementations of kernels/elementwise.h (arguments already validated).
#pragma once

#include "cyclone/core/cuda_decl.h"
#include "cyclone/kernels/elementwise.h"

namespace cyclone::kernels::cuda {
CYCLONE_CUDA_FN(void unary(Context& ctx, UnaryOp op, const Tensor& x, const Tensor& out, double a,
                           double b))
CYCLONE_CUDA_FN(void binary(Context& ctx, BinaryOp op, const Tensor& x, const Tensor& y,
                            const Tensor& out))
CYCLONE_CUDA_FN(void fill(Context& ctx, const Tensor& out, double value))
CYCLONE_CUDA_FN(void cast(Context& ctx, const Tensor& x, const Tensor& out))
CYCLONE_CUDA_FN(void increment(Context& ctx, const Tensor& counter))
CYCLONE_CUDA_FN(void gather_rows(Context& ctx, const Tensor& src, const Tensor& index,
                                 const Tensor& out))
}  // namespace cyclone::kernels::cuda
