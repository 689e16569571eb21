// GEMM against naive double loops on every device: all four transpose combinations, odd sizes
// (1, 7, 31, 65: no multiple of any tile), alpha/beta, batches with shared operands, K = 0, NaN in
// C when beta == 0 (BLAS never reads C then), fp32 accuracy with TF32 off, CPU-vs-CUDA parity, and
// errors that name every shape.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "common/test_util.h"

namespace cyclone {
namespace {

using testing::DeviceTest;
using testing::nan_tensor;
using testing::random_tensor;
using testing::relative_error;
using testing::values;

struct Dims {
  int64_t m, n, k;
};
const Dims kOddDims[] = {{1, 1, 1},   {7, 31, 65}, {65, 7, 31},
                         {31, 65, 1}, {1, 65, 7},  {33, 17, 130}};

// The stored shape of an operand [rows, cols] of op(X), transposed when `trans`.
Shape stored(int64_t rows, int64_t cols, bool trans) {
  return trans ? Shape{cols, rows} : Shape{rows, cols};
}

// C = alpha op(A) op(B) + beta C in double, with A, B, C given as row-major host values; C is not
// read when beta == 0.
std::vector<double> naive_gemm(bool ta, bool tb, double alpha, const std::vector<double>& a,
                               const std::vector<double>& b, double beta,
                               const std::vector<double>& c, int64_t m, int64_t n, int64_t k) {
  std::vector<double> out(static_cast<size_t>(m * n));
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t p = 0; p < k; ++p) {
        const double av = ta ? a[p * m + i] : a[i * k + p];
        const double bv = tb ? b[j * k + p] : b[p * n + j];
        s += av * bv;
      }
      out[i * n + j] = alpha * s + (beta == 0 ? 0.0 : beta * c[i * n + j]);
    }
  return out;
}

double tolerance(DType dt) { return dt == DType::kFloat32 ? 1e-5 : 1e-12; }

// Runs f and expects a cyclone::Error whose message contains every one of `parts`.
using ::cyclone::testing::expect_error;

class GemmTest : public DeviceTest {};

TEST_P(GemmTest, AllTransposesOddSizesMatchNaive) {
  const Device d = device();
  uint64_t seed = 1;
  for (DType dt : {DType::kFloat32, DType::kFloat64})
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (const Dims& s : kOddDims) {
          const Tensor a = random_tensor(stored(s.m, s.k, ta), seed++, dt, d);
          const Tensor b = random_tensor(stored(s.k, s.n, tb), seed++, dt, d);
          const Tensor c = nan_tensor({s.m, s.n}, dt, d);  // beta == 0: must not be read
          kernels::gemm(Context::of(c), ta, tb, 1.0, a, b, 0.0, c);
          const auto ref = naive_gemm(ta, tb, 1.0, values(a), values(b), 0.0, {}, s.m, s.n, s.k);
          EXPECT_LT(relative_error(values(c), ref), tolerance(dt))
              << dtype_name(dt) << " ta " << ta << " tb " << tb << " m " << s.m << " n " << s.n
              << " k " << s.k;
        }
}

TEST_P(GemmTest, AlphaBetaScaleAndAccumulate) {
  const Device d = device();
  for (DType dt : {DType::kFloat32, DType::kFloat64})
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        const int64_t m = 31, n = 7, k = 65;
        const Tensor a = random_tensor(stored(m, k, ta), 10, dt, d);
        const Tensor b = random_tensor(stored(k, n, tb), 11, dt, d);
        const Tensor c = random_tensor({m, n}, 12, dt, d);
        const auto c0 = values(c);
        kernels::gemm(Context::of(c), ta, tb, 0.5, a, b, -1.5, c);
        const auto ref = naive_gemm(ta, tb, 0.5, values(a), values(b), -1.5, c0, m, n, k);
        EXPECT_LT(relative_error(values(c), ref), tolerance(dt))
            << dtype_name(dt) << " ta " << ta << " tb " << tb;
      }
}

