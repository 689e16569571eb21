// Elementwise kernels against naive loops (CPU) and CPU-vs-CUDA parity, over every op, both float
// dtypes, odd sizes and every broadcast mode.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "common/test_util.h"

namespace cyclone {
namespace {

using kernels::BinaryOp;
using kernels::UnaryOp;
using testing::DeviceTest;

// torch.nn.functional.selu's constants, restated here so that the reference does not trust
// kernels/functors.h.
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSeluScale = 1.0507009873554804934193349852946;

// Naive double-precision references, written independently of kernels/functors.h.
double ref_unary(UnaryOp op, double x, double a, double b) {
  switch (op) {
    case UnaryOp::kIdentity:
      return x;
    case UnaryOp::kNeg:
      return -x;
    case UnaryOp::kExp:
      return std::exp(x);
    case UnaryOp::kLog:
      return std::log(x);
    case UnaryOp::kSqrt:
      return std::sqrt(x);
    case UnaryOp::kRsqrt:
      return 1 / std::sqrt(x);
    case UnaryOp::kAbs:
      return std::fabs(x);
    case UnaryOp::kSquare:
      return x * x;
    case UnaryOp::kReciprocal:
      return 1 / x;
    case UnaryOp::kSign:
      return x > 0 ? 1 : (x < 0 ? -1 : 0);
    case UnaryOp::kRelu:
      return x > 0 ? x : 0;
    case UnaryOp::kSigmoid:
      return 1 / (1 + std::exp(-x));
    case UnaryOp::kTanh:
      return std::tanh(x);
    case UnaryOp::kAddScalar:
      return x + a;
    case UnaryOp::kMulScalar:
      return x * a;
    case UnaryOp::kAffine:
      return a * x + b;
    case UnaryOp::kPowScalar:
      return std::pow(x, a);
    case UnaryOp::kClamp:
      return std::min(std::max(x, a), b);
    case UnaryOp::kLeakyRelu:
      return x > 0 ? x : a * x;
    case UnaryOp::kElu:
      return x > 0 ? x : a * (std::exp(x) - 1);
    case UnaryOp::kSelu:
      return kSeluScale * (x > 0 ? x : kSeluAlpha * (std::exp(x) - 1));
    case UnaryOp::kGelu:
      return x * 0.5 * std::erfc(-x / std::sqrt(2.0));
    case UnaryOp::kGeluTanh:
      return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
    case UnaryOp::kSilu:
      return x / (1 + std::exp(-x));
    case UnaryOp::kLeakyReluGrad:
      return x > 0 ? 1 : a;
    case UnaryOp::kEluGrad:
      return x > 0 ? 1 : a * std::exp(x);
  }
  return NAN;
}

double ref_binary(BinaryOp op, double x, double y) {
  switch (op) {
    case BinaryOp::kAdd:
      return x + y;
    case BinaryOp::kSub:
      return x - y;
    case BinaryOp::kMul:
      return x * y;
    case BinaryOp::kDiv:
      return x / y;
    case BinaryOp::kMax:
      return std::max(x, y);
    case BinaryOp::kMin:
      return std::min(x, y);
    case BinaryOp::kPow:
      return std::pow(x, y);
    case BinaryOp::kReluBackward:
      return y > 0 ? x : 0;
    case BinaryOp::kSigmoidBackward:
      return x * y * (1 - y);
    case BinaryOp::kTanhBackward:
      return x * (1 - y * y);
    case BinaryOp::kGreater:
      return x > y;
    case BinaryOp::kEqual:
      return x == y;
    case BinaryOp::kSeluBackward:
      return x * kSeluScale * (y > 0 ? 1 : kSeluAlpha * std::exp(y));
    case BinaryOp::kGeluBackward:
      return x * (0.5 * std::erfc(-y / std::sqrt(2.0)) +
                  y * std::exp(-y * y / 2) / std::sqrt(2 * M_PI));
    case BinaryOp::kGeluTanhBackward: {
      const double c = std::sqrt(2 / M_PI), k = 0.044715;
      const double t = std::tanh(c * (y + k * y * y * y));
      return x * (0.5 * (1 + t) + 0.5 * y * (1 - t * t) * c * (1 + 3 * k * y * y));
    }
    case BinaryOp::kSiluBackward: {
      const double s = 1 / (1 + std::exp(-y));
      return x * (s + y * s * (1 - s));
    }
  }
  return NAN;
}

const UnaryOp kUnaryOps[] = {
    UnaryOp::kIdentity,      UnaryOp::kNeg,       UnaryOp::kExp,       UnaryOp::kLog,
    UnaryOp::kSqrt,          UnaryOp::kRsqrt,     UnaryOp::kAbs,       UnaryOp::kSquare,
    UnaryOp::kReciprocal,    UnaryOp::kSign,      UnaryOp::kRelu,      UnaryOp::kSigmoid,
    UnaryOp::kTanh,          UnaryOp::kAddScalar, UnaryOp::kMulScalar, UnaryOp::kAffine,
    UnaryOp::kPowScalar,     UnaryOp::kClamp,     UnaryOp::kLeakyRelu, UnaryOp::kElu,
    UnaryOp::kSelu,          UnaryOp::kGelu,      UnaryOp::kGeluTanh,  UnaryOp::kSilu,
    UnaryOp::kLeakyReluGrad, UnaryOp::kEluGrad};
const BinaryOp kBinaryOps[] = {
    BinaryOp::kAdd,          BinaryOp::kSub,          BinaryOp::kMul,
    BinaryOp::kDiv,          BinaryOp::kMax,          BinaryOp::kMin,
    BinaryOp::kPow,          BinaryOp::kReluBackward, BinaryOp::kSigmoidBackward,
    BinaryOp::kTanhBackward, BinaryOp::kGreater,      BinaryOp::kEqual,
    BinaryOp::kSeluBackward, BinaryOp::kGeluBackward, BinaryOp::kGeluTanhBackward,
    BinaryOp::kSiluBackward};

bool positive_domain(UnaryOp op) {
  return op == UnaryOp::kLog || op == UnaryOp::kSqrt || op == UnaryOp::kRsqrt ||
         op == UnaryOp::kPowScalar;
}

TEST(ElementwiseCpu, UnaryMatchesNaiveLoops) {
  for (DType dt : {DType::kFloat32, DType::kFloat64}) {
    for (UnaryOp op : kUnaryOps) {
      for (int64_t n : {1, 31, 1025}) {
        const double lo = positive_domain(op) ? 0.1 : -3, hi = 3;
        Tensor x = testing::random_tensor({n}, n + int(op), dt, Device::cpu(), lo, hi);
        Tensor out = testing::nan_tensor({n}, dt, Device::cpu());
        kernels::unary(Context::current(Device::cpu()), op, x, out, 0.7, 1.3);
        const auto xv = testing::values(x);
        std::vector<double> ref(xv.size());
        for (size_t i = 0; i < xv.size(); ++i) ref[i] = ref_unary(op, xv[i], 0.7, 1.3);
        const double tol = dt == DType::kFloat32 ? 2e-6 : 1e-14;
        EXPECT_TRUE(testing::all_close(testing::values(out), ref, tol, tol))
            << kernels::unary_op_name(op) << " " << dtype_name(dt) << " n=" << n;
      }
    }
  }
}

TEST(ElementwiseCpu, BinaryMatchesNaiveLoopsInEveryBroadcastMode) {
  struct Case {
    Shape x, y;
  };
  const Case cases[] = {{{1025}, {1025}},
                        {{3, 5, 7}, {1}},
                        {{1}, {4, 6}},
                        {{2, 3, 4, 5}, {3}},
                        {{3}, {2, 3, 4, 5}},
                        {{2, 3, 4, 5}, {1, 3, 1, 1}},
                        {{7, 11}, {11}},
                        {{7, 11}, {7, 1}},
                        {{2, 3, 1, 1}, {2, 3, 4, 5}},
                        {{2, 3, 4, 5}, {2, 1, 1, 1}}};
  for (DType dt : {DType::kFloat32, DType::kFloat64}) {
    for (BinaryOp op : kBinaryOps) {
      for (const Case& c : cases) {
        Tensor x = testing::random_tensor(c.x, 1 + int(op), dt, Device::cpu(), 0.2, 2);
        Tensor y = testing::random_tensor(c.y, 2 + int(op), dt, Device::cpu(), 0.2, 2);
        const Shape s = kernels::broadcast_shape("test", x, y);
        Tensor out = testing::nan_tensor(s, dt, Device::cpu());
        kernels::binary(Context::current(Device::cpu()), op, x, y, out);
        const auto xv = testing::values(x), yv = testing::values(y);
        const int64_t n = s.numel(), C = s.rank() >= 2 ? s[1] : 1,
                      inner = s.rank() >= 2 ? s.prod(2, s.rank()) : 1;
        auto pick = [&](const std::vector<double>& v, const Shape& vs, int64_t i) {
          if (vs == s) return v[i];
          if (vs.numel() == 1) return v[0];
          if (vs.rank() == s.rank()) {  // leading dims equal, trailing dims 1: by the prefix
            int k = 0;
            while (k < s.rank() && vs[k] == s[k]) ++k;
            bool outer = true;
            for (int d = k; d < s.rank(); ++d) outer = outer && vs[d] == 1;
            if (outer) return v[i / s.prod(k, s.rank())];
          }
          return v[(i / inner) % C];  // per-channel along dim 1
        };
        std::vector<double> ref(n);
        for (int64_t i = 0; i < n; ++i) ref[i] = ref_binary(op, pick(xv, c.x, i), pick(yv, c.y, i));
        const double tol = dt == DType::kFloat32 ? 2e-6 : 1e-14;
        EXPECT_TRUE(testing::all_close(testing::values(out), ref, tol, tol))
            << kernels::binary_op_name(op) << " " << c.x << " with " << c.y;
      }
    }
  }
}

// bfloat16 (mixed-precision activations): every op reads its bfloat16 inputs as float, computes in
// float and rounds the result once, so it is bit for bit the float32 kernel on the widened inputs,
// rounded; broadcasting included.
TEST(ElementwiseCpu, Bfloat16ComputesInFloatAndRoundsOnce) {
  Context& ctx = Context::current(Device::cpu());
  auto rounded = [&](const Tensor& f) {
    Tensor b = Tensor::empty(f.shape(), DType::kBFloat16, Device::cpu());
    kernels::cast(ctx, f, b);
    return b;
  };
  for (UnaryOp op : kUnaryOps) {
    const double lo = positive_domain(op) ? 0.1 : -3;
    const Tensor x =
        testing::random_tensor({1025}, 7 + int(op), DType::kBFloat16, Device::cpu(), lo, 3);
    const Tensor out = testing::nan_tensor({1025}, DType::kBFloat16, Device::cpu());
    kernels::unary(ctx, op, x, out, 0.7, 1.3);
    const Tensor xf = kernels::to_float32(ctx, x);
    const Tensor ref = testing::nan_tensor({1025}, DType::kFloat32, Device::cpu());
    kernels::unary(ctx, op, xf, ref, static_cast<float>(0.7), static_cast<float>(1.3));
    const auto got = out.to_vector<bfloat16>(), want = rounded(ref).to_vector<bfloat16>();
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_EQ(got[i].bits, want[i].bits) << kernels::unary_op_name(op) << " at " << i;
  }
  for (BinaryOp op : kBinaryOps)
    for (Shape ys : {Shape{2, 3, 5, 7}, Shape{1}, Shape{3}, Shape{2, 3, 1, 1}}) {
      const Tensor x =
          testing::random_tensor({2, 3, 5, 7}, 3, DType::kBFloat16, Device::cpu(), 0.2, 2);
      const Tensor y = testing::random_tensor(ys, 4, DType::kBFloat16, Device::cpu(), 0.2, 2);
      const Tensor out = testing::nan_tensor(x.shape(), DType::kBFloat16, Device::cpu());
      kernels::binary(ctx, op, x, y, out);
      const Tensor ref = testing::nan_tensor(x.shape(), DType::kFloat32, Device::cpu());
      kernels::binary(ctx, op, kernels::to_float32(ctx, x), kernels::to_float32(ctx, y), ref);
      const auto got = out.to_vector<bfloat16>(), want = rounded(ref).to_vector<bfloat16>();
      for (size_t i = 0; i < got.size(); ++i)
        ASSERT_EQ(got[i].bits, want[i].bits) << kernels::binary_op_name(op) << " with " << ys;
    }
}

// The activation backward ops read the activation's input: check them on both sides of 0 (the
// broadcast test above draws from [0.2, 2] for the sake of div and pow).
TEST(ElementwiseCpu, ActivationBackwardOpsMatchOnBothSidesOfZero) {
  const BinaryOp ops[] = {BinaryOp::kReluBackward, BinaryOp::kSeluBackward, BinaryOp::kGeluBackward,
                          BinaryOp::kGeluTanhBackward, BinaryOp::kSiluBackward};
  for (DType dt : {DType::kFloat32, DType::kFloat64}) {
    for (BinaryOp op : ops) {
      Tensor g = testing::random_tensor({1025}, 5, dt, Device::cpu(), -2, 2);
      Tensor x = testing::random_tensor({1025}, 6, dt, Device::cpu(), -6, 6);
      Tensor out = testing::nan_tensor({1025}, dt, Device::cpu());
      kernels::binary(Context::current(Device::cpu()), op, g, x, out);
      const auto gv = testing::values(g), xv = testing::values(x);
      std::vector<double> ref(gv.size());
      for (size_t i = 0; i < gv.size(); ++i) ref[i] = ref_binary(op, gv[i], xv[i]);
      const double tol = dt == DType::kFloat32 ? 4e-6 : 1e-14;
      EXPECT_TRUE(testing::all_close(testing::values(out), ref, tol, tol))
          << kernels::binary_op_name(op) << " " << dtype_name(dt);
    }
  }
}

TEST(ElementwiseCpu, InPlaceOutputIsAllowed) {
  Tensor x = Tensor::from_vector<float>({1, 2, 3}, {3}, Device::cpu());
  Tensor y = Tensor::from_vector<float>({10, 20, 30}, {3}, Device::cpu());
  kernels::binary(Context::current(Device::cpu()), BinaryOp::kAdd, x, y, x);
  EXPECT_EQ(x.to_vector<float>(), (std::vector<float>{11, 22, 33}));
}

TEST(ElementwiseCpu, NanPropagatesThroughReluAndMax) {
  Tensor x = Tensor::from_vector<float>({NAN, -1, 2}, {3}, Device::cpu());
  auto r = apply(UnaryOp::kRelu, x).to_vector<float>();
  EXPECT_TRUE(std::isnan(r[0]));
  EXPECT_EQ(r[1], 0);
  auto m = apply(BinaryOp::kMax, x, Tensor::from_vector<float>({1}, {1}, Device::cpu()))
               .to_vector<float>();
  EXPECT_TRUE(std::isnan(m[0]));
}

TEST(ElementwiseCpu, SigmoidIsStableForLargeInputs) {
  Tensor x = Tensor::from_vector<float>({-1000, -88, 0, 88, 1000}, {5}, Device::cpu());
  auto s = apply(UnaryOp::kSigmoid, x).to_vector<float>();
  for (float v : s) EXPECT_TRUE(std::isfinite(v));
  EXPECT_EQ(s[0], 0.0f);
  EXPECT_EQ(s[2], 0.5f);
  EXPECT_EQ(s[4], 1.0f);
  // silu, gelu and elu stay finite (and exact in the saturated regions) at extreme inputs.
  for (UnaryOp op :
       {UnaryOp::kSilu, UnaryOp::kGelu, UnaryOp::kGeluTanh, UnaryOp::kElu, UnaryOp::kSelu}) {
    auto v = apply(op, x, 1.0).to_vector<float>();
    for (float f : v) EXPECT_TRUE(std::isfinite(f)) << kernels::unary_op_name(op);
    if (op != UnaryOp::kSelu) {
      EXPECT_EQ(v[4], 1000.0f) << kernels::unary_op_name(op);
    }
  }
}

TEST(ElementwiseCpu, NanPropagatesThroughTheActivations) {
  Tensor x = Tensor::from_vector<float>({NAN}, {1}, Device::cpu());
  for (UnaryOp op : {UnaryOp::kLeakyRelu, UnaryOp::kElu, UnaryOp::kSelu, UnaryOp::kGelu,
                     UnaryOp::kGeluTanh, UnaryOp::kSilu})
    EXPECT_TRUE(std::isnan(apply(op, x, 0.5).item<float>())) << kernels::unary_op_name(op);
}

TEST(ElementwiseCpu, FillAndCastCoverEveryDtypeAndSaturate) {
  Context& ctx = Context::current(Device::cpu());
  Tensor f = Tensor::from_vector<float>({-3.7f, 0.5f, 300.0f, NAN}, {4}, Device::cpu());
  Tensor u = Tensor::empty({4}, DType::kUInt8, Device::cpu());
  kernels::cast(ctx, f, u);
  EXPECT_EQ(u.to_vector<uint8_t>(), (std::vector<uint8_t>{0, 0, 255, 0}));
  Tensor i = Tensor::empty({4}, DType::kInt32, Device::cpu());
  kernels::cast(ctx, f, i);
  EXPECT_EQ(i.to_vector<int32_t>(), (std::vector<int32_t>{-3, 0, 300, 0}));
  Tensor d = Tensor::empty({4}, DType::kFloat64, Device::cpu());
  kernels::cast(ctx, u, d);
  EXPECT_EQ(d.to_vector<double>(), (std::vector<double>{0, 0, 255, 0}));
  kernels::fill(ctx, i, 7);
  EXPECT_EQ(i.to_vector<int32_t>(), std::vector<int32_t>(4, 7));
}

TEST(ElementwiseCpu, GatherRowsCopiesTheIndexedRowsOfAnyDtype) {
  Context& ctx = Context::current(Device::cpu());
  Tensor src = Tensor::from_vector<float>({0, 1, 2, 10, 11, 12, 20, 21, 22}, {3, 3}, Device::cpu());
  Tensor idx = Tensor::from_vector<int32_t>({2, 0, 2}, {3}, Device::cpu());
  Tensor out = testing::nan_tensor({3, 3}, DType::kFloat32, Device::cpu());
  kernels::gather_rows(ctx, src, idx, out);
  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{20, 21, 22, 0, 1, 2, 20, 21, 22}));
  Tensor bytes = Tensor::from_vector<uint8_t>({1, 2, 3, 4, 5, 6}, {3, 2}, Device::cpu());
  Tensor bout = Tensor::empty({2, 2}, DType::kUInt8, Device::cpu());
  kernels::gather_rows(ctx, bytes, Tensor::from_vector<int32_t>({1, 1}, {2}, Device::cpu()), bout);
  EXPECT_EQ(bout.to_vector<uint8_t>(), (std::vector<uint8_t>{3, 4, 3, 4}));
  EXPECT_THROW(kernels::gather_rows(ctx, src, Tensor::from_vector<int32_t>({3}, {1}, Device::cpu()),
                                    Tensor::empty({1, 3}, DType::kFloat32, Device::cpu())),
               Error);  // out of range
  EXPECT_THROW(
      kernels::gather_rows(ctx, src, idx, Tensor::empty({3, 2}, DType::kFloat32, Device::cpu())),
      Error);  // row shape
}

