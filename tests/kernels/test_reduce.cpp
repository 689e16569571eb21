// Reduction kernels against naive double loops on every device (odd sizes, every axis of a 3-D
// shape, shapes that reach each CUDA launch path), CPU-vs-CUDA parity, float32 accuracy of long
// sums, NaN propagation, empty sets, run-to-run determinism and error messages
// (kernels/cpu/reduce.cpp against kernels/cuda/reduce.cu).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "common/test_util.h"

namespace cyclone {
namespace {

using kernels::ReduceOp;
using testing::DeviceTest;

constexpr ReduceOp kOps[] = {ReduceOp::kSum, ReduceOp::kMean, ReduceOp::kMax};

struct Case {
  Shape shape;
  int axis;
};

// Odd sizes, each axis of a 3-D shape (negative too), and shapes that take each CUDA path:
// short rows (one warp each), many long rows (one block each), few long rows (two passes),
// strided axes (inner > 1), and a few long columns ([len > 16 Ki, inner <= 32] over axis 0: two
// passes over [N = len, C = inner]).
// The last three outgrow the capped grid (grid_cap: at most kMaxGrid = 132 * 32 = 4224 blocks), so
// the row or tile loop of their kernel takes a second pass:
//   {40000, 3} axis 1: rows of 3 (<= 256): rows_warp_kernel, 40000 * 32 / 256 = 5000 blocks wanted,
//     4224 * 8 = 33792 warps for 40000 rows;
//   {5000, 300} axis 1: rows of 300 (> 256), 5000 >= 256 rows: rows_block_kernel, one block per
//     row wanted, 4224 blocks for 5000 rows;
//   {2, 5, 70000} axis 1: inner 70000 > 1 with outer 2: strided_kernel, 2 * 70000 / 32 = 4375
//     tiles of 32 outputs for 4224 blocks.
const std::vector<Case>& axis_cases() {
  static const std::vector<Case> cases = {
      {{1}, 0},        {{31}, 0},         {{1025}, 0},     {{3, 5, 7}, 0},   {{3, 5, 7}, 1},
      {{3, 5, 7}, 2},  {{3, 5, 7}, -1},   {{1, 1, 1}, 1},  {{37, 300}, 1},   {{300, 1100}, 1},
      {{3, 20000}, 1}, {{4, 600, 33}, 1}, {{2500, 3}, 0},  {{7, 1, 9}, 1},   {{2, 3, 4, 5}, 2},
      {{5, 1031}, 0},  {{20011, 3}, 0},   {{40000, 3}, 1}, {{5000, 300}, 1}, {{2, 5, 70000}, 1},
  };
  return cases;
}

struct Dims {
  int64_t outer = 1, len = 1, inner = 1;
};
Dims dims_of(const Shape& s, int axis) {
  const int a = axis < 0 ? axis + s.rank() : axis;
  return {s.prod(0, a), s[a], s.prod(a + 1, s.rank())};
}

// Naive reference in double: ref[o * inner + i] = op_k x[o, k, i]; also sum_k |x| (for a
// tolerance proportional to the size of what was summed).
void reference(ReduceOp op, const std::vector<double>& x, Dims d, std::vector<double>& ref,
               std::vector<double>& abs_sum) {
  ref.assign(static_cast<size_t>(d.outer * d.inner), 0.0);
  abs_sum.assign(ref.size(), 0.0);
  for (int64_t o = 0; o < d.outer; ++o)
    for (int64_t i = 0; i < d.inner; ++i) {
      double s = 0, a = 0, m = -std::numeric_limits<double>::infinity();
      for (int64_t k = 0; k < d.len; ++k) {
        const double v = x[(o * d.len + k) * d.inner + i];
        s += v;
        a += std::fabs(v);
        if (std::isnan(v) || v > m || std::isnan(m)) m = std::isnan(m) ? m : v;
      }
      const size_t j = static_cast<size_t>(o * d.inner + i);
      ref[j] = op == ReduceOp::kSum ? s : op == ReduceOp::kMean ? s / d.len : m;
      abs_sum[j] = op == ReduceOp::kMean ? a / d.len : a;
    }
}

// Every element within rel * (sum of |x| reduced into it); max must be exact.
::testing::AssertionResult matches(ReduceOp op, const std::vector<double>& got,
                                   const std::vector<double>& ref,
                                   const std::vector<double>& abs_sum, DType dt) {
  const double rel = op == ReduceOp::kMax ? 0.0 : dt == DType::kFloat32 ? 2e-6 : 1e-13;
  if (got.size() != ref.size())
    return ::testing::AssertionFailure() << got.size() << " outputs, expected " << ref.size();
  for (size_t j = 0; j < got.size(); ++j) {
    // The reference is double; a float32 max equals it exactly since its inputs are float32.
    const double tol = rel * abs_sum[j] + (op == ReduceOp::kMax ? 0.0 : 1e-300);
    if (!(std::fabs(got[j] - ref[j]) <= tol))
      return ::testing::AssertionFailure() << "element " << j << ": " << got[j] << " vs reference "
                                           << ref[j] << " (tol " << tol << ")";
  }
  return ::testing::AssertionSuccess();
}

std::string label(ReduceOp op, const Shape& s, int axis, DType dt) {
  return std::string(kernels::reduce_op_name(op)) + " over axis " + std::to_string(axis) + " of " +
         s.str() + " " + dtype_name(dt);
}

Tensor int_tensor(const Shape& s, int32_t v, Device dev) {
  return Tensor::from_vector<int32_t>(std::vector<int32_t>(static_cast<size_t>(s.numel()), v), s,
                                      dev);
}

// Values in [-2, 2] rounded to quarters, so that ties are common (argmax must pick the first).
Tensor tied_tensor(const Shape& s, uint64_t seed, DType dt, Device dev) {
  auto v = testing::random_values(s.numel(), seed, -2, 2);
  for (auto& e : v) e = std::round(e * 4) / 4;
  if (dt == DType::kFloat64) return Tensor::from_vector<double>(v, s, dev);
  return Tensor::from_vector<float>(std::vector<float>(v.begin(), v.end()), s, dev);
}

class ReduceTest : public DeviceTest {};

TEST_P(ReduceTest, AxisMatchesNaiveLoops) {
  const Device dev = device();
  Context& ctx = Context::current(dev);
  for (DType dt : {DType::kFloat32, DType::kFloat64})
    for (const Case& c : axis_cases())
      for (ReduceOp op : kOps) {
        Tensor x = testing::random_tensor(c.shape, c.shape.numel() + c.axis, dt, dev, -1, 1);
        const Dims d = dims_of(c.shape, c.axis);
        Tensor out = testing::nan_tensor({d.outer * d.inner}, dt, dev);
        kernels::reduce_axis(ctx, op, x, c.axis, out);
        std::vector<double> ref, abs_sum;
        reference(op, testing::values(x), d, ref, abs_sum);
        EXPECT_TRUE(matches(op, testing::values(out), ref, abs_sum, dt))
            << label(op, c.shape, c.axis, dt);
      }
}

TEST_P(ReduceTest, ArgmaxIsTheFirstMaximum) {
  const Device dev = device();
  for (DType dt : {DType::kFloat32, DType::kFloat64})
    for (const Case& c : axis_cases()) {
      Tensor x = tied_tensor(c.shape, 7 + c.axis, dt, dev);
      const Dims d = dims_of(c.shape, c.axis);
      Tensor out = int_tensor({d.outer * d.inner}, -1, dev);
      kernels::argmax_axis(Context::current(dev), x, c.axis, out);
      const auto xv = testing::values(x);
      std::vector<int32_t> ref(static_cast<size_t>(d.outer * d.inner));
      for (int64_t o = 0; o < d.outer; ++o)
        for (int64_t i = 0; i < d.inner; ++i) {
          int32_t best = 0;
          for (int64_t k = 1; k < d.len; ++k)
            if (xv[(o * d.len + k) * d.inner + i] > xv[(o * d.len + best) * d.inner + i])
              best = static_cast<int32_t>(k);
          ref[o * d.inner + i] = best;
        }
      EXPECT_EQ(out.to_vector<int32_t>(), ref)
          << "argmax over axis " << c.axis << " of " << c.shape << " " << dtype_name(dt);
    }
}

TEST_P(ReduceTest, AllMatchesNaiveLoops) {
  const Device dev = device();
  for (DType dt : {DType::kFloat32, DType::kFloat64})
    for (int64_t n : {1, 31, 1025, 100003})
      for (ReduceOp op : kOps)
        for (Shape out_shape : {Shape{}, Shape{1}}) {
          Tensor x = testing::random_tensor({n}, n, dt, dev, -1, 1);
          Tensor out = testing::nan_tensor(out_shape, dt, dev);
          kernels::reduce_all(Context::current(dev), op, x, out);
          std::vector<double> ref, abs_sum;
          reference(op, testing::values(x), {1, n, 1}, ref, abs_sum);
          EXPECT_TRUE(matches(op, testing::values(out), ref, abs_sum, dt))
              << "reduce_all " << label(op, {n}, 0, dt);
        }
}

TEST_P(ReduceTest, ChannelsMatchNaiveLoops) {
  const Device dev = device();
  for (DType dt : {DType::kFloat32, DType::kFloat64})
    for (Shape s : {Shape{5, 7}, Shape{3, 4, 5, 6}, Shape{1, 3, 1025}, Shape{257, 2},
                    Shape{2, 1, 31}, Shape{64, 16, 9, 9}})
      for (ReduceOp op : kOps) {
        Tensor x = testing::random_tensor(s, s.numel(), dt, dev, -1, 1);
        const int64_t n = s[0], c = s[1], inner = s.prod(2, s.rank());
        Tensor out = testing::nan_tensor({c}, dt, dev);
        kernels::reduce_channels(Context::current(dev), op, x, out);
        // [N, C, inner] -> [C, N * inner], then the axis reference over the last axis.
        const auto xv = testing::values(x);
        std::vector<double> t(xv.size());
        for (int64_t b = 0; b < n; ++b)
          for (int64_t ch = 0; ch < c; ++ch)
            for (int64_t i = 0; i < inner; ++i)
              t[(ch * n + b) * inner + i] = xv[(b * c + ch) * inner + i];
        std::vector<double> ref, abs_sum;
        reference(op, t, {c, n * inner, 1}, ref, abs_sum);
        EXPECT_TRUE(matches(op, testing::values(out), ref, abs_sum, dt))
            << "reduce_channels " << label(op, s, 1, dt);
      }
}

// Pairwise (CPU) and tree + double accumulation (CUDA) keep a float32 sum of 1e7 values with a
// large mean within 1e-6 relative error; a running float sum is off by far more.
TEST_P(ReduceTest, LongFloat32SumsStayAccurate) {
  const Device dev = device();
  Context& ctx = Context::current(dev);
  const int64_t n = 10'000'000;
  std::vector<float> host(static_cast<size_t>(n));
  const auto u = testing::random_values(n, 99, -1, 1);
  for (int64_t i = 0; i < n; ++i) host[i] = static_cast<float>(1000.0 + u[i]);
  double exact = 0;
  float naive = 0;
  for (float v : host) exact += v, naive += v;
  ASSERT_GT(std::fabs(naive - exact) / exact, 1e-4) << "the test needs inputs a naive sum fails";

  auto rel = [&](const Tensor& out, double ref) {
    return std::fabs(testing::values(out)[0] - ref) / std::fabs(ref);
  };
  Tensor x = Tensor::from_vector<float>(host, {n}, dev);
  Tensor out = testing::nan_tensor({}, DType::kFloat32, dev);
  kernels::reduce_all(ctx, ReduceOp::kSum, x, out);
  EXPECT_LT(rel(out, exact), 1e-6) << "reduce_all";
  kernels::reduce_all(ctx, ReduceOp::kMean, x, out);
  EXPECT_LT(rel(out, exact / n), 1e-6) << "reduce_all mean";

  Tensor row = testing::nan_tensor({1}, DType::kFloat32, dev);
  kernels::reduce_axis(ctx, ReduceOp::kSum, x.reshape({1, n}), 1, row);
  EXPECT_LT(rel(row, exact), 1e-6) << "reduce_axis, one long row";
  Tensor ch = testing::nan_tensor({1}, DType::kFloat32, dev);
  kernels::reduce_channels(ctx, ReduceOp::kSum, x.reshape({1000, 1, n / 1000}), ch);
  EXPECT_LT(rel(ch, exact), 1e-6) << "reduce_channels";

  // Strided: [n/2, 2] over axis 0, two columns.
  Tensor cols = testing::nan_tensor({2}, DType::kFloat32, dev);
  kernels::reduce_axis(ctx, ReduceOp::kSum, x.reshape({n / 2, 2}), 0, cols);
  double col[2] = {0, 0};
  for (int64_t i = 0; i < n; ++i) col[i % 2] += host[i];
  const auto got = testing::values(cols);
  for (int j = 0; j < 2; ++j)
    EXPECT_LT(std::fabs(got[j] - col[j]) / col[j], 1e-6) << "reduce_axis strided, column " << j;
}

TEST_P(ReduceTest, MaxAndArgmaxPropagateNan) {
  const Device dev = device();
  Context& ctx = Context::current(dev);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (int64_t n : {5, 1025, 40000}) {
    std::vector<float> v(static_cast<size_t>(n), 1.0f);
    v[n / 2] = 7.0f;
    v[n / 3 + 1] = nan;
    v[n - 1] = nan;
    Tensor x = Tensor::from_vector<float>(v, {n}, dev);
    Tensor out = Tensor::zeros({}, DType::kFloat32, dev);
    kernels::reduce_all(ctx, ReduceOp::kMax, x, out);
    EXPECT_TRUE(std::isnan(out.item<float>())) << "reduce_all max, n " << n;
    Tensor row = Tensor::zeros({1}, DType::kFloat32, dev);
    kernels::reduce_axis(ctx, ReduceOp::kMax, x.reshape({1, n}), 1, row);
    EXPECT_TRUE(std::isnan(row.item<float>())) << "reduce_axis max, n " << n;
    Tensor col = Tensor::zeros({1}, DType::kFloat32, dev);
    kernels::reduce_axis(ctx, ReduceOp::kMax, x.reshape({n, 1, 1}), 0, col);
    EXPECT_TRUE(std::isnan(col.item<float>())) << "reduce_axis strided max, n " << n;
    Tensor ch = Tensor::zeros({1}, DType::kFloat32, dev);
    kernels::reduce_channels(ctx, ReduceOp::kMax, x.reshape({n, 1}), ch);
    EXPECT_TRUE(std::isnan(ch.item<float>())) << "reduce_channels max, n " << n;
    Tensor idx = int_tensor({1}, -1, dev);
    kernels::argmax_axis(ctx, x.reshape({1, n}), 1, idx);
    EXPECT_EQ(idx.item<int32_t>(), n / 3 + 1) << "argmax picks the first NaN, n " << n;
  }
  // All -inf: the maximum is -inf at index 0 (an identity of -inf must not win the tie).
  Tensor x = Tensor::from_vector<float>(std::vector<float>(300, -inf), {3, 100}, dev);
  Tensor m = testing::nan_tensor({3}, DType::kFloat32, dev);
  kernels::reduce_axis(ctx, ReduceOp::kMax, x, 1, m);
  EXPECT_EQ(testing::values(m), std::vector<double>(3, -INFINITY));
  Tensor idx = int_tensor({100}, -1, dev);
  kernels::argmax_axis(ctx, x, 0, idx);
  EXPECT_EQ(idx.to_vector<int32_t>(), std::vector<int32_t>(100, 0));
}

TEST_P(ReduceTest, EmptySetsFollowTheConventions) {
  const Device dev = device();
  Context& ctx = Context::current(dev);
  Tensor x = Tensor::empty({0}, DType::kFloat32, dev);
  Tensor out = testing::nan_tensor({}, DType::kFloat32, dev);
  kernels::reduce_all(ctx, ReduceOp::kSum, x, out);
  EXPECT_EQ(out.item<float>(), 0.0f);
  kernels::reduce_all(ctx, ReduceOp::kMean, x, out);
  EXPECT_TRUE(std::isnan(out.item<float>()));
  EXPECT_THROW(kernels::reduce_all(ctx, ReduceOp::kMax, x, out), Error);

  Tensor rows = Tensor::empty({3, 0}, DType::kFloat64, dev);
  Tensor r = testing::nan_tensor({3}, DType::kFloat64, dev);
  kernels::reduce_axis(ctx, ReduceOp::kSum, rows, 1, r);
  EXPECT_EQ(testing::values(r), std::vector<double>(3, 0.0));
  EXPECT_THROW(kernels::reduce_axis(ctx, ReduceOp::kMax, rows, 1, r), Error);
  EXPECT_THROW(kernels::argmax_axis(ctx, rows, 1, int_tensor({3}, 0, dev)), Error);
  // Reducing the non-empty axis of an empty tensor writes nothing and is fine.
  Tensor none = Tensor::empty({0}, DType::kFloat64, dev);
  EXPECT_NO_THROW(kernels::reduce_axis(ctx, ReduceOp::kMax, rows, 0, none));
}

TEST_P(ReduceTest, ResultsAreBitIdenticalRunToRun) {
  const Device dev = device();
  Context& ctx = Context::current(dev);
  Tensor x = testing::random_tensor({3, 1000, 333}, 5, DType::kFloat32, dev, -1, 1);
  for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kMean}) {
    Tensor a = testing::nan_tensor({}, DType::kFloat32, dev);
    Tensor b = testing::nan_tensor({}, DType::kFloat32, dev);
    kernels::reduce_all(ctx, op, x, a);
    kernels::reduce_all(ctx, op, x, b);
    EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
    for (int axis : {0, 1, 2}) {
      const Dims d = dims_of(x.shape(), axis);
      Tensor c = testing::nan_tensor({d.outer * d.inner}, DType::kFloat32, dev);
      Tensor e = testing::nan_tensor({d.outer * d.inner}, DType::kFloat32, dev);
      kernels::reduce_axis(ctx, op, x, axis, c);
      kernels::reduce_axis(ctx, op, x, axis, e);
      EXPECT_EQ(c.to_vector<float>(), e.to_vector<float>()) << "axis " << axis;
    }
    Tensor f = testing::nan_tensor({1000}, DType::kFloat32, dev);
    Tensor g = testing::nan_tensor({1000}, DType::kFloat32, dev);
    kernels::reduce_channels(ctx, op, x, f);
    kernels::reduce_channels(ctx, op, x, g);
    EXPECT_EQ(f.to_vector<float>(), g.to_vector<float>());
  }
}