TEST_P(GemmTest, EmptyInnerDimensionScalesC) {
  const Device d = device();
  const Tensor a = Tensor::empty({3, 0}, DType::kFloat32, d);
  const Tensor b = Tensor::empty({0, 4}, DType::kFloat32, d);
  const Tensor c = nan_tensor({3, 4}, DType::kFloat32, d);
  kernels::gemm(Context::of(c), false, false, 1.0, a, b, 0.0, c);
  for (double v : values(c)) EXPECT_EQ(v, 0.0);
  const Tensor c2 = random_tensor({3, 4}, 5, DType::kFloat32, d);
  const auto before = values(c2);
  kernels::gemm(Context::of(c2), false, false, 1.0, a, b, 2.0, c2);
  const auto after = values(c2);
  for (size_t i = 0; i < after.size(); ++i) EXPECT_FLOAT_EQ(after[i], 2.0 * before[i]);
}

// The batched cases: both operands batched, and either one shared (rank 2).
TEST_P(GemmTest, BatchedMatchesNaivePerEntry) {
  const Device d = device();
  const int64_t batch = 3, m = 7, n = 31, k = 65;
  uint64_t seed = 100;
  for (DType dt : {DType::kFloat32, DType::kFloat64})
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (int shared : {0, 1, 2})  // 0: none, 1: A shared, 2: B shared
          for (double beta : {0.0, 0.75}) {
            const Shape sa = stored(m, k, ta), sb = stored(k, n, tb);
            const Tensor a = shared == 1 ? random_tensor(sa, seed++, dt, d)
                                         : random_tensor({batch, sa[0], sa[1]}, seed++, dt, d);
            const Tensor b = shared == 2 ? random_tensor(sb, seed++, dt, d)
                                         : random_tensor({batch, sb[0], sb[1]}, seed++, dt, d);
            const Tensor c = beta == 0 ? nan_tensor({batch, m, n}, dt, d)
                                       : random_tensor({batch, m, n}, seed++, dt, d);
            const auto va = values(a), vb = values(b), vc = values(c);
            kernels::gemm_batched(Context::of(c), ta, tb, 1.25, a, b, beta, c);
            const auto out = values(c);
            for (int64_t i = 0; i < batch; ++i) {
              auto slice = [i](const std::vector<double>& v, int64_t size, bool is_shared) {
                const int64_t o = is_shared ? 0 : i * size;
                return std::vector<double>(v.begin() + o, v.begin() + o + size);
              };
              const auto ref = naive_gemm(
                  ta, tb, 1.25, slice(va, m * k, shared == 1), slice(vb, k * n, shared == 2), beta,
                  beta == 0 ? std::vector<double>{} : slice(vc, m * n, false), m, n, k);
              EXPECT_LT(relative_error(slice(out, m * n, false), ref), tolerance(dt))
                  << dtype_name(dt) << " ta " << ta << " tb " << tb << " shared " << shared
                  << " beta " << beta << " entry " << i;
            }
          }
}

