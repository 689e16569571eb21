#include "cyclone/layers/ops.h"

#include <optional>
#include <utility>

#include "cyclone/core/autograd.h"
#include "cyclone/core/context.h"
#include "cyclone/kernels/elementwise.h"
#include "cyclone/kernels/reduce.h"

namespace cyclone {

using kernels::BinaryOp;
using kernels::UnaryOp;

Tensor full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = Tensor::empty(shape, dtype, device);
  kernels::fill(Context::of(t), t, value);
  return t;
}
Tensor ones(const Shape& shape, DType dtype, Device device) {
  return full(shape, 1.0, dtype, device);
}
Tensor zeros(const Shape& shape, DType dtype, Device device) {
  return Tensor::zeros(shape, dtype, device);
}
Tensor full_like(const Tensor& t, double value) {
  return full(t.shape(), value, t.dtype(), t.device());
}
Tensor zeros_like(const Tensor& t) { return Tensor::zeros(t.shape(), t.dtype(), t.device()); }
Tensor ones_like(const Tensor& t) { return full_like(t, 1.0); }

Tensor cast(const Tensor& x, DType dtype) {
  if (x.dtype() == dtype) return x;
  Tensor out = Tensor::empty(x.shape(), dtype, x.device());
  kernels::cast(Context::of(x), x, out);
  if (!is_floating(dtype) || !is_floating(x.dtype())) return out;
  const DType from = x.dtype();
  return autograd::record(
      out, "cast", {x},
      [from](const Tensor& g, const Tensor&) -> std::vector<Tensor> { return {cast(g, from)}; });
}

Tensor apply(UnaryOp op, const Tensor& x, double a, double b) {
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  kernels::unary(Context::of(x), op, x, out, a, b);
  return out;
}

Tensor apply(BinaryOp op, const Tensor& x, const Tensor& y) {
  Tensor out = Tensor::empty(kernels::broadcast_shape(kernels::binary_op_name(op), x, y), x.dtype(),
                             x.device());
  kernels::binary(Context::of(x), op, x, y, out);
  return out;
}

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  if (is_half(g.dtype())) return via_float32(g, [&](const Tensor& f) { return sum_to(f, shape); });
  Tensor out = Tensor::empty(shape, g.dtype(), g.device());
  Context& ctx = Context::of(g);
  const kernels::BroadcastIndex ix = kernels::broadcast_index(out, g.shape());
  switch (ix.mode) {
    case kernels::Broadcast::kScalar:
      kernels::reduce_all(ctx, kernels::ReduceOp::kSum, g, out);
      break;
    case kernels::Broadcast::kChannel:
      kernels::reduce_channels(ctx, kernels::ReduceOp::kSum, g, out);
      break;
    case kernels::Broadcast::kOuter:  // [outer, inner] summed over inner
      kernels::reduce_axis(ctx, kernels::ReduceOp::kSum, g.reshape({-1, ix.inner}), 1, out);
      break;
    case kernels::Broadcast::kFull:
      break;  // unreachable: shapes differ
  }
  // The reduction's own gradient is a broadcast back, which binary ops already provide.
  const Shape from = g.shape();
  return autograd::record(out, "sum_to", {g},
                          [from](const Tensor& go, const Tensor&) -> std::vector<Tensor> {
                            return {add(zeros(from, go.dtype(), go.device()), go)};
                          });
}

// ---- binary ----

