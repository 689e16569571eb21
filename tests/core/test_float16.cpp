// float16 (IEEE binary16): every one of the 65536 bit patterns widens to the value the format
// defines (computed here with ldexp) and rounds back to itself; rounding to nearest even against a
// brute-force search over the sorted finite float16 values, for random floats across the whole
// range, ties, the overflow threshold and the subnormals; the special values; tensors of it (cast
// both ways, fill, item, printing, the 16-bit element through safetensors' name "F16"); and the
// device's cast giving the CPU's bits exactly.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "common/test_util.h"
#include "cyclone/core/float16.h"
#include "cyclone/kernels/elementwise.h"

namespace cyclone {
namespace {

using testing::DeviceTest;

uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
float f32_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// The value of a float16 pattern by the format's definition, in double.
double defined_value(uint16_t b) {
  const int sign = b >> 15, e = (b >> 10) & 0x1f, m = b & 0x3ff;
  double v;
  if (e == 0x1f)
    v = m ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  else if (e == 0)
    v = std::ldexp(m, -24);
  else
    v = std::ldexp(1024 + m, e - 25);
  return sign ? -v : v;
}

// The float16 bits nearest to finite f by search: the positive finite patterns 0..0x7bff are
// sorted by value; ties go to the even pattern; at or beyond 65520 (halfway from 65504 to the
// next power 65536) the result is inf, as IEEE rounding of an unbounded exponent would give.
uint16_t nearest_f16(float f) {
  static const std::vector<double> positive = [] {
    std::vector<double> v;
    for (uint32_t b = 0; b <= 0x7bff; ++b) v.push_back(defined_value(static_cast<uint16_t>(b)));
    return v;
  }();
  const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  const double x = std::fabs(static_cast<double>(f));
  if (x >= 65520.0) return sign | 0x7c00;
  if (x > positive.back()) return sign | 0x7bff;  // (65504, 65520): the largest finite
  const auto it = std::lower_bound(positive.begin(), positive.end(), x);
  const auto hi = static_cast<uint16_t>(it - positive.begin());
  if (*it == x || hi == 0) return sign | hi;
  const auto lo = static_cast<uint16_t>(hi - 1);
  const double dlo = x - positive[lo], dhi = positive[hi] - x;
  if (dlo < dhi) return sign | lo;
  if (dhi < dlo) return sign | hi;
  return sign | ((lo & 1) ? hi : lo);
}

TEST(Float16, EveryPatternWidensToItsDefinedValueAndRoundsBack) {
  for (uint32_t b = 0; b <= 0xffff; ++b) {
    const float16 h = float16::from_bits(static_cast<uint16_t>(b));
    const double want = defined_value(static_cast<uint16_t>(b));
    const float got = h;
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(got)) << std::hex << b;
      ASSERT_TRUE(std::isnan(static_cast<float>(float16(got)))) << std::hex << b;
      continue;
    }
    ASSERT_EQ(static_cast<double>(got), want) << std::hex << b;
    ASSERT_EQ(std::signbit(got), (b & 0x8000) != 0) << std::hex << b;
    ASSERT_EQ(float16(got).bits, b) << std::hex << b;
  }
}

TEST(Float16, RoundsToNearestEvenLikeABruteForceSearch) {
  std::vector<float> v;
  // Across every magnitude: uniform in log space from 2^-30 to 2^17, both signs.
  for (double r : testing::random_values(20000, 3, -30.0, 17.0)) {
    const float x = static_cast<float>(std::exp2(r));
    v.push_back(x);
    v.push_back(-x);
  }
  // Every tie between neighbours (and the points just beside it) in [2^-16, 65504].
  for (uint32_t b = 0x0100; b < 0x7bff; b += 37) {
    const double mid =
        (defined_value(static_cast<uint16_t>(b)) + defined_value(static_cast<uint16_t>(b + 1))) / 2;
    const auto m = static_cast<float>(mid);
    v.insert(v.end(), {m, std::nextafter(m, 0.0f), std::nextafter(m, 1e9f)});
  }
  v.insert(v.end(), {65504.0f, 65519.99f, 65520.0f, 65536.0f, 0x1p-24f, 0x1p-25f,
                     std::nextafter(0x1p-25f, 1.0f), 0x1.8p-25f, 0x1p-14f, 0x1.ffcp-15f});
  for (const float x : v) ASSERT_EQ(float16(x).bits, nearest_f16(x)) << x;
}