// bfloat16: the operands are exact in the reference (it reads the rounded values), the sums are
// float32, and each result is rounded once: within half a bfloat16 ulp (2^-9 relative) plus the
// float32 accumulation error. Batched, transposed, alpha and beta (C read as bfloat16) included.
TEST_P(GemmTest, Bfloat16RoundsOnlyTheOperandsAndTheResult) {
  const Device d = device();
  // bfloat16 and float16 alike (float16's half ulp is 2^-11: the same bound holds).
  for (const DType bf : {DType::kBFloat16, DType::kFloat16}) {
    SCOPED_TRACE(dtype_name(bf));
    uint64_t seed = 900;
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (const Dims& s : kOddDims) {
          const Tensor a = random_tensor(stored(s.m, s.k, ta), seed++, bf, d);
          const Tensor b = random_tensor(stored(s.k, s.n, tb), seed++, bf, d);
          const Tensor c0 = random_tensor({s.m, s.n}, seed++, bf, d);
          const Tensor c = nan_tensor({s.m, s.n}, bf, d);
          kernels::cast(Context::of(c), c0, c);
          kernels::gemm(Context::of(c), ta, tb, 0.5, a, b, 2.0, c);
          const auto ref =
              naive_gemm(ta, tb, 0.5, values(a), values(b), 2.0, values(c0), s.m, s.n, s.k);
          EXPECT_TRUE(testing::all_close(values(c), ref, 0x1p-8, 1e-5))
              << "ta " << ta << " tb " << tb << " m " << s.m << " n " << s.n << " k " << s.k;
        }
    // Batched, with B shared by every entry.
    const Tensor a = random_tensor({3, 17, 40}, 5, bf, d);
    const Tensor b = random_tensor({40, 9}, 6, bf, d);
    const Tensor c = nan_tensor({3, 17, 9}, bf, d);
    kernels::gemm_batched(Context::of(c), false, false, 1.0, a, b, 0.0, c);
    const auto va = values(a), vb = values(b), vc = values(c);
    for (int64_t i = 0; i < 3; ++i) {
      const std::vector<double> ai(va.begin() + i * 17 * 40, va.begin() + (i + 1) * 17 * 40);
      const std::vector<double> ci(vc.begin() + i * 17 * 9, vc.begin() + (i + 1) * 17 * 9);
      EXPECT_TRUE(testing::all_close(ci, naive_gemm(false, false, 1.0, ai, vb, 0.0, {}, 17, 9, 40),
                                     0x1p-8, 1e-5))
          << "batch entry " << i;
    }
    expect_error(
        [&] {
          kernels::gemm(Context::of(c), false, false, 1.0, a.slice(0, 1).reshape({17, 40}), b, 0.0,
                        random_tensor({17, 9}, 7, DType::kFloat32, d));
        },
        {"gemm", "dtypes differ", dtype_name(bf), "float32"});
  }
}

// TF32 (10-bit mantissa) would give relative errors near 1e-3 at this depth; the default must not
// use it.
TEST_P(GemmTest, Float32IsFp32AccurateByDefault) {
  const Device d = device();
  const Tensor a = random_tensor({96, 1024}, 7, DType::kFloat32, d);
  const Tensor b = random_tensor({1024, 80}, 8, DType::kFloat32, d);
  const Tensor c = nan_tensor({96, 80}, DType::kFloat32, d);
  Context& ctx = Context::of(c);
  ASSERT_FALSE(ctx.allow_tf32());
  kernels::gemm(ctx, false, false, 1.0, a, b, 0.0, c);
  const auto ref = naive_gemm(false, false, 1.0, values(a), values(b), 0.0, {}, 96, 80, 1024);
  EXPECT_LT(relative_error(values(c), ref), 1e-5);
}

TEST_P(GemmTest, ShapeErrorsNameEveryShape) {
  const Device d = device();
  const Tensor a = random_tensor({2, 3}, 1, DType::kFloat32, d);
  const Tensor b = random_tensor({4, 5}, 2, DType::kFloat32, d);
  const Tensor c = Tensor::empty({2, 5}, DType::kFloat32, d);
  Context& ctx = Context::of(c);
  expect_error([&] { kernels::gemm(ctx, false, false, 1, a, b, 0, c); },
               {"gemm", "inner dimensions differ", "[2, 3]", "[4, 5]"});
  const Tensor b2 = random_tensor({3, 5}, 3, DType::kFloat32, d);
  const Tensor c_bad = Tensor::empty({5, 2}, DType::kFloat32, d);
  expect_error([&] { kernels::gemm(ctx, false, false, 1, a, b2, 0, c_bad); },
               {"gemm", "[5, 2]", "[2, 3]", "[3, 5]"});
  const Tensor b64 = random_tensor({3, 5}, 3, DType::kFloat64, d);
  expect_error([&] { kernels::gemm(ctx, false, false, 1, a, b64, 0, c); },
               {"gemm", "float32", "float64"});
  const Tensor a3 = random_tensor({2, 2, 3}, 4, DType::kFloat32, d);
  const Tensor b3 = random_tensor({3, 3, 5}, 5, DType::kFloat32, d);
  const Tensor c3 = Tensor::empty({2, 2, 5}, DType::kFloat32, d);
  expect_error([&] { kernels::gemm_batched(ctx, false, false, 1, a3, b3, 0, c3); },
               {"gemm_batched", "batch", "[2, 2, 3]", "[3, 3, 5]", "[2, 2, 5]"});
  expect_error([&] { kernels::gemm(ctx, false, false, 1, a3, b2, 0, c3); },
               {"gemm", "2-D", "[2, 2, 3]"});
}