TEST(ElementwiseErrors, NameTheOpAndBothShapes) {
  Context& ctx = Context::current(Device::cpu());
  Tensor a = Tensor::zeros({2, 3}, DType::kFloat32, Device::cpu());
  Tensor b = Tensor::zeros({4}, DType::kFloat32, Device::cpu());
  try {
    add(a, b);
    FAIL();
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("add"), std::string::npos) << m;
    EXPECT_NE(m.find("[2, 3]"), std::string::npos) << m;
    EXPECT_NE(m.find("[4]"), std::string::npos) << m;
  }
  Tensor d = Tensor::zeros({2, 3}, DType::kFloat64, Device::cpu());
  EXPECT_THROW(kernels::binary(ctx, BinaryOp::kMul, a, d, a), Error);  // dtype mismatch
  Tensor wrong_out = Tensor::zeros({3, 2}, DType::kFloat32, Device::cpu());
  EXPECT_THROW(kernels::binary(ctx, BinaryOp::kMul, a, a, wrong_out), Error);
  Tensor ints = Tensor::zeros({2}, DType::kInt32, Device::cpu());
  EXPECT_THROW(kernels::unary(ctx, UnaryOp::kExp, ints, ints), Error);
}

// ---- CPU vs CUDA parity (runs wherever a GPU is usable) ----