TEST_P(ReduceTest, BroadcastAndScatterAlongAnAxis) {
  const Device dev = device();
  Context& ctx = Context::current(dev);
  for (DType dt : {DType::kFloat32, DType::kFloat64})
    for (const Case& c : axis_cases()) {
      const Dims d = dims_of(c.shape, c.axis);
      Tensor src = testing::random_tensor({d.outer * d.inner}, 11, dt, dev, -1, 1);
      const auto sv = testing::values(src);
      Tensor out = testing::nan_tensor(c.shape, dt, dev);
      kernels::broadcast_axis(ctx, src, c.axis, out);
      std::vector<double> ref(static_cast<size_t>(c.shape.numel()));
      for (int64_t o = 0; o < d.outer; ++o)
        for (int64_t k = 0; k < d.len; ++k)
          for (int64_t i = 0; i < d.inner; ++i)
            ref[(o * d.len + k) * d.inner + i] = sv[o * d.inner + i];
      EXPECT_EQ(testing::values(out), ref) << "broadcast_axis " << c.shape << " axis " << c.axis;

      std::vector<int32_t> index(static_cast<size_t>(d.outer * d.inner));
      const auto r = testing::random_values(d.outer * d.inner, 12, 0, 1);
      for (size_t j = 0; j < index.size(); ++j) index[j] = static_cast<int32_t>(r[j] * d.len);
      Tensor scattered = testing::nan_tensor(c.shape, dt, dev);
      kernels::scatter_axis(ctx, src, Tensor::from_vector<int32_t>(index, {d.outer * d.inner}, dev),
                            c.axis, scattered);
      for (int64_t o = 0; o < d.outer; ++o)
        for (int64_t k = 0; k < d.len; ++k)
          for (int64_t i = 0; i < d.inner; ++i)
            ref[(o * d.len + k) * d.inner + i] =
                index[o * d.inner + i] == k ? sv[o * d.inner + i] : 0.0;
      EXPECT_EQ(testing::values(scattered), ref)
          << "scatter_axis " << c.shape << " axis " << c.axis;
    }
}

