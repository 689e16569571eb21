// CPU reference implementations of kernels/reduce.h (arguments already validated; d is x viewed
// as [outer, len, inner] around the reduced axis, or [N, C, inner] for reduce_channels).
#pragma once

#include <vector>

#include "cyclone/kernels/reduce.h"

namespace cyclone::kernels::cpu {
void reduce_axis(Context& ctx, ReduceOp op, const Tensor& x, const ReduceDims& d,
                 const Tensor& out);
void reduce_all(Context& ctx, ReduceOp op, const Tensor& x, const Tensor& out);
void sum_squares(Context& ctx, const std::vector<Tensor>& xs, const Tensor& out);
void reduce_channels(Context& ctx, ReduceOp op, const Tensor& x, const ReduceDims& d,
                     const Tensor& out);
void argmax_axis(Context& ctx, const Tensor& x, const ReduceDims& d, const Tensor& out);
void broadcast_axis(Context& ctx, const Tensor& src, const ReduceDims& d, const Tensor& out);
void scatter_axis(Context& ctx, const Tensor& src, const Tensor& index, const ReduceDims& d,
                  const Tensor& out);
}  // namespace cyclone::kernels::cpu