CYCLONE_INSTANTIATE_DEVICE_TEST(GemmTest);

// ---- CUDA only ----

TEST(GemmCuda, MatchesCpuOnRandomInputs) {
  CYCLONE_SKIP_IF_UNAVAILABLE(Device::cuda());
  for (DType dt : {DType::kFloat32, DType::kFloat64})
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        const int64_t m = 129, n = 65, k = 257;
        const Tensor a = random_tensor(stored(m, k, ta), 21, dt);
        const Tensor b = random_tensor(stored(k, n, tb), 22, dt);
        const Tensor c = random_tensor({m, n}, 23, dt);
        const Tensor ca = a.to(Device::cuda()), cb = b.to(Device::cuda()),
                     cc = c.to(Device::cuda());
        kernels::gemm(Context::of(c), ta, tb, 0.75, a, b, 0.5, c);
        kernels::gemm(Context::of(cc), ta, tb, 0.75, ca, cb, 0.5, cc);
        EXPECT_LT(relative_error(values(cc), values(c)), tolerance(dt))
            << dtype_name(dt) << " ta " << ta << " tb " << tb;
      }
}

// bfloat16 and float16 on cuBLAS's tensor cores against the CPU's widened float32: each result
// rounded once on both sides, so they differ by at most one ulp per element.
TEST(GemmCuda, Bfloat16MatchesCpu) {
  CYCLONE_SKIP_IF_UNAVAILABLE(Device::cuda());
  for (const DType dt : {DType::kBFloat16, DType::kFloat16}) {
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        const int64_t m = 129, n = 65, k = 257;
        const Tensor a = random_tensor(stored(m, k, ta), 41, dt);
        const Tensor b = random_tensor(stored(k, n, tb), 42, dt);
        const Tensor c = random_tensor({m, n}, 43, dt);
        const Tensor ca = a.to(Device::cuda()), cb = b.to(Device::cuda()),
                     cc = c.to(Device::cuda());
        kernels::gemm(Context::of(c), ta, tb, 0.75, a, b, 0.5, c);
        kernels::gemm(Context::of(cc), ta, tb, 0.75, ca, cb, 0.5, cc);
        EXPECT_TRUE(testing::all_close(values(cc), values(c), 0x1p-7, 1e-4))
            << dtype_name(dt) << " ta " << ta << " tb " << tb;
      }
  }
}

// With TF32 allowed the result is still close (tensor cores round inputs to 10-bit mantissas),
// and switching it back off restores fp32 accuracy.
TEST(GemmCuda, Tf32IsOptIn) {
  CYCLONE_SKIP_IF_UNAVAILABLE(Device::cuda());
  const Tensor a = random_tensor({128, 512}, 31, DType::kFloat32, Device::cuda());
  const Tensor b = random_tensor({512, 64}, 32, DType::kFloat32, Device::cuda());
  const Tensor c = nan_tensor({128, 64}, DType::kFloat32, Device::cuda());
  Context& ctx = Context::of(c);
  const auto ref = naive_gemm(false, false, 1.0, values(a), values(b), 0.0, {}, 128, 64, 512);
  ctx.set_allow_tf32(true);
  kernels::gemm(ctx, false, false, 1.0, a, b, 0.0, c);
  ctx.set_allow_tf32(false);
  EXPECT_LT(relative_error(values(c), ref), 1e-2);
  kernels::gemm(ctx, false, false, 1.0, a, b, 0.0, c);
  EXPECT_LT(relative_error(values(c), ref), 1e-5);
}

}  // namespace
}  // namespace cyclone