class ElementwiseParity : public DeviceTest {};

TEST_P(ElementwiseParity, UnaryBinaryFillCastMatchTheCpu) {
  const Device dev = device();
  for (int64_t n : {1, 31, 1025, 100003}) {
    for (UnaryOp op : kUnaryOps) {
      const double lo = positive_domain(op) ? 0.1 : -3;
      Tensor x = testing::random_tensor({n}, n, DType::kFloat32, Device::cpu(), lo, 3);
      Tensor ref = testing::nan_tensor({n}, DType::kFloat32, Device::cpu());
      kernels::unary(Context::current(Device::cpu()), op, x, ref, 0.7, 1.3);
      Tensor out = testing::nan_tensor({n}, DType::kFloat32, dev);
      kernels::unary(Context::current(dev), op, x.to(dev), out, 0.7, 1.3);
      EXPECT_TRUE(testing::all_close(out, ref, 1e-6, 1e-6)) << kernels::unary_op_name(op);
    }
  }
  for (BinaryOp op : kBinaryOps) {
    for (Shape ys : {Shape{2, 3, 5, 7}, Shape{1}, Shape{3}, Shape{2, 3, 1, 1}}) {
      Tensor x = testing::random_tensor({2, 3, 5, 7}, 3, DType::kFloat64, Device::cpu(), 0.2, 2);
      Tensor y = testing::random_tensor(ys, 4, DType::kFloat64, Device::cpu(), 0.2, 2);
      Tensor ref = testing::nan_tensor(x.shape(), DType::kFloat64, Device::cpu());
      kernels::binary(Context::current(Device::cpu()), op, x, y, ref);
      Tensor out = testing::nan_tensor(x.shape(), DType::kFloat64, dev);
      kernels::binary(Context::current(dev), op, x.to(dev), y.to(dev), out);
      EXPECT_TRUE(testing::all_close(out, ref, 1e-13, 1e-13)) << kernels::binary_op_name(op);
    }
  }
  Tensor f = Tensor::from_vector<float>({-3.7f, 0.5f, 300.0f, NAN}, {4}, Device::cpu());
  Tensor u = Tensor::empty({4}, DType::kUInt8, dev);
  kernels::cast(Context::current(dev), f.to(dev), u);
  EXPECT_EQ(u.to_vector<uint8_t>(), (std::vector<uint8_t>{0, 0, 255, 0}));
  Tensor i = Tensor::empty({1025}, DType::kInt32, dev);
  kernels::fill(Context::current(dev), i, -5);
  EXPECT_EQ(i.to_vector<int32_t>(), std::vector<int32_t>(1025, -5));
  // gather_rows: word rows (float32 [*, 16, 5, 5]) and byte rows (uint8 [*, 3]), odd counts.
  for (DType dt : {DType::kFloat32, DType::kUInt8}) {
    const Shape shape = dt == DType::kFloat32 ? Shape{1031, 16, 5, 5} : Shape{1031, 3};
    Tensor src = testing::random_tensor(Shape{1031 * (dt == DType::kFloat32 ? 400 : 3)}, 9,
                                        DType::kFloat32, Device::cpu(), 0, 200);
    Tensor typed = Tensor::empty(Shape{src.numel()}, dt, Device::cpu());
    kernels::cast(Context::current(Device::cpu()), src, typed);
    typed = typed.reshape(shape);
    std::vector<int32_t> order;
    for (int32_t k = 0; k < 517; ++k) order.push_back((k * 389) % 1031);
    Tensor idx = Tensor::from_vector<int32_t>(order, {517}, Device::cpu());
    std::vector<int64_t> out_dims = shape.dims();
    out_dims[0] = 517;
    Tensor ref = Tensor::zeros(Shape(out_dims), dt, Device::cpu());
    kernels::gather_rows(Context::current(Device::cpu()), typed, idx, ref);
    Tensor out = Tensor::zeros(Shape(out_dims), dt, dev);
    kernels::gather_rows(Context::current(dev), typed.to(dev), idx.to(dev), out);
    const Tensor back = out.to(Device::cpu());
    EXPECT_EQ(std::memcmp(back.raw_data(), ref.raw_data(), ref.nbytes()), 0) << dtype_name(dt);
  }
  // Rows of whole words whose start is not word-aligned: a bfloat16 slice starting at 2 mod 4.
  Tensor h = testing::random_tensor({9, 1}, 10, DType::kBFloat16, Device::cpu(), -1, 1);
  Tensor hidx = Tensor::from_vector<int32_t>({3, 0, 2}, {3}, Device::cpu());
  Tensor href = Tensor::zeros({3, 2}, DType::kBFloat16, Device::cpu());
  kernels::gather_rows(Context::current(Device::cpu()), h.slice(1, 9).reshape({4, 2}), hidx, href);
  Tensor hout = Tensor::zeros({3, 2}, DType::kBFloat16, dev);
  kernels::gather_rows(Context::current(dev), h.to(dev).slice(1, 9).reshape({4, 2}), hidx.to(dev),
                       hout);
  EXPECT_EQ(hout.to_vector<bfloat16>(), href.to_vector<bfloat16>());
}

