#include "cyclone/kernels/reduce.h"

#include <cstdint>
#include <limits>
#include <string>

#include "cyclone/kernels/cpu/reduce.h"
#include "cyclone/kernels/cuda/reduce.h"

namespace cyclone::kernels {

namespace {

// The axis in [0, rank), or an Error naming the op, the axis and the shape.
int normalize(const std::string& op, const Shape& s, int axis) {
  const int r = s.rank();
  CYCLONE_CHECK(r > 0, op, ": cannot reduce over axis ", axis, " of a scalar (shape ", s, ")");
  CYCLONE_CHECK(axis >= -r && axis < r, op, ": axis ", axis, " is out of range for shape ", s,
                " (rank ", r, ", valid axes ", -r, "..", r - 1, ")");
  return axis < 0 ? axis + r : axis;
}

void check_out_numel(const std::string& op, const Tensor& x, int axis, const Tensor& out,
                     int64_t expected) {
  CYCLONE_CHECK(out.numel() == expected, op, ": output has shape ", out.shape(), " (", out.numel(),
                " elements), expected ", expected, " elements for x of shape ", x.shape(),
                " reduced over axis ", axis);
}

std::string name_of(const char* kernel, ReduceOp op) {
  return std::string(kernel) + "(" + reduce_op_name(op) + ")";
}

}  // namespace

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return "sum";
    case ReduceOp::kMean:
      return "mean";
    case ReduceOp::kMax:
      return "max";
  }
  return "?";
}

ReduceDims reduce_dims(const Shape& s, int axis) {
  return {s.prod(0, axis), s.dims()[static_cast<size_t>(axis)], s.prod(axis + 1, s.rank())};
}

void reduce_axis(Context& ctx, ReduceOp op, const Tensor& x, int axis, const Tensor& out) {
  const std::string name = name_of("reduce_axis", op);
  check_float(name.c_str(), x, "x");
  check_same_dtype(name.c_str(), x, out);
  check_same_device(name.c_str(), x, out);
  const int a = normalize(name, x.shape(), axis);
  const ReduceDims d = reduce_dims(x.shape(), a);
  check_out_numel(name, x, axis, out, d.outer * d.inner);
  CYCLONE_CHECK(op != ReduceOp::kMax || d.len > 0 || out.numel() == 0, name, ": max over axis ",
                axis, " of shape ", x.shape(), " is a max of an empty set");
  if (out.numel() == 0) return;
  if (x.device().is_cuda()) return cuda::reduce_axis(ctx, op, x, d, out);
  cpu::reduce_axis(ctx, op, x, d, out);
}

void reduce_all(Context& ctx, ReduceOp op, const Tensor& x, const Tensor& out) {
  const std::string name = name_of("reduce_all", op);
  check_float(name.c_str(), x, "x");
  check_same_dtype(name.c_str(), x, out);
  check_same_device(name.c_str(), x, out);
  CYCLONE_CHECK(out.numel() == 1, name, ": output must hold one element, got shape ", out.shape(),
                " for x of shape ", x.shape());
  CYCLONE_CHECK(op != ReduceOp::kMax || x.numel() > 0, name, ": max of x of shape ", x.shape(),
                " is a max of an empty set");
  if (x.device().is_cuda()) return cuda::reduce_all(ctx, op, x, out);
  cpu::reduce_all(ctx, op, x, out);
}

void sum_squares(Context& ctx, const std::vector<Tensor>& xs, const Tensor& out) {
  CYCLONE_CHECK(out.defined() && out.numel() == 1 && out.dtype() == DType::kFloat32,
                "sum_squares: out must be one float32 element, got ",
                out.defined() ? dtype_name(out.dtype()) : "an undefined tensor", " of shape ",
                out.defined() ? out.shape() : Shape{});
  for (size_t i = 0; i < xs.size(); ++i) {
    CYCLONE_CHECK(xs[i].defined(), "sum_squares: tensor ", i, " is undefined");
    CYCLONE_CHECK(is_floating(xs[i].dtype()), "sum_squares: tensor ", i, " is ",
                  dtype_name(xs[i].dtype()), ", not a floating type");
    CYCLONE_CHECK(xs[i].device() == out.device(), "sum_squares: tensor ", i, " is on ",
                  xs[i].device(), ", out on ", out.device());
  }
  if (out.device().is_cuda()) return cuda::sum_squares(ctx, xs, out);
  cpu::sum_squares(ctx, xs, out);
}