// sum_squares over a model-like list: odd sizes, one large enough for many CUDA blocks, an empty
// tensor, and the four floating dtypes mixed; against the sum of float(v)^2 in double.
std::vector<Tensor> squares_inputs(Device dev) {
  return {testing::random_tensor({31}, 21, DType::kFloat32, dev, -2, 2),
          testing::random_tensor({640, 640, 3}, 22, DType::kFloat32, dev, -1, 1),
          Tensor::empty({0}, DType::kFloat32, dev),
          testing::random_tensor({1000}, 23, DType::kBFloat16, dev, -3, 3),
          testing::random_tensor({77}, 24, DType::kFloat16, dev, -1, 1),
          testing::random_tensor({5, 7}, 25, DType::kFloat64, dev, -1, 1)};
}

TEST_P(ReduceTest, SumSquaresAddsEveryTensor) {
  const Device dev = device();
  Context& ctx = Context::current(dev);
  const std::vector<Tensor> xs = squares_inputs(dev);
  double ref = 0;
  for (const Tensor& x : xs)
    for (double v : testing::values(x)) {
      const float f = static_cast<float>(v);
      ref += static_cast<double>(f * f);
    }
  Tensor out = testing::nan_tensor({1}, DType::kFloat32, dev);
  kernels::sum_squares(ctx, xs, out);
  EXPECT_NEAR(out.item<float>(), ref, 1e-6 * ref);
  // Deterministic, and the same for a list of one.
  Tensor again = testing::nan_tensor({1}, DType::kFloat32, dev);
  kernels::sum_squares(ctx, xs, again);
  EXPECT_EQ(again.item<float>(), out.item<float>());
  Tensor one = testing::nan_tensor({1}, DType::kFloat32, dev);
  kernels::sum_squares(ctx, {xs[0]}, one);
  double ref0 = 0;
  for (double v : testing::values(xs[0])) ref0 += static_cast<double>(float(v) * float(v));
  EXPECT_NEAR(one.item<float>(), ref0, 1e-6 * ref0);
  // Nothing to add: 0, written (not left NaN).
  Tensor none = testing::nan_tensor({1}, DType::kFloat32, dev);
  kernels::sum_squares(ctx, {}, none);
  EXPECT_EQ(none.item<float>(), 0.0f);
  kernels::sum_squares(ctx, {xs[2]}, none);
  EXPECT_EQ(none.item<float>(), 0.0f);
  // A NaN or an inf anywhere makes the result non-finite (the step guard's test).
  Tensor bad = testing::random_tensor({100}, 26, DType::kFloat32, dev, -1, 1);
  bad.slice(40, 41).copy_from(Tensor::from_vector<float>({INFINITY}, {1}, Device::cpu()));
  kernels::sum_squares(ctx, {xs[1], bad}, out);
  EXPECT_FALSE(std::isfinite(out.item<float>()));
}