// Every unary op (on 100003 values from seed unary_seed) and binary op (broadcasting shapes) in
// dtype dt on dev against the CPU, within rtol.
void expect_ops_match_the_cpu(Device dev, DType dt, uint64_t unary_seed, double rtol) {
  Context& cpu = Context::current(Device::cpu());
  for (UnaryOp op : kUnaryOps) {
    const double lo = positive_domain(op) ? 0.1 : -3;
    Tensor x = testing::random_tensor({100003}, unary_seed, dt, Device::cpu(), lo, 3);
    Tensor ref = testing::nan_tensor({100003}, dt, Device::cpu());
    kernels::unary(cpu, op, x, ref, 0.7, 1.3);
    Tensor out = testing::nan_tensor({100003}, dt, dev);
    kernels::unary(Context::current(dev), op, x.to(dev), out, 0.7, 1.3);
    EXPECT_TRUE(testing::all_close(out, ref, rtol, 1e-6)) << kernels::unary_op_name(op);
  }
  for (BinaryOp op : kBinaryOps)
    for (Shape ys : {Shape{2, 3, 5, 7}, Shape{1}, Shape{3}, Shape{2, 3, 1, 1}}) {
      Tensor x = testing::random_tensor({2, 3, 5, 7}, 3, dt, Device::cpu(), 0.2, 2);
      Tensor y = testing::random_tensor(ys, 4, dt, Device::cpu(), 0.2, 2);
      Tensor ref = testing::nan_tensor(x.shape(), dt, Device::cpu());
      kernels::binary(cpu, op, x, y, ref);
      Tensor out = testing::nan_tensor(x.shape(), dt, dev);
      kernels::binary(Context::current(dev), op, x.to(dev), y.to(dev), out);
      EXPECT_TRUE(testing::all_close(out, ref, rtol, 1e-6)) << kernels::binary_op_name(op);
    }
}

