// Differentiable elementwise ops: each runs a kernel of kernels/elementwise.h on the tensors'
// device and records its backward with autograd::record. Binary ops broadcast a one-element
// tensor or a per-channel [C] vector against dim 1 (kernels/elementwise.h); their backward sums
// the gradient back to the smaller shape.
//
// How to add a differentiable op (the pattern every file of layers/ follows):
//   1. compute the output with kernels (Context::of(x) gives the device's context);
//   2. return autograd::record(out, "name", {inputs...}, closure) where the closure maps
//      (grad_output, output) to one gradient per input (undefined where not needed), using these
//      same differentiable ops so that the backward runs on any device;
//   3. add a gradient check (core/gradcheck.h) and a CPU-vs-CUDA parity test.
#pragma once

#include "cyclone/core/tensor.h"
#include "cyclone/kernels/functors.h"

namespace cyclone {

// ---- creation ----
Tensor full(const Shape& shape, double value, DType dtype = DType::kFloat32,
            Device device = default_device());
Tensor ones(const Shape& shape, DType dtype = DType::kFloat32, Device device = default_device());
Tensor zeros(const Shape& shape, DType dtype = DType::kFloat32, Device device = default_device());
Tensor full_like(const Tensor& t, double value);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
// A copy with another dtype (not differentiable across to/from integer types).
Tensor cast(const Tensor& x, DType dtype);

// ---- binary, with broadcasting ----
// Floating operands of two dtypes are promoted as PyTorch does (the wider one; bfloat16 with
// float16 gives float32), the narrower cast differentiably.
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);  // gradient to a where a >= b, else to b
Tensor minimum(const Tensor& a, const Tensor& b);

// ---- with a scalar ----
Tensor add(const Tensor& a, double s);
Tensor mul(const Tensor& a, double s);
Tensor pow(const Tensor& a, double p);
Tensor clamp(const Tensor& a, double lo, double hi);

// ---- unary ----
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor square(const Tensor& x);
Tensor abs(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);

// Applies a UnaryOp / BinaryOp with no gradient (comparisons, masks, backward helpers).
Tensor apply(kernels::UnaryOp op, const Tensor& x, double a = 0, double b = 0);
Tensor apply(kernels::BinaryOp op, const Tensor& x, const Tensor& y);

// Sums g (of a broadcast result's shape) down to `shape` (a scalar or per-channel operand's):
// the backward of broadcasting.
Tensor sum_to(const Tensor& g, const Shape& shape);

// f(x), except that a bfloat16 or float16 x (mixed precision, layers/autocast.h) is widened to
// float32 for f and the result rounded back to x's dtype: how the ops without a 16-bit kernel
// (pooling, reductions, dropout) take 16-bit activations. Differentiable through the casts.
template <class F>
Tensor via_float32(const Tensor& x, F&& f) {
  if (!is_half(x.dtype())) return f(x);
  return cast(f(cast(x, DType::kFloat32)), x.dtype());
}

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& a) { return neg(a); }
inline Tensor operator+(const Tensor& a, double s) { return add(a, s); }
inline Tensor operator+(double s, const Tensor& a) { return add(a, s); }
inline Tensor operator-(const Tensor& a, double s) { return add(a, -s); }
inline Tensor operator-(double s, const Tensor& a) { return add(neg(a), s); }
inline Tensor operator*(const Tensor& a, double s) { return mul(a, s); }
inline Tensor operator*(double s, const Tensor& a) { return mul(a, s); }
inline Tensor operator/(const Tensor& a, double s) { return mul(a, 1.0 / s); }

}  // namespace cyclone