TEST(Float16, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(float16(inf).bits, 0x7c00);
  EXPECT_EQ(float16(-inf).bits, 0xfc00);
  EXPECT_EQ(float16(1e10f).bits, 0x7c00);   // overflow rounds to inf
  EXPECT_EQ(float16(-0.0f).bits, 0x8000);   // the sign of zero is kept
  EXPECT_EQ(float16(1e-10f).bits, 0x0000);  // below half the smallest subnormal: zero
  // NaN stays NaN even when its payload lies only in bits float16 drops.
  EXPECT_TRUE(std::isnan(static_cast<float>(float16(f32_of(0x7f800001u)))));
  EXPECT_TRUE(std::isnan(static_cast<float>(float16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_EQ(float16(65504.0f).bits, 0x7bff);  // the largest finite
  EXPECT_EQ(float16(1.0f).bits, 0x3c00);
  EXPECT_EQ(float16(1.0 / 3).bits, 0x3555);  // a double rounds through float
  EXPECT_EQ(f32_bits(float16::from_bits(0x0001)), f32_bits(0x1p-24f));
}

TEST(Float16, TensorsConvertFillPrintAndReadBack) {
  const Tensor f = Tensor::from_vector<float>({1.0f, -0.3f, 1e30f, 0.0f}, {4}, Device::cpu());
  const Tensor h = Tensor::empty({4}, DType::kFloat16, Device::cpu());
  kernels::cast(Context::of(f), f, h);
  const std::vector<float16> hh = h.to_vector<float16>();
  const std::vector<float> hf = f.to_vector<float>();
  for (size_t i = 0; i < hf.size(); ++i) EXPECT_EQ(hh[i].bits, float16(hf[i]).bits);
  EXPECT_EQ(h.slice(1, 2).item(), static_cast<double>(float16(-0.3f)));
  EXPECT_TRUE(std::isinf(h.slice(2, 3).item()));  // 1e30 is beyond float16's range
  EXPECT_NE(h.str().find("-0.300049"), std::string::npos) << h.str();  // -0.3 rounded to fp16
  EXPECT_EQ(dtype_name(DType::kFloat16), std::string("float16"));
  EXPECT_EQ(parse_dtype("half"), DType::kFloat16);
  EXPECT_EQ(math_dtype(DType::kFloat16), DType::kFloat32);
  kernels::fill(Context::of(h), h, 2.75);
  for (const float16 v : h.to_vector<float16>()) EXPECT_EQ(static_cast<float>(v), 2.75f);
}

class Float16CastTest : public DeviceTest {};

// The device's cast gives the CPU's bits exactly, for random values and the special ones.
TEST_P(Float16CastTest, MatchesTheCpuBitForBit) {
  std::vector<float> v = {0.0f,     -0.0f,    std::numeric_limits<float>::infinity(),
                          65520.0f, 65504.0f, std::numeric_limits<float>::quiet_NaN(),
                          0x1p-25f, 0x1p-24f, 0x1.8p-25f};
  for (double r : testing::random_values(4093, 7, -7e4, 7e4)) v.push_back(static_cast<float>(r));
  for (double r : testing::random_values(1000, 8, -1e-4, 1e-4)) v.push_back(static_cast<float>(r));
  const Shape shape{static_cast<int64_t>(v.size())};
  const Tensor f = Tensor::from_vector<float>(v, shape, device());
  const Tensor h = Tensor::empty(shape, DType::kFloat16, device());
  kernels::cast(Context::of(f), f, h);
  const Tensor back = Tensor::empty(shape, DType::kFloat32, device());
  kernels::cast(Context::of(h), h, back);
  const std::vector<float16> hh = h.to_vector<float16>();
  const std::vector<float> hback = back.to_vector<float>();
  for (size_t i = 0; i < v.size(); ++i) {
    ASSERT_EQ(hh[i].bits, float16(v[i]).bits) << "value " << v[i] << " at " << i;
    ASSERT_EQ(f32_bits(hback[i]), f32_bits(static_cast<float>(hh[i]))) << "at " << i;
  }
}

CYCLONE_INSTANTIATE_DEVICE_TEST(Float16CastTest);

}  // namespace
}  // namespace cyclone
