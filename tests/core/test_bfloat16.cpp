// bfloat16: rounding to nearest even against a brute-force search over the two neighbouring
// bfloat16 values, the special values (inf, NaN whatever its payload, overflow, signed zero,
// subnormals), and tensors of it: cast both ways, fill, item, printing, and the CUDA cast giving
// the CPU's bits exactly.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "common/test_util.h"
#include "cyclone/core/bfloat16.h"
#include "cyclone/kernels/elementwise.h"

namespace cyclone {
namespace {

using testing::DeviceTest;

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// The bfloat16 bits nearest to finite f, ties to the even pattern, by comparing f with its two
// neighbours in double (exact for these values): the truncation and the next pattern up in
// magnitude. Beyond the largest finite bfloat16 the next pattern up is inf, which IEEE rounding
// picks when f is at least halfway to 2^128.
uint16_t nearest_bf16(float f) {
  const uint16_t lo = static_cast<uint16_t>(bits_of(f) >> 16);
  const uint16_t hi = static_cast<uint16_t>(lo + 1);
  const double x = std::fabs(static_cast<double>(f));
  const double vlo = std::fabs(static_cast<double>(float_of(uint32_t{lo} << 16)));
  double vhi = std::fabs(static_cast<double>(float_of(uint32_t{hi} << 16)));
  if ((hi & 0x7fff) == 0x7f80) vhi = std::ldexp(1.0, 128);  // inf: the rounding threshold's end
  const double dlo = x - vlo, dhi = vhi - x;
  if (dlo < dhi) return lo;
  if (dhi < dlo) return hi;
  return (lo & 1) ? hi : lo;
}

TEST(BFloat16, RoundsToNearestEvenLikeABruteForceSearch) {
  // Random bit patterns over every exponent (subnormals and the overflow range included), plus
  // the exact halfway points of random bfloat16 neighbours, where ties to even decides.
  uint64_t x = 12345;
  auto next = [&] {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<uint32_t>(x >> 32);
  };
  int checked = 0;
  for (int i = 0; i < 200000; ++i) {
    uint32_t u = next();
    if (i % 2) u = (u & 0xffff0000u) | 0x8000u;  // a tie
    const float f = float_of(u);
    if (std::isnan(f) || std::isinf(f)) continue;
    ASSERT_EQ(bfloat16(f).bits, nearest_bf16(f)) << std::hex << "input bits 0x" << u;
    ++checked;
  }
  EXPECT_GT(checked, 190000);
}

TEST(BFloat16, ExactValuesAndTiesToEven) {
  for (float v : {0.0f, 1.0f, -2.5f, 0.15625f, 65536.0f, -3.0e-3f})
    if (float_of(bits_of(v) & 0xffff0000u) == v) {
      EXPECT_EQ(static_cast<float>(bfloat16(v)), v);
    }
  // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to the even pattern, 1.
  EXPECT_EQ(static_cast<float>(bfloat16(1.0f + 0x1p-8f)), 1.0f);
  // 1 + 3 * 2^-8 lies halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even).
  EXPECT_EQ(static_cast<float>(bfloat16(1.0f + 3 * 0x1p-8f)), 1.0f + 0x1p-6f);
  // Just above halfway rounds up.
  EXPECT_EQ(static_cast<float>(bfloat16(1.0f + 0x1p-8f + 0x1p-20f)), 1.0f + 0x1p-7f);
  // A double is rounded to float first.
  EXPECT_EQ(static_cast<float>(bfloat16(0.1)), static_cast<float>(bfloat16(0.1f)));
}

TEST(BFloat16, SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(static_cast<float>(bfloat16(inf)), inf);
  EXPECT_EQ(static_cast<float>(bfloat16(-inf)), -inf);
  // NaN stays NaN, even one whose payload lives only in the bits that are cut (truncation alone
  // would make it inf), and keeps its sign.
  for (uint32_t u : {0x7fc00000u, 0x7f800001u, 0xff800001u, 0x7fffffffu}) {
    const bfloat16 b(float_of(u));
    EXPECT_TRUE(std::isnan(static_cast<float>(b))) << std::hex << u;
    EXPECT_EQ(b.bits & 0x8000u, (u >> 16) & 0x8000u) << std::hex << u;
  }
  // The largest finite bfloat16 (0x7f7f) stays; FLT_MAX is past halfway to 2^128: inf.
  EXPECT_EQ(bfloat16(float_of(0x7f7f0000u)).bits, 0x7f7f);
  EXPECT_EQ(static_cast<float>(bfloat16(std::numeric_limits<float>::max())), inf);
  // Signed zero and subnormals (no flush to zero).
  EXPECT_EQ(bfloat16(-0.0f).bits, 0x8000);
  const float sub = float_of(0x00010000u);  // the smallest subnormal bfloat16, 2^-133
  EXPECT_EQ(static_cast<float>(bfloat16(sub)), sub);
  EXPECT_EQ(bfloat16(float_of(0x00008001u)).bits, 0x0001);  // just above half of it: rounds up
}

TEST(BFloat16, TensorsConvertFillPrintAndReadBack) {
  const Tensor f = Tensor::from_vector<float>({1.0f, -0.3f, 1e30f, 0.0f}, {4}, Device::cpu());
  const Tensor b = Tensor::empty({4}, DType::kBFloat16, Device::cpu());
  kernels::cast(Context::of(f), f, b);
  const std::vector<bfloat16> hb = b.to_vector<bfloat16>();
  const std::vector<float> hf = f.to_vector<float>();
  for (size_t i = 0; i < hf.size(); ++i) EXPECT_EQ(hb[i].bits, bfloat16(hf[i]).bits);
  EXPECT_EQ(b.slice(1, 2).item(), static_cast<double>(bfloat16(-0.3f)));
  EXPECT_NE(b.str().find("-0.300781"), std::string::npos) << b.str();  // -0.3 rounded to bf16
  // float32 -> bfloat16 -> uint8 saturates through float (no undefined behaviour).
  const Tensor u = Tensor::empty({4}, DType::kUInt8, Device::cpu());
  kernels::cast(Context::of(b), b, u);
  EXPECT_EQ(u.to_vector<uint8_t>(), (std::vector<uint8_t>{1, 0, 255, 0}));
  kernels::fill(Context::of(b), b, 2.75);
  for (const bfloat16 v : b.to_vector<bfloat16>()) EXPECT_EQ(static_cast<float>(v), 2.75f);
}

class BFloat16CastTest : public DeviceTest {};

// The device's cast gives the CPU's bits exactly, for random values and the special ones.
TEST_P(BFloat16CastTest, MatchesTheCpuBitForBit) {
  std::vector<float> v = {0.0f,
                          -0.0f,
                          std::numeric_limits<float>::infinity(),
                          std::numeric_limits<float>::max(),
                          std::numeric_limits<float>::quiet_NaN(),
                          float_of(0x7f800001u),
                          float_of(0x00008001u),
                          1.0f + 0x1p-8f,
                          1.0f + 3 * 0x1p-8f};
  for (double r : testing::random_values(4093, 7, -1e4, 1e4)) v.push_back(static_cast<float>(r));
  const Shape shape{static_cast<int64_t>(v.size())};
  const Tensor f = Tensor::from_vector<float>(v, shape, device());
  const Tensor b = Tensor::empty(shape, DType::kBFloat16, device());
  kernels::cast(Context::of(f), f, b);
  const Tensor back = Tensor::empty(shape, DType::kFloat32, device());
  kernels::cast(Context::of(b), b, back);
  const std::vector<bfloat16> hb = b.to_vector<bfloat16>();
  const std::vector<float> hback = back.to_vector<float>();
  for (size_t i = 0; i < v.size(); ++i) {
    ASSERT_EQ(hb[i].bits, bfloat16(v[i]).bits) << "value " << v[i] << " at " << i;
    ASSERT_EQ(bits_of(hback[i]), uint32_t{hb[i].bits} << 16) << "at " << i;
  }
}

CYCLONE_INSTANTIATE_DEVICE_TEST(BFloat16CastTest);

}  // namespace
}  // namespace cyclone
