// CPU reference implementations of kernels/elementwise.h (arguments already validated).
#pragma once

#include "cyclone/kernels/elementwise.h"

namespace cyclone::kernels::cpu {
void unary(Context& ctx, UnaryOp op, const Tensor& x, const Tensor& out, double a, double b);
void binary(Context& ctx, BinaryOp op, const Tensor& x, const Tensor& y, const Tensor& out);
void fill(Context& ctx, const Tensor& out, double value);
void cast(Context& ctx, const Tensor& x, const Tensor& out);
void increment(Context& ctx, const Tensor& counter);
void gather_rows(Context& ctx, const Tensor& src, const Tensor& index, const Tensor& out);
}  // namespace cyclone::kernels::cpu
