// Elementwise math written once as __host__ __device__ code: kernels/cpu/elementwise.cpp runs it
// in a CPU loop, kernels/cuda/elementwise.cu in a CUDA grid, so both backends compute the same
// arithmetic and the parity tests compare like with like.
#pragma once

#include <cmath>
#include <cstdint>

#include "cyclone/core/hd.h"

namespace cyclone::kernels {

// y = f(x; a, b). a and b are the op's scalar parameters (unused by most).
enum class UnaryOp : uint8_t {
  kIdentity,    // x
  kNeg,         // -x
  kExp,         // e^x
  kLog,         // ln x
  kSqrt,        // sqrt x
  kRsqrt,       // 1/sqrt x
  kAbs,         // |x|
  kSquare,      // x^2
  kReciprocal,  // 1/x
  kSign,        // -1, 0, 1
  kRelu,        // max(x, 0)
  kSigmoid,     // 1/(1+e^-x)
  kTanh,        // tanh x
  kAddScalar,   // x + a
  kMulScalar,   // x * a
  kAffine,      // a*x + b
  kPowScalar,   // x^a
  kClamp,       // min(max(x, a), b)
  // Activations (layers/activation_ops.h), and the derivatives of those with a parameter: their
  // backward is grad * derivative, since a BinaryOp has no scalar to carry the slope / alpha.
  kLeakyRelu,      // x > 0 ? x : a*x                   (a = negative slope)
  kElu,            // x > 0 ? x : a*(e^x - 1)           (a = alpha)
  kSelu,           // s * (x > 0 ? x : al*(e^x - 1))    (s, al = kSeluScale, kSeluAlpha)
  kGelu,           // x * Phi(x) = x/2 * (1 + erf(x / sqrt 2))
  kGeluTanh,       // x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))
  kSilu,           // x * sigmoid(x)
  kLeakyReluGrad,  // x > 0 ? 1 : a                     (d leaky_relu / dx)
  kEluGrad,        // x > 0 ? 1 : a*e^x                 (d elu / dx)
};
const char* unary_op_name(UnaryOp op);

// out = f(x, y). The *Backward ops take (grad_out, saved) and give grad_in: they are how the
// activations' backward passes run as one fused pass.
enum class BinaryOp : uint8_t {
  kAdd,               // x + y
  kSub,               // x - y
  kMul,               // x * y
  kDiv,               // x / y
  kMax,               // max(x, y)
  kMin,               // min(x, y)
  kPow,               // x^y
  kReluBackward,      // x * (y > 0)            (x = grad, y = input)
  kSigmoidBackward,   // x * y * (1 - y)        (x = grad, y = output)
  kTanhBackward,      // x * (1 - y^2)          (x = grad, y = output)
  kGreater,           // x > y ? 1 : 0
  kEqual,             // x == y ? 1 : 0
  kSeluBackward,      // x * s * (y > 0 ? 1 : al*e^y)   (x = grad, y = input)
  kGeluBackward,      // x * (Phi(y) + y*phi(y))        (x = grad, y = input; phi = N(0,1) pdf)
  kGeluTanhBackward,  // x * d/dy gelu_tanh(y)          (x = grad, y = input)
  kSiluBackward,      // x * s*(1 + y*(1 - s))          (x = grad, y = input; s = sigmoid(y))
};
const char* binary_op_name(BinaryOp op);

// SELU's constants (Klambauer et al., "Self-Normalizing Neural Networks", 2017), as
// torch.nn.functional.selu.
inline constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
inline constexpr double kSeluScale = 1.0507009873554804934193349852946;
// GELU (Hendrycks & Gimpel, "Gaussian Error Linear Units", 2016), as torch.nn.functional.gelu with
// approximate='none' (erf) and approximate='tanh'.
inline constexpr double kSqrtHalf = 0.70710678118654752440;    // 1/sqrt(2)
inline constexpr double kInvSqrt2Pi = 0.39894228040143267794;  // 1/sqrt(2 pi)
inline constexpr double kGeluBeta = 0.79788456080286535588;    // sqrt(2/pi)
inline constexpr double kGeluKappa = 0.044715;

namespace detail {
// The sigmoid evaluated on the side where e^-|x| cannot overflow (silu and its backward).
template <class T>
CYCLONE_HD T stable_sigmoid(T x) {
  using std::exp;
  if (x >= T(0)) return T(1) / (T(1) + exp(-x));
  const T e = exp(x);
  return e / (T(1) + e);
}
// d/dx [x/2 (1 + tanh(u))], u = beta (x + kappa x^3): (1 + t)/2 + x/2 (1 - t^2) beta
// (1 + 3 kappa x^2), t = tanh(u), as PyTorch's GeluBackward with approximate='tanh'.
template <class T>
CYCLONE_HD T gelu_tanh_grad(T x) {
  using std::tanh;
  const T beta = T(kGeluBeta), kappa = T(kGeluKappa);
  const T x2 = x * x;
  const T t = tanh(beta * (x + kappa * x2 * x));
  return T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * beta * (T(1) + T(3) * kappa * x2);
}
}  // namespace detail

template <UnaryOp op, class T>
CYCLONE_HD T unary_fn(T x, T a, T b) {
  using std::abs, std::exp, std::log, std::sqrt, std::tanh, std::pow, std::erf, std::expm1;
  if constexpr (op == UnaryOp::kIdentity)
    return x;
  else if constexpr (op == UnaryOp::kNeg)
    return -x;
  else if constexpr (op == UnaryOp::kExp)
    return exp(x);
  else if constexpr (op == UnaryOp::kLog)
    return log(x);
  else if constexpr (op == UnaryOp::kSqrt)
    return sqrt(x);
  else if constexpr (op == UnaryOp::kRsqrt)
    return T(1) / sqrt(x);
  else if constexpr (op == UnaryOp::kAbs)
    return abs(x);
  else if constexpr (op == UnaryOp::kSquare)
    return x * x;
  else if constexpr (op == UnaryOp::kReciprocal)
    return T(1) / x;
  else if constexpr (op == UnaryOp::kSign)
    return T((x > T(0)) - (x < T(0)));
  // NaN propagates through relu (x > 0 is false for NaN, so return x itself in that case).
  else if constexpr (op == UnaryOp::kRelu)
    return x > T(0) || x != x ? x : T(0);
  // The sigmoid is evaluated on the side where e^-|x| cannot overflow.
  else if constexpr (op == UnaryOp::kSigmoid) {
    if (x >= T(0)) return T(1) / (T(1) + exp(-x));
    const T e = exp(x);
    return e / (T(1) + e);
  } else if constexpr (op == UnaryOp::kTanh)
    return tanh(x);
  else if constexpr (op == UnaryOp::kAddScalar)
    return x + a;
  else if constexpr (op == UnaryOp::kMulScalar)
    return x * a;
  else if constexpr (op == UnaryOp::kAffine)
    return a * x + b;
  else if constexpr (op == UnaryOp::kPowScalar)
    return pow(x, a);
  else if constexpr (op == UnaryOp::kClamp)
    return x < a ? a : (x > b ? b : x);
  // NaN propagates through the activations (x > 0 is false for NaN and the other branch carries
  // x); elu / selu use expm1, which keeps full precision near 0 where e^x - 1 cancels.
  else if constexpr (op == UnaryOp::kLeakyRelu)
    return x > T(0) ? x : a * x;
  else if constexpr (op == UnaryOp::kElu)
    return x > T(0) ? x : a * expm1(x);
  else if constexpr (op == UnaryOp::kSelu)
    return T(kSeluScale) * (x > T(0) ? x : T(kSeluAlpha) * expm1(x));
  else if constexpr (op == UnaryOp::kGelu)
    return T(0.5) * x * (T(1) + erf(x * T(kSqrtHalf)));
  else if constexpr (op == UnaryOp::kGeluTanh)
    return T(0.5) * x * (T(1) + tanh(T(kGeluBeta) * (x + T(kGeluKappa) * x * x * x)));
  else if constexpr (op == UnaryOp::kSilu)
    return x * detail::stable_sigmoid(x);
  // At the kink x = 0 both give the left derivative, as PyTorch's leaky_relu / elu backward.
  else if constexpr (op == UnaryOp::kLeakyReluGrad)
    return x > T(0) ? T(1) : a;
  else if constexpr (op == UnaryOp::kEluGrad)
    return x > T(0) ? T(1) : a * exp(x);
  else
    static_assert(op == UnaryOp::kIdentity, "unhandled UnaryOp");
}

template <BinaryOp op, class T>
CYCLONE_HD T binary_fn(T x, T y) {
  if constexpr (op == BinaryOp::kAdd)
    return x + y;
  else if constexpr (op == BinaryOp::kSub)
    return x - y;
  else if constexpr (op == BinaryOp::kMul)
    return x * y;
  else if constexpr (op == BinaryOp::kDiv)
    return x / y;
  // max/min propagate NaN from either side, as torch.maximum / torch.minimum do.
  else if constexpr (op == BinaryOp::kMax)
    return (x != x || x > y) ? x : y;
  else if constexpr (op == BinaryOp::kMin)
    return (x != x || x < y) ? x : y;
  else if constexpr (op == BinaryOp::kPow) {
    using std::pow;
    return pow(x, y);
  } else if constexpr (op == BinaryOp::kReluBackward)
    return y > T(0) ? x : T(0);
  else if constexpr (op == BinaryOp::kSigmoidBackward)
    return x * y * (T(1) - y);
  else if constexpr (op == BinaryOp::kTanhBackward)
    return x * (T(1) - y * y);
  else if constexpr (op == BinaryOp::kGreater)
    return x > y ? T(1) : T(0);
  else if constexpr (op == BinaryOp::kEqual)
    return x == y ? T(1) : T(0);
  else if constexpr (op == BinaryOp::kSeluBackward) {
    using std::exp;
    return y > T(0) ? x * T(kSeluScale) : x * T(kSeluScale * kSeluAlpha) * exp(y);
  } else if constexpr (op == BinaryOp::kGeluBackward) {
    using std::erf, std::exp;
    const T cdf = T(0.5) * (T(1) + erf(y * T(kSqrtHalf)));
    const T pdf = T(kInvSqrt2Pi) * exp(T(-0.5) * y * y);
    return x * (cdf + y * pdf);
  } else if constexpr (op == BinaryOp::kGeluTanhBackward)
    return x * detail::gelu_tanh_grad(y);
  else if constexpr (op == BinaryOp::kSiluBackward) {
    const T s = detail::stable_sigmoid(y);
    return x * s * (T(1) + y * (T(1) - s));
  } else
    static_assert(op == BinaryOp::kAdd, "unhandled BinaryOp");
}

// How an operand of a binary op is indexed from the output's flat index i.
//   kFull:    operand[i]                      (same shape as the output)
//   kScalar:  operand[0]                      (one element)
//   kChannel: operand[(i / inner) % channels] (a per-channel vector against dim 1 of NCHW or NC)
//   kOuter:   operand[i / inner]              (leading dims equal, trailing dims 1: a keepdim
//                                              reduction such as [N, 1] against [N, C])
enum class Broadcast : uint8_t { kFull, kScalar, kChannel, kOuter };

struct BroadcastIndex {
  Broadcast mode = Broadcast::kFull;
  int64_t channels = 1;
  int64_t inner = 1;
  CYCLONE_HD int64_t operator()(int64_t i) const {
    if (mode == Broadcast::kFull) return i;
    if (mode == Broadcast::kScalar) return 0;
    if (mode == Broadcast::kOuter) return i / inner;
    return (i / inner) % channels;
  }
};

// Calls f.template operator()<op>() with the UnaryOp / BinaryOp as a compile-time constant, so
// each backend instantiates one loop per op.
template <class F>
decltype(auto) dispatch_unary(UnaryOp op, F&& f) {
  switch (op) {
    // clang-format off
#define CYCLONE_CASE(name) \
  case UnaryOp::name:      \
    return f.template operator()<UnaryOp::name>();
    CYCLONE_CASE(kIdentity) CYCLONE_CASE(kNeg) CYCLONE_CASE(kExp) CYCLONE_CASE(kLog)
    CYCLONE_CASE(kSqrt) CYCLONE_CASE(kRsqrt) CYCLONE_CASE(kAbs) CYCLONE_CASE(kSquare)
    CYCLONE_CASE(kReciprocal) CYCLONE_CASE(kSign) CYCLONE_CASE(kRelu) CYCLONE_CASE(kSigmoid)
    CYCLONE_CASE(kTanh) CYCLONE_CASE(kAddScalar) CYCLONE_CASE(kMulScalar) CYCLONE_CASE(kAffine)
    CYCLONE_CASE(kPowScalar) CYCLONE_CASE(kClamp) CYCLONE_CASE(kLeakyRelu) CYCLONE_CASE(kElu)
    CYCLONE_CASE(kSelu) CYCLONE_CASE(kGelu) CYCLONE_CASE(kGeluTanh) CYCLONE_CASE(kSilu)
    CYCLONE_CASE(kLeakyReluGrad) CYCLONE_CASE(kEluGrad)
#undef CYCLONE_CASE
    // clang-format on
  }
  return f.template operator()<UnaryOp::kIdentity>();
}

template <class F>
decltype(auto) dispatch_binary(BinaryOp op, F&& f) {
  switch (op) {
    // clang-format off
#define CYCLONE_CASE(name) \
  case BinaryOp::name:     \
    return f.template operator()<BinaryOp::name>();
    CYCLONE_CASE(kAdd) CYCLONE_CASE(kSub) CYCLONE_CASE(kMul) CYCLONE_CASE(kDiv)
    CYCLONE_CASE(kMax) CYCLONE_CASE(kMin) CYCLONE_CASE(kPow) CYCLONE_CASE(kReluBackward)
    CYCLONE_CASE(kSigmoidBackward) CYCLONE_CASE(kTanhBackward) CYCLONE_CASE(kGreater) CYCLONE_CASE(kEqual)
    CYCLONE_CASE(kSeluBackward) CYCLONE_CASE(kGeluBackward) CYCLONE_CASE(kGeluTanhBackward) CYCLONE_CASE(kSiluBackward)
#undef CYCLONE_CASE
    // clang-format on
  }
  return f.template operator()<BinaryOp::kAdd>();
}

}  // namespace cyclone::kernels
