// CUDA implementations of kernels/reduce.h (arguments already validated; see kernels/cpu/reduce.h
// for the meaning of d).
#pragma once

#include <vector>

#include "cyclone/core/cuda_decl.h"
#include "cyclone/kernels/reduce.h"

namespace cyclone::kernels::cuda {
CYCLONE_CUDA_FN(void reduce_axis(Context& ctx, ReduceOp op, const Tensor& x, const ReduceDims& d,
                                 const Tensor& out))
CYCLONE_CUDA_FN(void reduce_all(Context& ctx, ReduceOp op, const Tensor& x, const Tensor& out))
CYCLONE_CUDA_FN(void sum_squares(Context& ctx, const std::vector<Tensor>& xs, const Tensor& out))
CYCLONE_CUDA_FN(void reduce_channels(Context& ctx, ReduceOp op, const Tensor& x,
                                     const ReduceDims& d, const Tensor& out))
CYCLONE_CUDA_FN(void argmax_axis(Context& ctx, const Tensor& x, const ReduceDims& d,
                                 const Tensor& out))
CYCLONE_CUDA_FN(void broadcast_axis(Context& ctx, const Tensor& src, const ReduceDims& d,
                                    const Tensor& out))
CYCLONE_CUDA_FN(void scatter_axis(Context& ctx, const Tensor& src, const Tensor& index,
                                  const ReduceDims& d, const Tensor& out))
}  // namespace cyclone::kernels::cuda
