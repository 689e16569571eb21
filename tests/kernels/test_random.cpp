// Random fills: CPU vs CUDA bit-identical parity (device-typed; the CUDA instance skips without a
// GPU), the CPU fill against a reference built in this file from philox4x32 itself, Generator
// bookkeeping, and argument checks.
#include "cyclone/kernels/random.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numbers>
#include <vector>

#include "common/test_util.h"
#include "cyclone/core/generator.h"
#include "cyclone/core/philox.h"

namespace cyclone {
namespace {

using testing::nan_tensor;

enum class Dist { kUniform, kNormal, kBernoulli };
const char* dist_name(Dist d) {
  return d == Dist::kUniform ? "uniform_" : d == Dist::kNormal ? "normal_" : "bernoulli_";
}

// Parameters chosen so that lo/hi/mean/std are not representable trivially (rounding paths run).
void fill(Dist dist, Context& ctx, const Tensor& t, uint64_t seed, uint64_t offset) {
  switch (dist) {
    case Dist::kUniform:
      kernels::uniform_(ctx, t, -0.3, 1.7, seed, offset);
      break;
    case Dist::kNormal:
      kernels::normal_(ctx, t, 0.25, 1.5, seed, offset);
      break;
    case Dist::kBernoulli:
      kernels::bernoulli_(ctx, t, 0.3, seed, offset);
      break;
  }
}

// Exact bitwise comparison of two tensors' host copies; reports the first differing element.
::testing::AssertionResult bit_identical(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.numel() != b.numel())
    return ::testing::AssertionFailure() << "dtype or size differ";
  const size_t es = dtype_size(a.dtype());
  std::vector<unsigned char> x(a.nbytes()), y(b.nbytes());
  a.copy_to_host(x.data());
  b.copy_to_host(y.data());
  for (int64_t i = 0; i < a.numel(); ++i) {
    if (std::memcmp(x.data() + i * es, y.data() + i * es, es) != 0) {
      const auto va = testing::values(a), vb = testing::values(b);
      return ::testing::AssertionFailure()
             << "element " << i << " of " << a.numel() << ": " << va[i] << " vs " << vb[i];
    }
  }
  return ::testing::AssertionSuccess();
}

const int64_t kSizes[] = {1, 3, 31, 1025, 100003};
// 0xfffffffe straddles the counter's low/high word boundary within a fill.
const uint64_t kOffsets[] = {0, 7, 0xfffffffeull};

class RandomDeviceTest : public testing::DeviceTest {};

// The device's fill equals the CPU's bit for bit, for every size, offset, dtype and distribution,
// into an output pre-filled with NaN (an unwritten element fails), aligned or not.
TEST_P(RandomDeviceTest, MatchesCpuBitForBit) {
  Context& dctx = Context::current(device());
  Context& cctx = Context::current(Device::cpu());
  for (Dist dist : {Dist::kUniform, Dist::kNormal, Dist::kBernoulli}) {
    for (DType dtype : {DType::kFloat32, DType::kFloat64}) {
      for (int64_t n : kSizes) {
        for (uint64_t offset : kOffsets) {
          SCOPED_TRACE(::testing::Message() << dist_name(dist) << " " << dtype_name(dtype)
                                            << " n=" << n << " offset=" << offset);
          const uint64_t seed = 0x5eed0000ull + static_cast<uint64_t>(n);
          Tensor ref = nan_tensor(Shape({n}), dtype, Device::cpu());
          fill(dist, cctx, ref, seed, offset);
          Tensor got = nan_tensor(Shape({n}), dtype, device());
          fill(dist, dctx, got, seed, offset);
          ASSERT_TRUE(bit_identical(got, ref));
          // Starting one element into a buffer: not 16-byte aligned (the scalar-store path).
          Tensor base = nan_tensor(Shape({n + 1}), dtype, device());
          Tensor shifted = base.slice(1, n + 1);
          fill(dist, dctx, shifted, seed, offset);
          ASSERT_TRUE(bit_identical(shifted, ref));
          EXPECT_TRUE(std::isnan(testing::values(base)[0])) << "wrote before the output";
        }
      }
    }
  }
}

// Generator overloads reserve ceil(n / V) counters, and consecutive fills continue the stream.
TEST_P(RandomDeviceTest, GeneratorFillsContinueTheStream) {
  Context& ctx = Context::current(device());
  for (DType dtype : {DType::kFloat32, DType::kFloat64}) {
    const uint64_t per = dtype == DType::kFloat32 ? 4 : 2;
    Generator gen(31337);
    gen.reserve(5);
    Tensor a = nan_tensor(Shape({7}), dtype, device());
    Tensor b = nan_tensor(Shape({9}), dtype, device());
    kernels::normal_(ctx, a, 0.0, 1.0, gen);
    EXPECT_EQ(gen.offset(), 5 + (7 + per - 1) / per);
    kernels::uniform_(ctx, b, 0.0, 1.0, gen);
    EXPECT_EQ(gen.offset(), 5 + (7 + per - 1) / per + (9 + per - 1) / per);
    EXPECT_EQ(kernels::random_counters(7, dtype), (7 + per - 1) / per);

    Tensor a_ref = nan_tensor(Shape({7}), dtype, device());
    Tensor b_ref = nan_tensor(Shape({9}), dtype, device());
    kernels::normal_(ctx, a_ref, 0.0, 1.0, 31337, 5);
    kernels::uniform_(ctx, b_ref, 0.0, 1.0, 31337, 5 + (7 + per - 1) / per);
    EXPECT_TRUE(bit_identical(a, a_ref));
    EXPECT_TRUE(bit_identical(b, b_ref));
  }
}

TEST_P(RandomDeviceTest, BernoulliIsAMaskWithMeanP) {
  Context& ctx = Context::current(device());
  Tensor m = nan_tensor(Shape({100000}), DType::kFloat32, device());
  kernels::bernoulli_(ctx, m, 0.3, 77, 0);
  const auto v = testing::values(m);
  double sum = 0;
  for (double x : v) {
    ASSERT_TRUE(x == 0.0 || x == 1.0) << x;
    sum += x;
  }
  EXPECT_NEAR(sum / v.size(), 0.3, 5 * std::sqrt(0.3 * 0.7 / v.size()));
  kernels::bernoulli_(ctx, m, 0.0, 77, 0);
  for (double x : testing::values(m)) ASSERT_EQ(x, 0.0);
  kernels::bernoulli_(ctx, m, 1.0, 77, 0);
  for (double x : testing::values(m)) ASSERT_EQ(x, 1.0);
}

TEST_P(RandomDeviceTest, EmptyOutputIsANoOp) {
  Context& ctx = Context::current(device());
  Generator gen(1);
  Tensor e = Tensor::empty(Shape({0}), DType::kFloat32, device());
  kernels::uniform_(ctx, e, 0.0, 1.0, gen);
  kernels::normal_(ctx, e, 0.0, 1.0, gen);
  EXPECT_EQ(gen.offset(), 0u);
}

CYCLONE_INSTANTIATE_DEVICE_TEST(RandomDeviceTest);

// ---------------------------------------------------------------- CPU against the definition

// The value of element i of a fill, built from philox4x32 and the conversions directly (not from
// the per-counter helpers the kernels use), so a wrong mapping shows here.
template <class T>
T reference_uniform(uint64_t seed, uint64_t offset, int64_t i, double lo, double hi) {
  constexpr int kV = philox::kValuesPerCounter<T>;
  const uint64_t c = offset + static_cast<uint64_t>(i / kV);
  const uint32_t ctr[4] = {static_cast<uint32_t>(c), static_cast<uint32_t>(c >> 32), 0, 0};
  const uint32_t key[2] = {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)};
  const philox::Block b = philox::philox4x32(ctr, key);
  const int j = static_cast<int>(i % kV);
  T u;
  if constexpr (sizeof(T) == 4) {
    u = philox::uniform_float(b.v[j]);
  } else {
    u = philox::uniform_double(b.v[2 * j], b.v[2 * j + 1]);
  }
  return std::fma(static_cast<T>(hi - lo), u, static_cast<T>(lo));
}