namespace {
// Unbroadcasts the gradient of a binary op's operand.
Tensor reduce_like(const Tensor& g, const Tensor& operand) {
  return g.shape() == operand.shape() ? g : sum_to(g, operand.shape());
}

int float_rank(DType t) {
  return t == DType::kFloat64 ? 3 : t == DType::kFloat32 ? 2 : is_half(t) ? 1 : 0;
}

// PyTorch's promotion of two floating operands of different dtypes: both cast to the wider one
// (float64 > float32 > the 16-bit ones; bfloat16 with float16 gives float32), differentiably, so
// each gradient comes back in its operand's dtype. A residual block under autocast adds a float32
// shortcut to a bfloat16 branch this way. Nothing for one dtype, or for other mixes (left to the
// kernels' dtype check): the op then runs on a and b as they are.
std::optional<std::pair<Tensor, Tensor>> promoted(const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined() || a.dtype() == b.dtype()) return std::nullopt;
  const int ra = float_rank(a.dtype()), rb = float_rank(b.dtype());
  if (ra == 0 || rb == 0) return std::nullopt;
  const DType to = ra == rb ? DType::kFloat32 : ra > rb ? a.dtype() : b.dtype();
  return std::pair{cast(a, to), cast(b, to)};
}
}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  if (const auto p = promoted(a, b)) return add(p->first, p->second);
  return autograd::record(apply(BinaryOp::kAdd, a, b), "add", {a, b},
                          [a, b](const Tensor& g, const Tensor&) -> std::vector<Tensor> {
                            return {reduce_like(g, a), reduce_like(g, b)};
                          });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  if (const auto p = promoted(a, b)) return sub(p->first, p->second);
  return autograd::record(apply(BinaryOp::kSub, a, b), "sub", {a, b},
                          [a, b](const Tensor& g, const Tensor&) -> std::vector<Tensor> {
                            return {reduce_like(g, a), reduce_like(neg(g), b)};
                          });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  if (const auto p = promoted(a, b)) return mul(p->first, p->second);
  return autograd::record(apply(BinaryOp::kMul, a, b), "mul", {a, b},
                          [a, b](const Tensor& g, const Tensor&) -> std::vector<Tensor> {
                            return {a.requires_grad() ? reduce_like(mul(g, b), a) : Tensor(),
                                    b.requires_grad() ? reduce_like(mul(g, a), b) : Tensor()};
                          });
}

Tensor div(const Tensor& a, const Tensor& b) {
  if (const auto p = promoted(a, b)) return div(p->first, p->second);
  // d(a/b)/da = 1/b, d(a/b)/db = -a/b^2 = -out/b.
  return autograd::record(
      apply(BinaryOp::kDiv, a, b), "div", {a, b},
      [a, b](const Tensor& g, const Tensor& out) -> std::vector<Tensor> {
        return {a.requires_grad() ? reduce_like(div(g, b), a) : Tensor(),
                b.requires_grad() ? reduce_like(neg(div(mul(g, out), b)), b) : Tensor()};
      });
}

namespace {
// Gradient routing for maximum/minimum: `mask` is 1 where a wins (ties go to a).
Tensor select_binary(BinaryOp op, const char* name, const Tensor& a, const Tensor& b) {
  if (const auto p = promoted(a, b)) return select_binary(op, name, p->first, p->second);
  return autograd::record(apply(op, a, b), name, {a, b},
                          [a, b, op](const Tensor& g, const Tensor&) -> std::vector<Tensor> {
                            // a wins where it is >= b for max (<= b for min): 1 - (b > a).
                            const Tensor b_wins = op == BinaryOp::kMax
                                                      ? apply(BinaryOp::kGreater, b, a)
                                                      : apply(BinaryOp::kGreater, a, b);
                            const Tensor a_mask = apply(UnaryOp::kAffine, b_wins, -1.0, 1.0);
                            return {reduce_like(mul(g, a_mask), a), reduce_like(mul(g, b_wins), b)};
                          });
}
}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b) {
  return select_binary(BinaryOp::kMax, "maximum", a, b);
}
Tensor minimum(const Tensor& a, const Tensor& b) {
  return select_binary(BinaryOp::kMin, "minimum", a, b);
}

// ---- with a scalar ----

Tensor add(const Tensor& a, double s) {
  return autograd::record(
      apply(UnaryOp::kAddScalar, a, s), "add_scalar", {a},
      [](const Tensor& g, const Tensor&) -> std::vector<Tensor> { return {g}; });
}

Tensor mul(const Tensor& a, double s) {
  return autograd::record(
      apply(UnaryOp::kMulScalar, a, s), "mul_scalar", {a},
      [s](const Tensor& g, const Tensor&) -> std::vector<Tensor> { return {mul(g, s)}; });
}

