#include "cyclone/kernels/elementwise.h"

#include <iterator>

#include "cyclone/kernels/cpu/elementwise.h"
#include "cyclone/kernels/cuda/elementwise.h"

namespace cyclone::kernels {

namespace {
// A per-channel operand: rank 1 [C], or [1, C] / [1, C, 1, 1] (every dim but 1 equal to 1),
// matched against dim 1 of the output.
bool is_channel_vector(const Shape& s, const Shape& out) {
  if (out.rank() < 2) return false;
  const int64_t c = out[1];
  if (s.rank() == 1) return s[0] == c;
  if (s.rank() != out.rank() || s[1] != c) return false;
  for (int i = 0; i < s.rank(); ++i)
    if (i != 1 && s[i] != 1) return false;
  return true;
}

// An outer operand: same rank, the first k dims equal to out's and the rest 1 (k < rank).
// Returns k, or -1 when s is not one.
int outer_prefix(const Shape& s, const Shape& out) {
  if (s.rank() != out.rank() || s == out) return -1;
  int k = 0;
  while (k < s.rank() && s[k] == out[k]) ++k;
  for (int i = k; i < s.rank(); ++i)
    if (s[i] != 1) return -1;
  return k;
}

}  // namespace

Shape broadcast_shape(const char* op, const Tensor& x, const Tensor& y) {
  const Shape& a = x.shape();
  const Shape& b = y.shape();
  if (a == b) return a;
  if (b.numel() == 1) return a;
  if (a.numel() == 1) return b;
  if (is_channel_vector(b, a) || outer_prefix(b, a) >= 0) return a;
  if (is_channel_vector(a, b) || outer_prefix(a, b) >= 0) return b;
  CYCLONE_THROW(op, ": shapes ", a, " and ", b,
                " do not broadcast (supported: the same shape, a one-element tensor, a per-channel "
                "[C] against dim 1, or leading dims equal and trailing dims 1 such as [N, 1])");
}

BroadcastIndex broadcast_index(const Tensor& operand, const Shape& out) {
  BroadcastIndex ix;
  if (operand.shape() == out) return ix;
  if (operand.numel() == 1) {
    ix.mode = Broadcast::kScalar;
    return ix;
  }
  const int k = outer_prefix(operand.shape(), out);
  if (k >= 0) {
    ix.mode = Broadcast::kOuter;
    ix.inner = out.prod(k, out.rank());
    return ix;
  }
  CYCLONE_CHECK(is_channel_vector(operand.shape(), out), "operand of shape ", operand.shape(),
                " cannot be broadcast to ", out);
  ix.mode = Broadcast::kChannel;
  ix.channels = out[1];
  ix.inner = out.prod(2, out.rank());
  return ix;
}

void unary(Context& ctx, UnaryOp op, const Tensor& x, const Tensor& out, double a, double b) {
  check_floating(unary_op_name(op), x);
  check_same_shape(unary_op_name(op), x, out);
  check_same_dtype(unary_op_name(op), x, out);
  check_same_device(unary_op_name(op), x, out);
  if (x.device().is_cuda()) return cuda::unary(ctx, op, x, out, a, b);
  cpu::unary(ctx, op, x, out, a, b);
}

void binary(Context& ctx, BinaryOp op, const Tensor& x, const Tensor& y, const Tensor& out) {
  const char* name = binary_op_name(op);
  check_floating(name, x);
  check_same_dtype(name, x, y);
  check_same_dtype(name, x, out);
  check_same_device(name, x, y);
  check_same_device(name, x, out);
  const Shape s = broadcast_shape(name, x, y);
  CYCLONE_CHECK(out.shape() == s, name, ": output has shape ", out.shape(), ", expected ", s);
  if (x.device().is_cuda()) return cuda::binary(ctx, op, x, y, out);
  cpu::binary(ctx, op, x, y, out);
}

void fill(Context& ctx, const Tensor& out, double value) {
  if (out.device().is_cuda()) return cuda::fill(ctx, out, value);
  cpu::fill(ctx, out, value);
}

void increment(Context& ctx, const Tensor& counter) {
  CYCLONE_CHECK(counter.dtype() == DType::kInt32, "increment: counter must be int32, got ",
                dtype_name(counter.dtype()));
  if (counter.device().is_cuda()) return cuda::increment(ctx, counter);
  cpu::increment(ctx, counter);
}

void cast(Context& ctx, const Tensor& x, const Tensor& out) {
  check_same_shape("cast", x, out);
  check_same_device("cast", x, out);
  if (x.device().is_cuda()) return cuda::cast(ctx, x, out);
  cpu::cast(ctx, x, out);
}

Tensor to_float32(Context& ctx, const Tensor& x) {
  if (x.dtype() == DType::kFloat32) return x;
  Tensor f = Tensor::empty(x.shape(), DType::kFloat32, x.device());
  cast(ctx, x, f);
  return f;
}

void gather_rows(Context& ctx, const Tensor& src, const Tensor& index, const Tensor& out) {
  CYCLONE_CHECK(src.rank() >= 1 && out.rank() == src.rank() && index.rank() == 1 &&
                    index.dtype() == DType::kInt32 && out.dtype() == src.dtype() &&
                    out.dim(0) == index.dim(0),
                "gather_rows: src ", src.shape(), " ", dtype_name(src.dtype()), ", index ",
                index.shape(), " ", dtype_name(index.dtype()), ", out ", out.shape(), " ",
                dtype_name(out.dtype()), " (want out [len(index), src row shape], int32 index)");
  for (int64_t d = 1; d < src.rank(); ++d)
    CYCLONE_CHECK(out.dim(d) == src.dim(d), "gather_rows: rows of ", src.shape(), " and ",
                  out.shape(), " differ");
  check_same_device("gather_rows", src, out);
  check_same_device("gather_rows", src, index);
  if (src.device().is_cuda()) return cuda::gather_rows(ctx, src, index, out);
  cpu::gather_rows(ctx, src, index, out);
}

const char* unary_op_name(UnaryOp op) {
  static const char* names[] = {
      "identity", "neg",        "exp",       "log",        "sqrt",
      "rsqrt",    "abs",        "square",    "reciprocal", "sign",
      "relu",     "sigmoid",    "tanh",      "add_scalar", "mul_scalar",
      "affine",   "pow_scalar", "clamp",     "leaky_relu", "elu",
      "selu",     "gelu",       "gelu_tanh", "silu",       "leaky_relu_grad",
      "elu_grad"};
  static_assert(std::size(names) == static_cast<size_t>(UnaryOp::kEluGrad) + 1,
                "one name per UnaryOp");
  return names[static_cast<int>(op)];
}

const char* binary_op_name(BinaryOp op) {
  static const char* names[] = {"add",           "sub",           "mul",
                                "div",           "maximum",       "minimum",
                                "pow",           "relu_backward", "sigmoid_backward",
                                "tanh_backward", "greater",       "equal",
                                "selu_backward", "gelu_backward", "gelu_tanh_backward",
                                "silu_backward"};
  static_assert(std::size(names) == static_cast<size_t>(BinaryOp::kSiluBackward) + 1,
                "one name per BinaryOp");
  return names[static_cast<int>(op)];
}

}  // namespace cyclone::kernels