// Box-Muller with libm, for a tolerance check of the hand-made log/sin/cos.
template <class T>
double reference_normal(uint64_t seed, uint64_t offset, int64_t i, double mean, double std) {
  constexpr int kV = philox::kValuesPerCounter<T>;
  const philox::Block b = philox::block(seed, offset + static_cast<uint64_t>(i / kV));
  const int j = static_cast<int>(i % kV);
  double u1, u2;
  bool cosine;
  if constexpr (sizeof(T) == 4) {
    const int pair = j / 2;
    u1 = philox::uniform_float_open0(b.v[2 * pair]);
    u2 = philox::uniform_float(b.v[2 * pair + 1]);
    cosine = j % 2 == 0;
  } else {
    u1 = philox::uniform_double_open0(b.v[0], b.v[1]);
    u2 = philox::uniform_double(b.v[2], b.v[3]);
    cosine = j == 0;
  }
  const double r = std::sqrt(-2 * std::log(u1)), a = 2 * std::numbers::pi * u2;
  return mean + std * r * (cosine ? std::cos(a) : std::sin(a));
}

template <class T>
class RandomCpuTyped : public ::testing::Test {};
using FloatTypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(RandomCpuTyped, FloatTypes);

TYPED_TEST(RandomCpuTyped, UniformEqualsTheDefinition) {
  using T = TypeParam;
  Context& ctx = Context::current(Device::cpu());
  for (int64_t n : kSizes) {
    for (uint64_t offset : kOffsets) {
      Tensor t = nan_tensor(Shape({n}), dtype_of<T>, Device::cpu());
      kernels::uniform_(ctx, t, -0.3, 1.7, 1234, offset);
      const auto v = t.to_vector<T>();
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_EQ(v[i], (reference_uniform<T>(1234, offset, i, -0.3, 1.7)))
            << "n=" << n << " offset=" << offset << " i=" << i;
        ASSERT_TRUE(v[i] >= static_cast<T>(-0.3) && v[i] <= static_cast<T>(1.7));
      }
    }
  }
}