Tensor pow(const Tensor& a, double p) {
  return autograd::record(apply(UnaryOp::kPowScalar, a, p), "pow", {a},
                          [a, p](const Tensor& g, const Tensor&) -> std::vector<Tensor> {
                            return {mul(g, mul(pow(a, p - 1), p))};
                          });
}

Tensor clamp(const Tensor& a, double lo, double hi) {
  CYCLONE_CHECK(lo <= hi, "clamp: lo ", lo, " > hi ", hi);
  return autograd::record(apply(UnaryOp::kClamp, a, lo, hi), "clamp", {a},
                          [a, lo, hi](const Tensor& g, const Tensor&) -> std::vector<Tensor> {
                            // Gradient passes where lo <= a <= hi (PyTorch's convention at the
                            // bounds).
                            const Tensor lo_t = full({1}, lo, a.dtype(), a.device());
                            const Tensor hi_t = full({1}, hi, a.dtype(), a.device());
                            const Tensor below = apply(BinaryOp::kGreater, lo_t, a);
                            const Tensor above = apply(BinaryOp::kGreater, a, hi_t);
                            const Tensor inside =
                                apply(UnaryOp::kAffine, add(below, above), -1.0, 1.0);
                            return {mul(g, inside)};
                          });
}

// ---- unary ----

Tensor neg(const Tensor& x) {
  return autograd::record(
      apply(UnaryOp::kNeg, x), "neg", {x},
      [](const Tensor& g, const Tensor&) -> std::vector<Tensor> { return {neg(g)}; });
}

Tensor exp(const Tensor& x) {
  return autograd::record(
      apply(UnaryOp::kExp, x), "exp", {x},
      [](const Tensor& g, const Tensor& out) -> std::vector<Tensor> { return {mul(g, out)}; });
}

Tensor log(const Tensor& x) {
  return autograd::record(
      apply(UnaryOp::kLog, x), "log", {x},
      [x](const Tensor& g, const Tensor&) -> std::vector<Tensor> { return {div(g, x)}; });
}

Tensor sqrt(const Tensor& x) {
  // d sqrt(x) = 1 / (2 sqrt(x)).
  return autograd::record(apply(UnaryOp::kSqrt, x), "sqrt", {x},
                          [](const Tensor& g, const Tensor& out) -> std::vector<Tensor> {
                            return {div(g, mul(out, 2.0))};
                          });
}

Tensor square(const Tensor& x) {
  return autograd::record(
      apply(UnaryOp::kSquare, x), "square", {x},
      [x](const Tensor& g, const Tensor&) -> std::vector<Tensor> { return {mul(g, mul(x, 2.0))}; });
}

Tensor abs(const Tensor& x) {
  return autograd::record(apply(UnaryOp::kAbs, x), "abs", {x},
                          [x](const Tensor& g, const Tensor&) -> std::vector<Tensor> {
                            return {mul(g, apply(UnaryOp::kSign, x))};
                          });
}

// Activations: the backward is one fused pass of a *Backward BinaryOp. Second derivatives of
// these are not needed by anything in Cyclone, so their backward is not itself recorded.
Tensor relu(const Tensor& x) {
  return autograd::record(apply(UnaryOp::kRelu, x), "relu", {x},
                          [x](const Tensor& g, const Tensor&) -> std::vector<Tensor> {
                            return {apply(BinaryOp::kReluBackward, g, x)};
                          });
}

Tensor sigmoid(const Tensor& x) {
  return autograd::record(apply(UnaryOp::kSigmoid, x), "sigmoid", {x},
                          [](const Tensor& g, const Tensor& out) -> std::vector<Tensor> {
                            return {apply(BinaryOp::kSigmoidBackward, g, out)};
                          });
}

Tensor tanh(const Tensor& x) {
  return autograd::record(apply(UnaryOp::kTanh, x), "tanh", {x},
                          [](const Tensor& g, const Tensor& out) -> std::vector<Tensor> {
                            return {apply(BinaryOp::kTanhBackward, g, out)};
                          });
}

}  // namespace cyclone