CYCLONE_INSTANTIATE_DEVICE_TEST(ReduceTest);

// ---- CPU vs CUDA: the same inputs through both backends ----

TEST(ReduceCuda, MatchesTheCpu) {
  CYCLONE_SKIP_IF_UNAVAILABLE(Device::cuda());
  const Device cpu = Device::cpu(), gpu = Device::cuda();
  for (DType dt : {DType::kFloat32, DType::kFloat64}) {
    const double rtol = dt == DType::kFloat32 ? 1e-5 : 1e-12;
    for (const Case& c : axis_cases()) {
      Tensor x = tied_tensor(c.shape, 3, dt, cpu);
      const Dims d = dims_of(c.shape, c.axis);
      for (ReduceOp op : kOps) {
        Tensor ref = testing::nan_tensor({d.outer * d.inner}, dt, cpu);
        kernels::reduce_axis(Context::current(cpu), op, x, c.axis, ref);
        Tensor out = testing::nan_tensor({d.outer * d.inner}, dt, gpu);
        kernels::reduce_axis(Context::current(gpu), op, x.to(gpu), c.axis, out);
        EXPECT_TRUE(testing::all_close(out, ref, rtol, rtol * std::sqrt(double(d.len))))
            << label(op, c.shape, c.axis, dt);
      }
      Tensor ref = int_tensor({d.outer * d.inner}, -1, cpu);
      kernels::argmax_axis(Context::current(cpu), x, c.axis, ref);
      Tensor out = int_tensor({d.outer * d.inner}, -1, gpu);
      kernels::argmax_axis(Context::current(gpu), x.to(gpu), c.axis, out);
      EXPECT_EQ(out.to_vector<int32_t>(), ref.to_vector<int32_t>())
          << "argmax " << c.shape << " axis " << c.axis;
    }
    Tensor x = testing::random_tensor({64, 16, 9, 9}, 4, dt, cpu, -1, 1);
    for (ReduceOp op : kOps) {
      Tensor ref = testing::nan_tensor({16}, dt, cpu);
      kernels::reduce_channels(Context::current(cpu), op, x, ref);
      Tensor out = testing::nan_tensor({16}, dt, gpu);
      kernels::reduce_channels(Context::current(gpu), op, x.to(gpu), out);
      EXPECT_TRUE(testing::all_close(out, ref, rtol, rtol * 64)) << "channels";
      Tensor ref_all = testing::nan_tensor({}, dt, cpu);
      kernels::reduce_all(Context::current(cpu), op, x, ref_all);
      Tensor out_all = testing::nan_tensor({}, dt, gpu);
      kernels::reduce_all(Context::current(gpu), op, x.to(gpu), out_all);
      EXPECT_TRUE(testing::all_close(out_all, ref_all, rtol, rtol * 300)) << "all";
    }
  }
}