TYPED_TEST(RandomCpuTyped, NormalMatchesLibmBoxMuller) {
  using T = TypeParam;
  Context& ctx = Context::current(Device::cpu());
  // float: the float-precision log/sincos are accurate to a few ulp of float; double: of double.
  const double tol = sizeof(T) == 4 ? 2e-6 : 1e-14;
  for (int64_t n : kSizes) {
    for (uint64_t offset : kOffsets) {
      Tensor t = nan_tensor(Shape({n}), dtype_of<T>, Device::cpu());
      kernels::normal_(ctx, t, 0.25, 1.5, 99, offset);
      const auto v = t.to_vector<T>();
      for (int64_t i = 0; i < n; ++i) {
        const double ref = reference_normal<T>(99, offset, i, 0.25, 1.5);
        ASSERT_NEAR(v[i], ref, tol * (1 + std::fabs(ref)))
            << "n=" << n << " offset=" << offset << " i=" << i;
      }
    }
  }
}

TEST(RandomCpu, NormalMomentsThroughTheKernel) {
  Context& ctx = Context::current(Device::cpu());
  Tensor t = Tensor::empty(Shape({100000}), DType::kFloat32, Device::cpu());
  kernels::normal_(ctx, t, 2.0, 3.0, 5, 0);
  const auto v = testing::values(t);
  double mean = 0, var = 0;
  for (double x : v) mean += x;
  mean /= v.size();
  for (double x : v) var += (x - mean) * (x - mean);
  var /= v.size();
  EXPECT_NEAR(mean, 2.0, 5 * 3.0 / std::sqrt(1e5));
  EXPECT_NEAR(var, 9.0, 5 * 9.0 * std::sqrt(2 / 1e5));
}

TEST(RandomCpu, RejectsBadArgumentsWithoutAdvancingTheGenerator) {
  Context& ctx = Context::current(Device::cpu());
  Generator gen(3);
  Tensor f = Tensor::empty(Shape({4}), DType::kFloat32, Device::cpu());
  Tensor i = Tensor::empty(Shape({4}), DType::kInt32, Device::cpu());
  EXPECT_THROW(kernels::uniform_(ctx, f, 1.0, 0.0, gen), Error);
  EXPECT_THROW(kernels::uniform_(ctx, f, 0.0, INFINITY, gen), Error);
  EXPECT_THROW(kernels::normal_(ctx, f, 0.0, -1.0, gen), Error);
  EXPECT_THROW(kernels::normal_(ctx, f, NAN, 1.0, gen), Error);
  EXPECT_THROW(kernels::bernoulli_(ctx, f, 1.5, gen), Error);
  EXPECT_THROW(kernels::uniform_(ctx, i, 0.0, 1.0, gen), Error);
  EXPECT_THROW(kernels::uniform_(ctx, Tensor(), 0.0, 1.0, gen), Error);
  EXPECT_EQ(gen.offset(), 0u);
}

}  // namespace
}  // namespace cyclone
