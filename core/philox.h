// Philox4x32-10, the counter-based generator of Salmon, Moraes, Dror & Shaw, "Parallel Random
// Numbers: As Easy as 1, 2, 3" (SC'11), exactly as Random123's philox4x32_10 (its kat_vectors are
// the known-answer tests in tests/core/test_philox.cpp). A random number is a pure function of
// (counter, key), so any thread on any device can compute element i of a stream without state:
// that is what makes CPU and GPU streams bit-identical and fills independent of launch shape.
//
// Everything here is CYCLONE_HD: the same source runs in g++ on the host and in nvcc on the device.
// Integer parts are trivially identical. Floating-point parts (Box-Muller's log, sqrt, sin, cos)
// are bit-identical only because they are built here from IEEE correctly-rounded operations
// (+ - * / sqrt fma), never from the platform's libm / CUDA math library (whose last-ulp results
// differ), and because a product never feeds a sum outside an explicit fma: nvcc would contract
// it into an fma on the device (and g++ -ffp-contract=fast on an FMA host), so on the device the
// basic operations are the non-contractible __fmul_rn / __fadd_rn family.
//
// ---- The stream mapping (the contract shared by every fill, CPU and CUDA) ----
// key     = (low 32 bits of seed, high 32 bits of seed)
// counter = (low 32 bits of c, high 32 bits of c, 0, 0) for a 64-bit counter index c; words 2 and 3
//           are reserved (zero), e.g. for per-rank subsequences later.
// One Philox call (one counter) yields V = kValuesPerCounter<T> values: V = 4 for float (one word
// each), V = 2 for double (53 bits from two words). A fill of n elements at (seed, offset) gives
// element i the value i % V of counter c = offset + i / V, so it consumes ceil(n / V) counters, and
// a Generator advances its offset by exactly that (kernels/random.h: random_counters), so
// consecutive fills never share a counter. A GPU thread computes one counter and writes V values.
//
// ---- Conversions ----
// float  [0,1):  (w >> 8) * 2^-24                 (0,1]: ((w >> 8) + 1) * 2^-24
// double [0,1):  k * 2^-53, k = (a << 21) | (b >> 11) for the words (a, b)   (0,1]: (k + 1) * 2^-53
// All exact: a 24- or 53-bit integer times a power of two.
//
// ---- Box-Muller (Box & Muller 1958) ----
// z0 = r cos(2 pi u2), z1 = r sin(2 pi u2), r = sqrt(-2 log u1), u1 in (0,1] (log finite), u2 in
// [0,1). float: (w0, w1) -> (z0, z1) and (w2, w3) -> (z2, z3); double: u1 from (w0, w1) and u2 from
// (w2, w3) -> (z0, z1). Tails are cut where u1 is smallest: |z| <= 5.77 (float), 8.57 (double).
// Accuracy of the hand-made log/sincos: a few ulp, ample for sampling.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "cyclone/core/hd.h"

namespace cyclone::philox {

inline constexpr uint32_t kM0 = 0xD2511F53u;  // round multipliers
inline constexpr uint32_t kM1 = 0xCD9E8D57u;
inline constexpr uint32_t kW0 = 0x9E3779B9u;  // Weyl key increments (golden ratio, sqrt(3) - 1)
inline constexpr uint32_t kW1 = 0xBB67AE85u;
inline constexpr int kRounds = 10;

struct Block {
  uint32_t v[4];
};

// ---------------------------------------------------------------- the bijection

CYCLONE_HD uint32_t mulhi32(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
  return __umulhi(a, b);
#else
  return static_cast<uint32_t>((static_cast<uint64_t>(a) * b) >> 32);
#endif
}

// Philox4x32-10 of counter ctr under key (k0, k1): ten rounds, the key bumped by (W0, W1) between
// rounds, as Random123's philox4x32_R(10, ...).
CYCLONE_HD Block philox4x32(Block ctr, uint32_t k0, uint32_t k1) {
  uint32_t x0 = ctr.v[0], x1 = ctr.v[1], x2 = ctr.v[2], x3 = ctr.v[3];
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int r = 0; r < kRounds; ++r) {
    const uint32_t hi0 = mulhi32(kM0, x0), lo0 = kM0 * x0;
    const uint32_t hi1 = mulhi32(kM1, x2), lo1 = kM1 * x2;
    x0 = hi1 ^ x1 ^ k0;
    x1 = lo1;
    x2 = hi0 ^ x3 ^ k1;
    x3 = lo0;
    k0 += kW0;
    k1 += kW1;
  }
  return Block{{x0, x1, x2, x3}};
}