// bfloat16 on the device against the CPU: both compute in float and round once; the device's
// float functions (exp, tanh, ...) may differ from the CPU's by a float ulp, which can move the
// rounded result by one bfloat16 ulp.
TEST_P(ElementwiseParity, Bfloat16MatchesTheCpu) {
  expect_ops_match_the_cpu(device(), DType::kBFloat16, 5, 0x1p-7);
}

// float16 on the device against the CPU (computed in float, rounded once, as bfloat16), and every
// cast between the six dtypes: the conversions (rounding to the 16-bit floats, saturation and NaN
// to the integers) are the shared convert<> of kernels/cast.h, so the values agree exactly.
TEST_P(ElementwiseParity, Float16AndEveryCastMatchTheCpu) {
  const Device dev = device();
  Context& cpu = Context::current(Device::cpu());
  expect_ops_match_the_cpu(dev, DType::kFloat16, 6, 0x1p-10);
  // Values that round, tie, saturate, overflow float16 and are not numbers, then 1025 ordinary
  // ones.
  std::vector<double> v = {NAN,  INFINITY, -INFINITY, -0.0, 2.5,   -3.5, 255.5, 256,
                           -129, 65519.0,  65520.0,   1e10, -1e10, 3e9,  1e-8,  -7.9};
  for (double e : testing::random_values(1025, 17, -300, 300)) v.push_back(e);
  const int64_t n = static_cast<int64_t>(v.size());
  const Tensor wide = Tensor::from_vector<double>(v, {n}, Device::cpu());
  const DType all[] = {DType::kFloat32, DType::kFloat64, DType::kBFloat16,
                       DType::kFloat16, DType::kInt32,   DType::kUInt8};
  for (DType from : all) {
    Tensor x = Tensor::empty({n}, from, Device::cpu());
    kernels::cast(cpu, wide, x);
    for (DType to : all) {
      Tensor ref = Tensor::zeros({n}, to, Device::cpu());
      kernels::cast(cpu, x, ref);
      Tensor out = Tensor::zeros({n}, to, dev);
      kernels::cast(Context::current(dev), x.to(dev), out);
      const auto a = testing::values(out), b = testing::values(ref);
      for (int64_t i = 0; i < n; ++i)
        EXPECT_TRUE(a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i])))
            << dtype_name(from) << " -> " << dtype_name(to) << " of " << v[i] << ": " << a[i]
            << " vs " << b[i];
    }
  }
}

