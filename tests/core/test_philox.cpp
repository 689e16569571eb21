// Philox4x32-10 against Random123's published known answers, the word -> number conversions, the
// hand-made log/sincos against libm, sample moments, and the Generator's offset arithmetic.
#include "cyclone/core/philox.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <numbers>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "cyclone/core/error.h"
#include "cyclone/core/generator.h"

namespace cyclone {
namespace {

using philox::Block;

void expect_block(const Block& b, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3) {
  EXPECT_EQ(b.v[0], a0);
  EXPECT_EQ(b.v[1], a1);
  EXPECT_EQ(b.v[2], a2);
  EXPECT_EQ(b.v[3], a3);
}

// Random123 tests/kat_vectors, philox4x32_10 lines (counter words, key words, expected output).
TEST(Philox, Random123KnownAnswers) {
  const uint32_t zero_ctr[4] = {0, 0, 0, 0}, zero_key[2] = {0, 0};
  expect_block(philox::philox4x32(zero_ctr, zero_key), 0x6627e8d5, 0xe169c58d, 0xbc57ac4c,
               0x9b00dbd8);
  const uint32_t ones_ctr[4] = {~0u, ~0u, ~0u, ~0u}, ones_key[2] = {~0u, ~0u};
  expect_block(philox::philox4x32(ones_ctr, ones_key), 0x408f276d, 0x41c83b0e, 0xa20bc7c6,
               0x6d5451fd);
  const uint32_t pi_ctr[4] = {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344};
  const uint32_t pi_key[2] = {0xa4093822, 0x299f31d0};
  expect_block(philox::philox4x32(pi_ctr, pi_key), 0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1);
}

// The documented mapping: key = seed (low word first), counter = (c low, c high, 0, 0).
TEST(Philox, StreamMappingPacksSeedAndCounter) {
  const uint64_t seed = 0x0123456789abcdefull, c = 0xfedcba9876543210ull;
  const uint32_t ctr[4] = {0x76543210u, 0xfedcba98u, 0u, 0u};
  const uint32_t key[2] = {0x89abcdefu, 0x01234567u};
  const Block want = philox::philox4x32(ctr, key), got = philox::block(seed, c);
  for (int j = 0; j < 4; ++j) EXPECT_EQ(got.v[j], want.v[j]);
  EXPECT_EQ(philox::kValuesPerCounter<float>, 4);
  EXPECT_EQ(philox::kValuesPerCounter<double>, 2);
}

TEST(Philox, UniformConversionsHitTheirEndpoints) {
  EXPECT_EQ(philox::uniform_float(0u), 0.0f);
  EXPECT_EQ(philox::uniform_float(0xffffffffu), 1.0f - 0x1p-24f);  // never 1
  EXPECT_EQ(philox::uniform_float(0x000000ffu), 0.0f);             // low 8 bits dropped
  EXPECT_EQ(philox::uniform_float_open0(0u), 0x1p-24f);            // never 0
  EXPECT_EQ(philox::uniform_float_open0(0xffffffffu), 1.0f);
  EXPECT_EQ(philox::uniform_double(0u, 0u), 0.0);
  EXPECT_EQ(philox::uniform_double(~0u, ~0u), 1.0 - 0x1p-53);
  EXPECT_EQ(philox::uniform_double(0u, 1u << 11), 0x1p-53);  // b's top 21 bits are the low bits
  EXPECT_EQ(philox::uniform_double(1u, 0u), 0x1p-32);        // a is the high 32 bits
  EXPECT_EQ(philox::uniform_double_open0(0u, 0u), 0x1p-53);
  EXPECT_EQ(philox::uniform_double_open0(~0u, ~0u), 1.0);
}

// The log and sincos that make normals reproducible must also be accurate: a few ulp.
TEST(Philox, LogMatchesLibm) {
  double worst_f = 0, worst_d = 0;
  for (uint32_t k = 1; k <= (1u << 24); k += 97) {
    const float u = static_cast<float>(k) * 0x1p-24f;
    const double ref = std::log(static_cast<double>(u));
    if (ref != 0) worst_f = std::max(worst_f, std::fabs(philox::log_pos(u) - ref) / std::fabs(ref));
  }
  uint64_t x = 12345;
  for (int i = 0; i < 200000; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    const double u = static_cast<double>((x >> 11) + 1) * 0x1p-53;
    const long double ref = std::log(static_cast<long double>(u));
    if (ref != 0)
      worst_d = std::max(worst_d,
                         static_cast<double>(std::fabs(philox::log_pos(u) - ref) / std::fabs(ref)));
  }
  EXPECT_LT(worst_f, 4 * 0x1p-24);
  EXPECT_LT(worst_d, 4 * 0x1p-53);
}

TEST(Philox, SinCosOfATurnMatchLibm) {
  double worst_f = 0, worst_d = 0;
  for (uint32_t k = 0; k < (1u << 24); k += 61) {
    float s, c;
    philox::sincos_turn<float, 24>(k, &s, &c);
    const double a = 2 * std::numbers::pi * static_cast<double>(k) * 0x1p-24;
    worst_f = std::max({worst_f, std::fabs(s - std::sin(a)), std::fabs(c - std::cos(a))});
  }
  uint64_t x = 777;
  for (int i = 0; i < 200000; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    const uint64_t k = x >> 11;
    double s, c;
    philox::sincos_turn<double, 53>(k, &s, &c);
    const long double a =
        2 * 3.141592653589793238462643383279502884L * static_cast<long double>(k) * 0x1p-53L;
    worst_d = std::max({worst_d, static_cast<double>(std::fabs(s - std::sin(a))),
                        static_cast<double>(std::fabs(c - std::cos(a)))});
  }
  EXPECT_LT(worst_f, 2 * 0x1p-24);  // absolute error on values of magnitude <= 1
  EXPECT_LT(worst_d, 2 * 0x1p-53);
}

template <class T>
std::vector<T> uniform_stream(uint64_t seed, uint64_t offset, int64_t n) {
  constexpr int kV = philox::kValuesPerCounter<T>;
  std::vector<T> out(static_cast<size_t>(n));
  T v[kV];
  for (int64_t i = 0; i < n; ++i) {
    if (i % kV == 0) philox::uniform_values<T>(seed, offset + i / kV, v);
    out[i] = v[i % kV];
  }
  return out;
}

template <class T>
std::vector<T> normal_stream(uint64_t seed, uint64_t offset, int64_t n) {
  constexpr int kV = philox::kValuesPerCounter<T>;
  std::vector<T> out(static_cast<size_t>(n));
  T v[kV];
  for (int64_t i = 0; i < n; ++i) {
    if (i % kV == 0) philox::normal_values<T>(seed, offset + i / kV, v);
    out[i] = v[i % kV];
  }
  return out;
}

struct Moments {
  double mean = 0, var = 0, skew = 0, kurt = 0;
};
template <class T>
Moments moments(const std::vector<T>& v) {
  Moments m;
  for (T x : v) m.mean += x;
  m.mean /= v.size();
  for (T x : v) {
    const double d = x - m.mean;
    m.var += d * d;
    m.skew += d * d * d;
    m.kurt += d * d * d * d;
  }
  m.var /= v.size();
  m.skew /= v.size() * std::pow(m.var, 1.5);
  m.kurt /= v.size() * m.var * m.var;
  return m;
}

template <class T>
class PhiloxTyped : public ::testing::Test {};
using FloatTypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(PhiloxTyped, FloatTypes);

// 1e5 samples: the tolerances are ~5 standard errors of each statistic.
TYPED_TEST(PhiloxTyped, UniformMoments) {
  const auto v = uniform_stream<TypeParam>(2024, 0, 100000);
  for (TypeParam x : v) ASSERT_TRUE(x >= 0 && x < 1) << x;
  const Moments m = moments(v);
  EXPECT_NEAR(m.mean, 0.5, 5 * std::sqrt(1.0 / 12 / 1e5));
  EXPECT_NEAR(m.var, 1.0 / 12, 5 * std::sqrt(1.0 / 180 / 1e5));
  EXPECT_NEAR(m.skew, 0.0, 0.04);
}

TYPED_TEST(PhiloxTyped, NormalMoments) {
  const auto v = normal_stream<TypeParam>(2024, 0, 100000);
  const Moments m = moments(v);
  EXPECT_NEAR(m.mean, 0.0, 5 / std::sqrt(1e5));
  EXPECT_NEAR(m.var, 1.0, 5 * std::sqrt(2 / 1e5));
  EXPECT_NEAR(m.skew, 0.0, 5 * std::sqrt(6 / 1e5));
  EXPECT_NEAR(m.kurt, 3.0, 5 * std::sqrt(24 / 1e5));
  int64_t within1 = 0;
  for (TypeParam x : v) {
    ASSERT_TRUE(std::isfinite(x));
    within1 += std::fabs(x) < 1;
  }
  // P(|z| < 1) = erf(1/sqrt 2) = 0.6827, standard error 0.0015.
  EXPECT_NEAR(within1 / 1e5, std::erf(1 / std::sqrt(2.0)), 0.0075);
}

// Neighbouring values of a normal pair must be uncorrelated (the sin/cos halves of Box-Muller).
TYPED_TEST(PhiloxTyped, NormalPairsUncorrelated) {
  const auto v = normal_stream<TypeParam>(7, 0, 100000);
  double c = 0;
  for (size_t i = 0; i + 1 < v.size(); i += 2) c += static_cast<double>(v[i]) * v[i + 1];
  EXPECT_NEAR(c / (v.size() / 2), 0.0, 5 / std::sqrt(5e4));
}

TYPED_TEST(PhiloxTyped, ReproducibleFromSeed) {
  EXPECT_EQ(uniform_stream<TypeParam>(99, 3, 1001), uniform_stream<TypeParam>(99, 3, 1001));
  EXPECT_EQ(normal_stream<TypeParam>(99, 3, 1001), normal_stream<TypeParam>(99, 3, 1001));
  EXPECT_NE(uniform_stream<TypeParam>(99, 3, 1001), uniform_stream<TypeParam>(100, 3, 1001));
  // A seed differing only in its high word must change the stream too (the key's second word).
  EXPECT_NE(uniform_stream<TypeParam>(99, 3, 64),
            uniform_stream<TypeParam>(99 + (1ull << 32), 3, 64));
}

// A stream at offset o is the stream at 0 shifted by o counters; disjoint counters share nothing.
TYPED_TEST(PhiloxTyped, OffsetsShiftTheStream) {
  constexpr int kV = philox::kValuesPerCounter<TypeParam>;
  const auto whole = uniform_stream<TypeParam>(5, 0, 2000);
  const auto tail = uniform_stream<TypeParam>(5, 100, 2000 - 100 * kV);
  EXPECT_TRUE(std::equal(tail.begin(), tail.end(), whole.begin() + 100 * kV));
  const auto a = uniform_stream<TypeParam>(5, 0, 4000),
             b = uniform_stream<TypeParam>(5, 1000000, 4000);
  std::set<TypeParam> seen(a.begin(), a.end());
  int64_t shared = 0;
  for (TypeParam x : b) shared += seen.count(x);
  // Collisions of 24-bit floats happen by chance (4000^2 / 2^24 ~ 1); far more means overlap.
  EXPECT_LT(shared, 20);
}

// The counter's high word is part of the stream (fills beyond 2^32 counters do not wrap).
TEST(Philox, CounterHighWordMatters) {
  const Block lo = philox::block(1, 5), hi = philox::block(1, 5 + (1ull << 32));
  EXPECT_NE(lo.v[0], hi.v[0]);
}

// ---------------------------------------------------------------- Generator

TEST(Generator, ReserveAdvancesTheOffset) {
  Generator g(42);
  EXPECT_EQ(g.seed(), 42u);
  EXPECT_EQ(g.offset(), 0u);
  EXPECT_EQ(g.reserve(3), 0u);
  EXPECT_EQ(g.reserve(0), 3u);
  EXPECT_EQ(g.reserve(10), 3u);
  EXPECT_EQ(g.offset(), 13u);
  const auto r = g.reserve_with_seed(7);
  EXPECT_EQ(r.seed, 42u);
  EXPECT_EQ(r.offset, 13u);
  EXPECT_EQ(g.offset(), 20u);
  g.set_state(9, 1000);
  EXPECT_EQ(g.seed(), 9u);
  EXPECT_EQ(g.reserve(1), 1000u);
  g.manual_seed(11);
  EXPECT_EQ(g.seed(), 11u);
  EXPECT_EQ(g.offset(), 0u);
}

TEST(Generator, CopiesForkTheState) {
  Generator a(1);
  a.reserve(5);
  Generator b = a;
  EXPECT_EQ(b.seed(), 1u);
  EXPECT_EQ(b.reserve(2), 5u);
  EXPECT_EQ(a.offset(), 5u);  // the original did not move
  Generator c(3);
  c = b;
  EXPECT_EQ(c.offset(), 7u);
}

// Every reservation from any generator counts on the thread that made it, and only there: how
// the step runner sees that a model (with a generator nobody told it about) drew on the host.
TEST(Generator, ReservationsCountPerThreadAcrossGenerators) {
  const uint64_t before = thread_random_reservations();
  Generator a(1), b(2);
  a.reserve(5);
  b.reserve_with_seed(0);
  default_generator().reserve(1);
  EXPECT_EQ(thread_random_reservations(), before + 3);
  uint64_t other_before = 0, other_after = 0;
  std::thread t([&] {
    other_before = thread_random_reservations();
    a.reserve(2);
    other_after = thread_random_reservations();
  });
  t.join();
  EXPECT_EQ(other_after, other_before + 1);
  EXPECT_EQ(thread_random_reservations(), before + 3);  // the other thread's draw is not ours
}

TEST(Generator, OverflowOfTheCounterSpaceThrows) {
  Generator g(0);
  g.set_state(0, UINT64_MAX - 4);
  EXPECT_EQ(g.reserve(4), UINT64_MAX - 4);
  EXPECT_THROW(g.reserve(1), Error);
  EXPECT_EQ(g.offset(), UINT64_MAX);  // a failed reserve leaves the state alone
}

TEST(Generator, ConcurrentReservesAreDisjoint) {
  Generator g(8);
  constexpr int kPerThread = 2000;
  std::vector<uint64_t> got[2];
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) got[t].push_back(g.reserve(3));
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(g.offset(), 2u * kPerThread * 3);
  std::set<uint64_t> starts(got[0].begin(), got[0].end());
  starts.insert(got[1].begin(), got[1].end());
  EXPECT_EQ(starts.size(), 2u * kPerThread);
  for (uint64_t s : starts) EXPECT_EQ(s % 3, 0u);
}

TEST(Generator, ManualSeedResetsTheDefaultGenerator) {
  const uint64_t saved_seed = default_generator().seed(),
                 saved_offset = default_generator().offset();
  manual_seed(1234);
  EXPECT_EQ(default_generator().seed(), 1234u);
  EXPECT_EQ(default_generator().offset(), 0u);
  default_generator().reserve(17);
  manual_seed(1234);
  EXPECT_EQ(default_generator().offset(), 0u);
  EXPECT_EQ(&default_generator(), &default_generator());
  default_generator().set_state(saved_seed, saved_offset);
}

}  // namespace
}  // namespace cyclone