CYCLONE_HD Block philox4x32(const uint32_t counter[4], const uint32_t key[2]) {
  return philox4x32(Block{{counter[0], counter[1], counter[2], counter[3]}}, key[0], key[1]);
}

// The block of counter index c in the stream of `seed` (the mapping above).
CYCLONE_HD Block block(uint64_t seed, uint64_t c) {
  return philox4x32(Block{{static_cast<uint32_t>(c), static_cast<uint32_t>(c >> 32), 0u, 0u}},
                    static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

template <class T>
inline constexpr int kValuesPerCounter = sizeof(T) == 4 ? 4 : 2;

// ---------------------------------------------------------------- words -> uniforms

CYCLONE_HD float uniform_float(uint32_t w) {  // [0, 1)
  return static_cast<float>(w >> 8) * 0x1p-24f;
}
CYCLONE_HD float uniform_float_open0(uint32_t w) {  // (0, 1]
  return static_cast<float>((w >> 8) + 1u) * 0x1p-24f;
}
CYCLONE_HD uint64_t bits53(uint32_t a, uint32_t b) {
  return (static_cast<uint64_t>(a) << 21) | (b >> 11);
}
CYCLONE_HD double uniform_double(uint32_t a, uint32_t b) {  // [0, 1)
  return static_cast<double>(bits53(a, b)) * 0x1p-53;
}
CYCLONE_HD double uniform_double_open0(uint32_t a, uint32_t b) {  // (0, 1]
  return static_cast<double>(bits53(a, b) + 1u) * 0x1p-53;
}

// ---------------------------------------------------------------- reproducible arithmetic

namespace detail {

// Correctly rounded operations that no compiler may fuse (see the file comment).
CYCLONE_HD float mul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
CYCLONE_HD double mul(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}
CYCLONE_HD float add(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
CYCLONE_HD double add(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}
CYCLONE_HD float div(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}
CYCLONE_HD double div(double a, double b) {
#if defined(__CUDA_ARCH__)
  return __ddiv_rn(a, b);
#else
  return a / b;
#endif
}
CYCLONE_HD float sqrt_rn(float a) {
#if defined(__CUDA_ARCH__)
  return __fsqrt_rn(a);
#else
  return std::sqrt(a);
#endif
}
CYCLONE_HD double sqrt_rn(double a) {
#if defined(__CUDA_ARCH__)
  return __dsqrt_rn(a);
#else
  return std::sqrt(a);
#endif
}
CYCLONE_HD float fma_rn(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}
CYCLONE_HD double fma_rn(double a, double b, double c) {
#if defined(__CUDA_ARCH__)
  return __fma_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}
CYCLONE_HD uint32_t bits_of(float x) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(x);
#else
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
#endif
}
CYCLONE_HD uint64_t bits_of(double x) {
#if defined(__CUDA_ARCH__)
  return static_cast<uint64_t>(__double_as_longlong(x));
#else
  uint64_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
#endif
}
CYCLONE_HD float float_of(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
#endif
}
CYCLONE_HD double double_of(uint64_t u) {
#if defined(__CUDA_ARCH__)
  return __longlong_as_double(static_cast<long long>(u));
#else
  double x;
  std::memcpy(&x, &u, sizeof x);
  return x;
#endif
}

// Horner with fmas: c[0] + z (c[1] + z (c[2] + ...)).
template <class T, int N>
CYCLONE_HD T horner(T z, const T (&c)[N]) {
  T p = c[N - 1];
  for (int i = N - 2; i >= 0; --i) p = fma_rn(p, z, c[i]);
  return p;
}

}  // namespace detail

// Natural log of a positive normal x (all uniforms of the (0,1] kind are). x = 2^e m with m in
// [sqrt(1/2), sqrt(2)); log m = 2 atanh(s) = 2 (s + s^3/3 + s^5/5 + ...), s = (m - 1) / (m + 1),
// |s| <= 0.1716; the series is cut where its next term is below half an ulp. m - 1 is exact
// (Sterbenz); ln 2 is split hi + lo so e ln 2 keeps full precision.
CYCLONE_HD float log_pos(float x) {
  using detail::add, detail::div, detail::fma_rn, detail::mul;
  const uint32_t b = detail::bits_of(x);
  int e = static_cast<int>(b >> 23) - 127;
  float m = detail::float_of((b & 0x007FFFFFu) | 0x3F800000u);  // [1, 2)
  if (m > 1.41421356f) {
    m = mul(m, 0.5f);
    e += 1;
  }
  const float f = add(m, -1.0f);
  const float s = div(f, add(f, 2.0f));
  const float z = mul(s, s);
  constexpr float kC[] = {2.0f / 3.0f, 2.0f / 5.0f, 2.0f / 7.0f, 2.0f / 9.0f};
  const float log_m = fma_rn(mul(s, z), detail::horner(z, kC), mul(s, 2.0f));
  const float ef = static_cast<float>(e);
  return fma_rn(ef, 0x1.62e430p-1f, fma_rn(ef, -0x1.05c610p-29f, log_m));
}
CYCLONE_HD double log_pos(double x) {
  using detail::add, detail::div, detail::fma_rn, detail::mul;
  const uint64_t b = detail::bits_of(x);
  int e = static_cast<int>(b >> 52) - 1023;
  double m = detail::double_of((b & 0x000FFFFFFFFFFFFFull) | 0x3FF0000000000000ull);
  if (m > 1.4142135623730951) {
    m = mul(m, 0.5);
    e += 1;
  }
  const double f = add(m, -1.0);
  const double s = div(f, add(f, 2.0));
  const double z = mul(s, s);
  constexpr double kC[] = {2.0 / 3.0,  2.0 / 5.0,  2.0 / 7.0,  2.0 / 9.0,  2.0 / 11.0, 2.0 / 13.0,
                           2.0 / 15.0, 2.0 / 17.0, 2.0 / 19.0, 2.0 / 21.0, 2.0 / 23.0};
  const double log_m = fma_rn(mul(s, z), detail::horner(z, kC), mul(s, 2.0));
  const double ef = static_cast<double>(e);
  return fma_rn(ef, 0x1.62e42fefa39efp-1, fma_rn(ef, 0x1.abc9e3b39803fp-56, log_m));
}

// sin and cos of 2 pi k / 2^kBits for an integer k in [0, 2^kBits): the quarter turn nearest the
// angle is taken from k's top bits in integer arithmetic (exact), leaving |angle| <= pi/4 for
// Taylor polynomials; sin and cos are then swapped and negated by quadrant.
template <class T, int kBits>
CYCLONE_HD void sincos_turn(uint64_t k, T* sin_out, T* cos_out) {
  using detail::fma_rn, detail::mul;
  constexpr uint64_t kQuarter = uint64_t{1} << (kBits - 2);
  const uint64_t shifted = k + kQuarter / 2;  // round to the nearest quarter turn
  const unsigned q = static_cast<unsigned>((shifted >> (kBits - 2)) & 3u);
  const int64_t r = static_cast<int64_t>(shifted & (kQuarter - 1)) -
                    static_cast<int64_t>(kQuarter / 2);  // |r| <= kQuarter / 2, exact in T
  // 2 pi / 2^kBits: a power-of-two scaling of the rounded 2 pi, exact.
  constexpr T kScale = static_cast<T>(6.283185307179586) / static_cast<T>(uint64_t{1} << kBits);
  const T t = mul(static_cast<T>(r), kScale);
  const T t2 = mul(t, t);
  T s, c;
  if constexpr (std::is_same_v<T, float>) {
    // |t| <= pi/4: the first omitted terms, t^11/11! and t^12/12!, are below 2e-9.
    constexpr float kS[] = {-1.0f / 6.0f, 1.0f / 120.0f, -1.0f / 5040.0f, 1.0f / 362880.0f};
    constexpr float kC[] = {1.0f,           -0.5f,           1.0f / 24.0f,
                            -1.0f / 720.0f, 1.0f / 40320.0f, -1.0f / 3628800.0f};
    s = fma_rn(mul(t, t2), detail::horner(t2, kS), t);
    c = detail::horner(t2, kC);
  } else {
    // The first omitted terms, t^21/21! and t^22/22!, are below 1e-21.
    constexpr double kS[] = {-1.0 / 6.0,
                             1.0 / 120.0,
                             -1.0 / 5040.0,
                             1.0 / 362880.0,
                             -1.0 / 39916800.0,
                             1.0 / 6227020800.0,
                             -1.0 / 1307674368000.0,
                             1.0 / 355687428096000.0,
                             -1.0 / 121645100408832000.0};
    constexpr double kC[] = {1.0,
                             -0.5,
                             1.0 / 24.0,
                             -1.0 / 720.0,
                             1.0 / 40320.0,
                             -1.0 / 3628800.0,
                             1.0 / 479001600.0,
                             -1.0 / 87178291200.0,
                             1.0 / 20922789888000.0,
                             -1.0 / 6402373705728000.0,
                             1.0 / 2432902008176640000.0};
    s = fma_rn(mul(t, t2), detail::horner(t2, kS), t);
    c = detail::horner(t2, kC);
  }
  switch (q) {
    case 0:
      *sin_out = s;
      *cos_out = c;
      break;
    case 1:
      *sin_out = c;
      *cos_out = -s;
      break;
    case 2:
      *sin_out = -s;
      *cos_out = -c;
      break;
    default:
      *sin_out = -c;
      *cos_out = s;
      break;
  }
}

// ---------------------------------------------------------------- one counter's values

// The V = kValuesPerCounter<T> standard uniforms in [0, 1) of counter c of `seed`.
template <class T>
CYCLONE_HD void uniform_values(uint64_t seed, uint64_t c, T* out) {
  const Block b = block(seed, c);
  if constexpr (std::is_same_v<T, float>) {
    for (int j = 0; j < 4; ++j) out[j] = uniform_float(b.v[j]);
  } else {
    out[0] = uniform_double(b.v[0], b.v[1]);
    out[1] = uniform_double(b.v[2], b.v[3]);
  }
}

// Box-Muller pair from the radius uniform u1 in (0, 1] and the angle integer k of kBits bits.
template <class T, int kBits>
CYCLONE_HD void box_muller(T u1, uint64_t k, T* z0, T* z1) {
  const T r = detail::sqrt_rn(detail::mul(static_cast<T>(-2), log_pos(u1)));
  T s, c;
  sincos_turn<T, kBits>(k, &s, &c);
  *z0 = detail::mul(r, c);
  *z1 = detail::mul(r, s);
}

// The V = kValuesPerCounter<T> standard normals of counter c of `seed`.
template <class T>
CYCLONE_HD void normal_values(uint64_t seed, uint64_t c, T* out) {
  const Block b = block(seed, c);
  if constexpr (std::is_same_v<T, float>) {
    box_muller<float, 24>(uniform_float_open0(b.v[0]), b.v[1] >> 8, &out[0], &out[1]);
    box_muller<float, 24>(uniform_float_open0(b.v[2]), b.v[3] >> 8, &out[2], &out[3]);
  } else {
    box_muller<double, 53>(uniform_double_open0(b.v[0], b.v[1]), bits53(b.v[2], b.v[3]), &out[0],
                           &out[1]);
  }
}

}  // namespace cyclone::philox