// increment, on every device: exact past 2^24 (where the float detour it replaced stopped counting)
// and at 2^31 - 2, on a scalar (num_batches_tracked) and on a vector longer than one block.
TEST_P(ElementwiseParity, IncrementCountsExactlyInInt32) {
  const Device dev = device();
  Context& ctx = Context::current(dev);
  const int32_t big = (1 << 24) + 1, top = 2147483646;
  Tensor scalar = Tensor::from_vector<int32_t>({big}, Shape(), Device::cpu()).to(dev);
  for (int k = 0; k < 3; ++k) kernels::increment(ctx, scalar);
  EXPECT_EQ(scalar.to_vector<int32_t>(), std::vector<int32_t>{big + 3});
  std::vector<int32_t> v(1000);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int32_t>(i) * 7 - 3000;
  v[999] = top;
  Tensor vec = Tensor::from_vector<int32_t>(v, {1000}, Device::cpu()).to(dev);
  kernels::increment(ctx, vec);
  for (int32_t& e : v) ++e;
  EXPECT_EQ(vec.to_vector<int32_t>(), v);
  kernels::increment(ctx, Tensor::empty({0}, DType::kInt32, dev));  // nothing to count
  testing::expect_error([&] { kernels::increment(ctx, Tensor::zeros({2}, DType::kFloat32, dev)); },
                        {"increment", "int32", "float32"});
}

