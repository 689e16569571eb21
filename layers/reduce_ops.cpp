#include "cyclone/layers/reduce_ops.h"

#include <vector>

#include "cyclone/core/autograd.h"
#include "cyclone/core/context.h"
#include "cyclone/kernels/reduce.h"
#include "cyclone/layers/ops.h"

namespace cyclone {

using kernels::BinaryOp;
using kernels::ReduceOp;

namespace {

// The axis in [0, rank), or an Error naming the op, the axis and the shape.
int checked_axis(const char* op, const Shape& s, int axis) {
  const int r = s.rank();
  CYCLONE_CHECK(axis >= -r && axis < r, op, ": axis ", axis, " is out of range for shape ", s,
                " (rank ", r, ")");
  return axis < 0 ? axis + r : axis;
}

Shape reduced_shape(const Shape& s, int axis, bool keepdim) {
  std::vector<int64_t> dims = s.dims();
  if (keepdim)
    dims[static_cast<size_t>(axis)] = 1;
  else
    dims.erase(dims.begin() + axis);
  return Shape(std::move(dims));
}

Tensor reduce_all_of(ReduceOp op, const Tensor& x) {
  Tensor out = Tensor::empty(Shape{}, x.dtype(), x.device());
  kernels::reduce_all(Context::of(x), op, x, out);
  return out;
}

Tensor reduce_axis_of(ReduceOp op, const Tensor& x, int axis, bool keepdim) {
  Tensor out = Tensor::empty(reduced_shape(x.shape(), axis, keepdim), x.dtype(), x.device());
  kernels::reduce_axis(Context::of(x), op, x, axis, out);
  return out;
}

// out = zeros of `shape` except out[o, index[o, i], i] = src[o, i]. Differentiable in src: the
// gradient gathers g at the same positions, written as sum(g * onehot) so that it is itself made
// of differentiable ops.
Tensor scatter_axis(const Tensor& src, const Tensor& index, const Shape& shape, int axis) {
  Tensor out = Tensor::empty(shape, src.dtype(), src.device());
  kernels::scatter_axis(Context::of(src), src, index, axis, out);
  return autograd::record(
      out, "scatter_axis", {src},
      [src, index, shape, axis](const Tensor& g, const Tensor&) -> std::vector<Tensor> {
        const Tensor onehot = scatter_axis(ones_like(src), index, shape, axis);
        return {sum(mul(g, onehot), axis, true).reshape(src.shape())};
      });
}

}  // namespace

Tensor sum(const Tensor& x) {
  if (is_half(x.dtype())) return via_float32(x, [](const Tensor& f) { return sum(f); });
  return autograd::record(
      reduce_all_of(ReduceOp::kSum, x), "sum", {x},
      [shape = x.shape()](const Tensor& g, const Tensor&) -> std::vector<Tensor> {
        // A one-element g broadcasts against x's shape.
        return {add(zeros(shape, g.dtype(), g.device()), g)};
      });
}

Tensor mean(const Tensor& x) {
  if (is_half(x.dtype())) return via_float32(x, [](const Tensor& f) { return mean(f); });
  const double n = static_cast<double>(x.numel());
  return autograd::record(
      reduce_all_of(ReduceOp::kMean, x), "mean", {x},
      [shape = x.shape(), n](const Tensor& g, const Tensor&) -> std::vector<Tensor> {
        return {mul(add(zeros(shape, g.dtype(), g.device()), g), 1.0 / n)};
      });
}

Tensor max(const Tensor& x) {
  if (is_half(x.dtype())) return via_float32(x, [](const Tensor& f) { return max(f); });
  return autograd::record(
      reduce_all_of(ReduceOp::kMax, x), "max", {x},
      [x](const Tensor& g, const Tensor& out) -> std::vector<Tensor> {
        // torch's evenly_distribute_backward: every element equal to the max (every NaN when the
        // max is NaN) gets g / count. Built from elementwise ops, with no read back to the host.
        const Tensor x_nan =
            apply(kernels::UnaryOp::kAffine, apply(BinaryOp::kEqual, x, x), -1.0, 1.0);
        const Tensor out_nan =
            apply(kernels::UnaryOp::kAffine, apply(BinaryOp::kEqual, out, out), -1.0, 1.0);
        const Tensor mask = add(apply(BinaryOp::kEqual, x, out), mul(x_nan, out_nan));
        return {div(mul(mask, g), sum(mask))};
      });
}

Tensor sum(const Tensor& x, int axis, bool keepdim) {
  if (is_half(x.dtype()))
    return via_float32(x, [&](const Tensor& f) { return sum(f, axis, keepdim); });
  const int a = checked_axis("sum", x.shape(), axis);
  return autograd::record(
      reduce_axis_of(ReduceOp::kSum, x, a, keepdim), "sum_axis", {x},
      [shape = x.shape(), a](const Tensor& g, const Tensor&) -> std::vector<Tensor> {
        return {expand_axis(g, shape, a)};
      });
}

Tensor mean(const Tensor& x, int axis, bool keepdim) {
  if (is_half(x.dtype()))
    return via_float32(x, [&](const Tensor& f) { return mean(f, axis, keepdim); });
  const int a = checked_axis("mean", x.shape(), axis);
  const double len = static_cast<double>(x.dim(a));
  return autograd::record(
      reduce_axis_of(ReduceOp::kMean, x, a, keepdim), "mean_axis", {x},
      [shape = x.shape(), a, len](const Tensor& g, const Tensor&) -> std::vector<Tensor> {
        return {mul(expand_axis(g, shape, a), 1.0 / len)};
      });
}

Tensor max(const Tensor& x, int axis, bool keepdim) {
  if (is_half(x.dtype()))
    return via_float32(x, [&](const Tensor& f) { return max(f, axis, keepdim); });
  const int a = checked_axis("max", x.shape(), axis);
  Tensor out = reduce_axis_of(ReduceOp::kMax, x, a, keepdim);
  if (!autograd::needs_grad({&x})) return out;
  // The index is taken now, as torch.max(dim) returns it with the values: the backward then
  // does not depend on x still holding the same values.
  const Tensor index = argmax(x, a, keepdim);
  return autograd::record(
      out, "max_axis", {x},
      [shape = x.shape(), index, a](const Tensor& g, const Tensor&) -> std::vector<Tensor> {
        return {scatter_axis(g, index, shape, a)};
      });
}

Tensor argmax(const Tensor& x, int axis, bool keepdim) {
  if (is_half(x.dtype()))  // widening keeps every order and tie
    return argmax(cast(x.detach(), DType::kFloat32), axis, keepdim);
  const int a = checked_axis("argmax", x.shape(), axis);
  Tensor out = Tensor::empty(reduced_shape(x.shape(), a, keepdim), DType::kInt32, x.device());
  kernels::argmax_axis(Context::of(x), x, a, out);
  return out;
}

Tensor expand_axis(const Tensor& x, const Shape& shape, int axis) {
  if (is_half(x.dtype()))
    return via_float32(x, [&](const Tensor& f) { return expand_axis(f, shape, axis); });
  const int a = checked_axis("expand_axis", shape, axis);
  Tensor out = Tensor::empty(shape, x.dtype(), x.device());
  kernels::broadcast_axis(Context::of(x), x, a, out);
  return autograd::record(
      out, "expand_axis", {x},
      [from = x.shape(), a](const Tensor& g, const Tensor&) -> std::vector<Tensor> {
        return {sum(g, a, true).reshape(from)};
      });
}

}  // namespace cyclone