void reduce_channels(Context& ctx, ReduceOp op, const Tensor& x, const Tensor& out) {
  const std::string name = name_of("reduce_channels", op);
  check_float(name.c_str(), x, "x");
  check_same_dtype(name.c_str(), x, out);
  check_same_device(name.c_str(), x, out);
  CYCLONE_CHECK(x.rank() >= 2, name, ": x must be [N, C, ...] (rank >= 2), got shape ", x.shape());
  const ReduceDims d = reduce_dims(x.shape(), 1);  // outer = N, len = C
  CYCLONE_CHECK(out.numel() == d.len, name, ": output has shape ", out.shape(), ", expected ",
                d.len, " elements (dim 1 of x of shape ", x.shape(), ")");
  CYCLONE_CHECK(op != ReduceOp::kMax || d.outer * d.inner > 0 || d.len == 0, name,
                ": max per channel of x of shape ", x.shape(), " is a max of an empty set");
  if (out.numel() == 0) return;
  if (x.device().is_cuda()) return cuda::reduce_channels(ctx, op, x, d, out);
  cpu::reduce_channels(ctx, op, x, d, out);
}

void argmax_axis(Context& ctx, const Tensor& x, int axis, const Tensor& out) {
  const std::string name = "argmax_axis";
  check_float(name.c_str(), x, "x");
  CYCLONE_CHECK(out.dtype() == DType::kInt32, name, ": output must be int32, got ",
                dtype_name(out.dtype()));
  check_same_device(name.c_str(), x, out);
  const int a = normalize(name, x.shape(), axis);
  const ReduceDims d = reduce_dims(x.shape(), a);
  check_out_numel(name, x, axis, out, d.outer * d.inner);
  CYCLONE_CHECK(d.len > 0 || out.numel() == 0, name, ": axis ", axis, " of shape ", x.shape(),
                " is empty (argmax of an empty set)");
  CYCLONE_CHECK(d.len <= std::numeric_limits<int32_t>::max(), name, ": axis ", axis, " of shape ",
                x.shape(), " is too long for int32 indices");
  if (out.numel() == 0) return;
  if (x.device().is_cuda()) return cuda::argmax_axis(ctx, x, d, out);
  cpu::argmax_axis(ctx, x, d, out);
}

void broadcast_axis(Context& ctx, const Tensor& src, int axis, const Tensor& out) {
  const std::string name = "broadcast_axis";
  check_float(name.c_str(), src, "src");
  check_same_dtype(name.c_str(), src, out);
  check_same_device(name.c_str(), src, out);
  const int a = normalize(name, out.shape(), axis);
  const ReduceDims d = reduce_dims(out.shape(), a);
  CYCLONE_CHECK(src.numel() == d.outer * d.inner, name, ": src of shape ", src.shape(),
                " does not match out of shape ", out.shape(), " with axis ", axis, " removed (",
                d.outer * d.inner, " elements expected)");
  if (out.numel() == 0) return;
  if (out.device().is_cuda()) return cuda::broadcast_axis(ctx, src, d, out);
  cpu::broadcast_axis(ctx, src, d, out);
}

void scatter_axis(Context& ctx, const Tensor& src, const Tensor& index, int axis,
                  const Tensor& out) {
  const std::string name = "scatter_axis";
  check_float(name.c_str(), src, "src");
  check_same_dtype(name.c_str(), src, out);
  check_same_device(name.c_str(), src, out);
  check_same_device(name.c_str(), index, out);
  CYCLONE_CHECK(index.dtype() == DType::kInt32, name, ": index must be int32, got ",
                dtype_name(index.dtype()));
  const int a = normalize(name, out.shape(), axis);
  const ReduceDims d = reduce_dims(out.shape(), a);
  CYCLONE_CHECK(src.numel() == d.outer * d.inner && index.numel() == src.numel(), name, ": src ",
                src.shape(), " and index ", index.shape(), " must hold ", d.outer * d.inner,
                " elements (out of shape ", out.shape(), " with axis ", axis, " removed)");
  if (out.numel() == 0) return;
  if (out.device().is_cuda()) return cuda::scatter_axis(ctx, src, index, d, out);
  cpu::scatter_axis(ctx, src, index, d, out);
}

}  // namespace cyclone::kernels