TEST(ReduceCuda, SumSquaresMatchesTheCpu) {
  CYCLONE_SKIP_IF_UNAVAILABLE(Device::cuda());
  const std::vector<Tensor> cpu = squares_inputs(Device::cpu());
  std::vector<Tensor> gpu;
  for (const Tensor& x : cpu) gpu.push_back(x.to(Device::cuda()));
  Tensor ref = testing::nan_tensor({1}, DType::kFloat32, Device::cpu());
  kernels::sum_squares(Context::current(Device::cpu()), cpu, ref);
  Tensor out = testing::nan_tensor({1}, DType::kFloat32, Device::cuda());
  kernels::sum_squares(Context::current(Device::cuda()), gpu, out);
  EXPECT_NEAR(out.item<float>(), ref.item<float>(), 1e-6 * ref.item<float>());
}

TEST(ReduceErrors, SumSquaresNamesTheTensorAndTheOutput) {
  Context& ctx = Context::current(Device::cpu());
  const Tensor x = Tensor::zeros({3}, DType::kFloat32, Device::cpu());
  testing::expect_error(
      [&] { kernels::sum_squares(ctx, {x}, Tensor::zeros({2}, DType::kFloat32, Device::cpu())); },
      {"sum_squares", "one float32 element", "[2]"});
  testing::expect_error(
      [&] { kernels::sum_squares(ctx, {x}, Tensor::zeros({1}, DType::kFloat64, Device::cpu())); },
      {"sum_squares", "float64"});
  testing::expect_error(
      [&] {
        kernels::sum_squares(ctx, {x, Tensor::zeros({2}, DType::kInt32, Device::cpu())},
                             Tensor::zeros({1}, DType::kFloat32, Device::cpu()));
      },
      {"sum_squares", "tensor 1", "int32"});
  testing::expect_error(
      [&] {
        kernels::sum_squares(ctx, {x, Tensor()},
                             Tensor::zeros({1}, DType::kFloat32, Device::cpu()));
      },
      {"sum_squares", "tensor 1", "undefined"});
}

