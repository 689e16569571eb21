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
};
const char* unary_op_name(UnaryOp op);

// out = f(x, y). The *Backward ops take (grad_out, saved) and give grad_in: they are how the
// activations' backward passes run as one fused pass.
enum class BinaryOp : uint8_t {
  kAdd,              // x + y
  kSub,              // x - y
  kMul,              // x * y
  kDiv,              // x / y
  kMax,              // max(x, y)
  kMin,              // min(x, y)
  kPow,              // x^y
  kReluBackward,     // x * (y > 0)            (x = grad, y = input)
  kSigmoidBackward,  // x * y * (1 - y)        (x = grad, y = output)
  kTanhBackward,     // x * (1 - y^2)          (x = grad, y = output)
  kGreater,          // x > y ? 1 : 0
  kEqual,            // x == y ? 1 : 0
};
const char* binary_op_name(BinaryOp op);

template <UnaryOp op, class T>
CYCLONE_HD T unary_fn(T x, T a, T b) {
  using std::abs, std::exp, std::log, std::sqrt, std::tanh, std::pow;
  if constexpr (op == UnaryOp::kIdentity) return x;
  else if constexpr (op == UnaryOp::kNeg) return -x;
  else if constexpr (op == UnaryOp::kExp) return exp(x);
  else if constexpr (op == UnaryOp::kLog) return log(x);
  else if constexpr (op == UnaryOp::kSqrt) return sqrt(x);
  else if constexpr (op == UnaryOp::kRsqrt) return T(1) / sqrt(x);
  else if constexpr (op == UnaryOp::kAbs) return abs(x);
  else if constexpr (op == UnaryOp::kSquare) return x * x;
  else if constexpr (op == UnaryOp::kReciprocal) return T(1) / x;
  else if constexpr (op == UnaryOp::kSign) return T((x > T(0)) - (x < T(0)));
  // NaN propagates through relu (x > 0 is false for NaN, so return x itself in that case).
  else if constexpr (op == UnaryOp::kRelu) return x > T(0) || x != x ? x : T(0);
  // The sigmoid is evaluated on the side where e^-|x| cannot overflow.
  else if constexpr (op == UnaryOp::kSigmoid) {
    if (x >= T(0)) return T(1) / (T(1) + exp(-x));
    const T e = exp(x);
    return e / (T(1) + e);
  } else if constexpr (op == UnaryOp::kTanh) return tanh(x);
  else if constexpr (op == UnaryOp::kAddScalar) return x + a;
  else if constexpr (op == UnaryOp::kMulScalar) return x * a;
  else if constexpr (op == UnaryOp::kAffine) return a * x + b;
  else if constexpr (op == UnaryOp::kPowScalar) return pow(x, a);
  else if constexpr (op == UnaryOp::kClamp) return x < a ? a : (x > b ? b : x);
  else static_assert(op == UnaryOp::kIdentity, "unhandled UnaryOp");
}

template <BinaryOp op, class T>
CYCLONE_HD T binary_fn(T x, T y) {
  if constexpr (op == BinaryOp::kAdd) return x + y;
  else if constexpr (op == BinaryOp::kSub) return x - y;
  else if constexpr (op == BinaryOp::kMul) return x * y;
  else if constexpr (op == BinaryOp::kDiv) return x / y;
  // max/min propagate NaN from either side, as torch.maximum / torch.minimum do.
  else if constexpr (op == BinaryOp::kMax) return (x != x || x > y) ? x : y;
  else if constexpr (op == BinaryOp::kMin) return (x != x || x < y) ? x : y;
  else if constexpr (op == BinaryOp::kPow) {
    using std::pow;
    return pow(x, y);
  } else if constexpr (op == BinaryOp::kReluBackward) return y > T(0) ? x : T(0);
  else if constexpr (op == BinaryOp::kSigmoidBackward) return x * y * (T(1) - y);
  else if constexpr (op == BinaryOp::kTanhBackward) return x * (T(1) - y * y);
  else if constexpr (op == BinaryOp::kGreater) return x > y ? T(1) : T(0);
  else if constexpr (op == BinaryOp::kEqual) return x == y ? T(1) : T(0);
  else static_assert(op == BinaryOp::kAdd, "unhandled BinaryOp");
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
#define CYCLONE_CASE(name) \
  case UnaryOp::name: return f.template operator()<UnaryOp::name>();
    CYCLONE_CASE(kIdentity) CYCLONE_CASE(kNeg) CYCLONE_CASE(kExp) CYCLONE_CASE(kLog)
    CYCLONE_CASE(kSqrt) CYCLONE_CASE(kRsqrt) CYCLONE_CASE(kAbs) CYCLONE_CASE(kSquare)
    CYCLONE_CASE(kReciprocal) CYCLONE_CASE(kSign) CYCLONE_CASE(kRelu) CYCLONE_CASE(kSigmoid)
    CYCLONE_CASE(kTanh) CYCLONE_CASE(kAddScalar) CYCLONE_CASE(kMulScalar) CYCLONE_CASE(kAffine)
    CYCLONE_CASE(kPowScalar) CYCLONE_CASE(kClamp)
#undef CYCLONE_CASE
  }
  return f.template operator()<UnaryOp::kIdentity>();
}

template <class F>
decltype(auto) dispatch_binary(BinaryOp op, F&& f) {
  switch (op) {
#define CYCLONE_CASE(name) \
  case BinaryOp::name: return f.template operator()<BinaryOp::name>();
    CYCLONE_CASE(kAdd) CYCLONE_CASE(kSub) CYCLONE_CASE(kMul) CYCLONE_CASE(kDiv) CYCLONE_CASE(kMax)
    CYCLONE_CASE(kMin) CYCLONE_CASE(kPow) CYCLONE_CASE(kReluBackward)
    CYCLONE_CASE(kSigmoidBackward) CYCLONE_CASE(kTanhBackward) CYCLONE_CASE(kGreater)
    CYCLONE_CASE(kEqual)
#undef CYCLONE_CASE
  }
  return f.template operator()<BinaryOp::kAdd>();
}

}  // namespace cyclone::kernels
