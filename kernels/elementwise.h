// Elementwise kernels (no autograd): one dispatch point per op, CPU or CUDA by the tensors' device.
//
// unary:  out[i] = f(x[i]; a, b)                         cost: n flops-ish, 2n*sizeof(T) bytes
// binary: out[i] = f(x[ix(i)], y[iy(i)])                 cost: n flops, 3n*sizeof(T) bytes (full)
//   with each operand full-size, a scalar, a per-channel vector broadcast along dim 1 (NCHW bias,
//   [N, C] bias), or an "outer" operand whose leading dims match and trailing dims are 1 ([N, 1]
//   against [N, C]: a keepdim reduction). out may alias an input of the same shape (in-place).
// fill:   out[i] = value                                 cost: n*sizeof(T) bytes
// cast:   out[i] = T_out(x[i]) (float32/float64/int32/uint8; float->int truncates toward zero)
// increment: counter[i] += 1 for an int32 tensor, exact (batch norm's num_batches_tracked: one
//   launch, where a float detour took three and was exact only to 2^24)   cost: 8n bytes
// gather_rows: out[b] = src[index[b]] for rows (the first dim) of any dtype; index int32 on the
//   same device, every entry in [0, rows) (checked on the CPU; on CUDA an out-of-range entry
//   gives a zero row, never an out-of-bounds read). cost: 2 B*row bytes + 4 B bytes. It is how
//   the loader batches features kept in GPU memory (data/loader.h).
// Tensors must be contiguous, on one device, float32, float64, bfloat16 or float16 for
// unary/binary (the 16-bit floats are computed in float32 and rounded once per element).
#pragma once

#include "cyclone/core/context.h"
#include "cyclone/core/tensor.h"
#include "cyclone/kernels/functors.h"

namespace cyclone::kernels {

void unary(Context& ctx, UnaryOp op, const Tensor& x, const Tensor& out, double a = 0,
           double b = 0);
void binary(Context& ctx, BinaryOp op, const Tensor& x, const Tensor& y, const Tensor& out);
void fill(Context& ctx, const Tensor& out, double value);
void cast(Context& ctx, const Tensor& x, const Tensor& out);
void increment(Context& ctx, const Tensor& counter);
void gather_rows(Context& ctx, const Tensor& src, const Tensor& index, const Tensor& out);
// A float32 copy of x on its device (x itself when it is float32): how the CPU computes
// bfloat16 or float16 operands (exactly widened) with its float32 code.
Tensor to_float32(Context& ctx, const Tensor& x);

// The output shape of a binary op on x and y, or an Error naming the op and both shapes.
Shape broadcast_shape(const char* op, const Tensor& x, const Tensor& y);
// How `operand` is read when the output has shape `out`.
BroadcastIndex broadcast_index(const Tensor& operand, const Shape& out);

}  // namespace cyclone::kernels