// ---- errors name the op, the shapes and the axis ----

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.message();
  }
  return "(no error)";
}

TEST(ReduceErrors, NameTheOpTheAxisAndTheShapes) {
  Context& ctx = Context::current(Device::cpu());
  Tensor x = Tensor::zeros({2, 3, 4}, DType::kFloat32, Device::cpu());
  Tensor out = Tensor::zeros({8}, DType::kFloat32, Device::cpu());
  std::string m = message_of([&] { kernels::reduce_axis(ctx, ReduceOp::kSum, x, 3, out); });
  EXPECT_NE(m.find("reduce_axis(sum)"), std::string::npos) << m;
  EXPECT_NE(m.find("axis 3"), std::string::npos) << m;
  EXPECT_NE(m.find("[2, 3, 4]"), std::string::npos) << m;
  m = message_of([&] { kernels::reduce_axis(ctx, ReduceOp::kMax, x, -4, out); });
  EXPECT_NE(m.find("axis -4"), std::string::npos) << m;

  Tensor wrong = Tensor::zeros({7}, DType::kFloat32, Device::cpu());
  m = message_of([&] { kernels::reduce_axis(ctx, ReduceOp::kMean, x, 1, wrong); });
  EXPECT_NE(m.find("reduce_axis(mean)"), std::string::npos) << m;
  EXPECT_NE(m.find("[7]"), std::string::npos) << m;
  EXPECT_NE(m.find("[2, 3, 4]"), std::string::npos) << m;
  EXPECT_NE(m.find("axis 1"), std::string::npos) << m;

  m = message_of([&] { kernels::reduce_all(ctx, ReduceOp::kSum, x, out); });
  EXPECT_NE(m.find("one element"), std::string::npos) << m;
  m = message_of([&] { kernels::reduce_channels(ctx, ReduceOp::kSum, x, out); });
  EXPECT_NE(m.find("expected 3"), std::string::npos) << m;
  EXPECT_THROW(kernels::reduce_channels(ctx, ReduceOp::kSum, Tensor::zeros({5}), wrong), Error);

  Tensor ints = Tensor::zeros({2, 3, 4}, DType::kInt32, Device::cpu());
  m = message_of([&] { kernels::reduce_all(ctx, ReduceOp::kSum, ints, out); });
  EXPECT_NE(m.find("int32"), std::string::npos) << m;
  Tensor f64 = Tensor::zeros({8}, DType::kFloat64, Device::cpu());
  EXPECT_THROW(kernels::reduce_axis(ctx, ReduceOp::kSum, x, 1, f64), Error);  // dtype mismatch
  m = message_of([&] { kernels::argmax_axis(ctx, x, 1, out); });
  EXPECT_NE(m.find("int32"), std::string::npos) << m;

  Tensor scalar = Tensor::zeros({}, DType::kFloat32, Device::cpu());
  m = message_of([&] { kernels::reduce_axis(ctx, ReduceOp::kSum, scalar, 0, scalar); });
  EXPECT_NE(m.find("scalar"), std::string::npos) << m;

  Tensor src = Tensor::zeros({8}, DType::kFloat32, Device::cpu());
  Tensor bad = Tensor::from_vector<int32_t>(std::vector<int32_t>(8, 3), {8}, Device::cpu());
  m = message_of([&] { kernels::scatter_axis(ctx, src, bad, 1, x); });
  EXPECT_NE(m.find("index 3"), std::string::npos) << m;
  m = message_of([&] { kernels::broadcast_axis(ctx, wrong, 1, x); });
  EXPECT_NE(m.find("broadcast_axis"), std::string::npos) << m;
}

}  // namespace
}  // namespace cyclone