// float32 binary and float64 unary ops, which the tests above leave to the layer tests.
TEST_P(ElementwiseParity, Float32AndFloat64MatchTheCpu) {
  expect_ops_match_the_cpu(device(), DType::kFloat32, 7, 1e-6);
  expect_ops_match_the_cpu(device(), DType::kFloat64, 8, 1e-12);
}

// Views that start one element past a 16-byte boundary: the kernels fall back from 16-byte packs
// to one element per thread (unary, full binary and cast), every float dtype; and more elements
// than the largest grid has threads, so the grid-stride loops take a second turn.
TEST_P(ElementwiseParity, MisalignedViewsAndLongInputsMatchTheCpu) {
  const Device dev = device();
  Context& cpu = Context::current(Device::cpu());
  // x[1 .. n] of a fresh [n + 1] tensor (from seed) on `on`: 4 (float64: 8) bytes past 16.
  auto shifted = [](int64_t n, uint64_t seed, DType dt, Device on, double lo, double hi) {
    const Tensor v =
        testing::random_tensor({n + 1}, seed, dt, Device::cpu(), lo, hi).to(on).slice(1, n + 1);
    EXPECT_NE(reinterpret_cast<uintptr_t>(v.raw_data()) % 16, 0u) << dtype_name(dt);
    return v;
  };
  for (DType dt : {DType::kFloat32, DType::kFloat64, DType::kBFloat16, DType::kFloat16}) {
    const double rtol = dt == DType::kBFloat16  ? 0x1p-7
                        : dt == DType::kFloat16 ? 0x1p-10
                        : dt == DType::kFloat32 ? 1e-6
                                                : 1e-12;
    const int64_t n = 10007;
    for (UnaryOp op : kUnaryOps) {
      const double lo = positive_domain(op) ? 0.1 : -3;
      const Tensor ref = testing::nan_tensor({n}, dt, Device::cpu());
      kernels::unary(cpu, op, shifted(n, 21, dt, Device::cpu(), lo, 3), ref, 0.7, 1.3);
      const Tensor out = testing::nan_tensor({n + 1}, dt, dev).slice(1, n + 1);
      kernels::unary(Context::current(dev), op, shifted(n, 21, dt, dev, lo, 3), out, 0.7, 1.3);
      EXPECT_TRUE(testing::all_close(out, ref, rtol, 1e-6))
          << kernels::unary_op_name(op) << " " << dtype_name(dt);
    }
    for (BinaryOp op : kBinaryOps) {
      const Tensor y = testing::random_tensor({n}, 23, dt, Device::cpu(), 0.2, 2);
      const Tensor ref = testing::nan_tensor({n}, dt, Device::cpu());
      kernels::binary(cpu, op, shifted(n, 22, dt, Device::cpu(), 0.2, 2), y, ref);
      const Tensor out = testing::nan_tensor({n}, dt, dev);
      kernels::binary(Context::current(dev), op, shifted(n, 22, dt, dev, 0.2, 2), y.to(dev), out);
      EXPECT_TRUE(testing::all_close(out, ref, rtol, 1e-6))
          << kernels::binary_op_name(op) << " " << dtype_name(dt);
    }
    for (DType to : {DType::kFloat32, DType::kFloat64, DType::kBFloat16, DType::kFloat16,
                     DType::kInt32, DType::kUInt8}) {
      const Tensor ref = Tensor::zeros({n}, to, Device::cpu());
      kernels::cast(cpu, shifted(n, 24, dt, Device::cpu(), -300, 300), ref);
      const Tensor out = Tensor::zeros({n}, to, dev);
      kernels::cast(Context::current(dev), shifted(n, 24, dt, dev, -300, 300), out);
      EXPECT_EQ(testing::values(out), testing::values(ref))
          << dtype_name(dt) << " -> " << dtype_name(to);
    }
  }
  // 4.5 M float32 values: past the largest grid (launch.cuh's kMaxGrid blocks of kBlock) even in
  // packs of four.
  const int64_t big = 4500001;
  const Tensor x = testing::random_tensor({big}, 25, DType::kFloat32, Device::cpu(), -3, 3);
  const Tensor y = testing::random_tensor({big}, 26, DType::kFloat32, Device::cpu(), 0.2, 2);
  for (UnaryOp op : {UnaryOp::kExp, UnaryOp::kTanh}) {
    const Tensor ref = testing::nan_tensor({big}, DType::kFloat32, Device::cpu());
    kernels::unary(cpu, op, x, ref, 0, 0);
    const Tensor out = testing::nan_tensor({big}, DType::kFloat32, dev);
    kernels::unary(Context::current(dev), op, x.to(dev), out, 0, 0);
    EXPECT_TRUE(testing::all_close(out, ref, 1e-6, 1e-6)) << kernels::unary_op_name(op);
  }
  const Tensor ref = testing::nan_tensor({big}, DType::kFloat32, Device::cpu());
  kernels::binary(cpu, BinaryOp::kDiv, x, y, ref);
  const Tensor out = testing::nan_tensor({big}, DType::kFloat32, dev);
  kernels::binary(Context::current(dev), BinaryOp::kDiv, x.to(dev), y.to(dev), out);
  EXPECT_TRUE(testing::all_close(out, ref, 1e-6, 1e-6)) << "div";
}

CYCLONE_INSTANTIATE_DEVICE_TEST(ElementwiseParity);

}  // namespace
}  // namespace cyclone
