// float16: the storage type of DType::kFloat16 — IEEE 754 binary16 (5-bit exponent, 10-bit
// mantissa; largest finite 65504, smallest normal 2^-14, subnormals down to 2^-24), bit for bit the
// layout of CUDA's __half, so cuBLAS and cuDNN read the same buffers. As with bfloat16
// (core/bfloat16.h), math is never done in float16: a value converts to float exactly and
// implicitly, and a float converts to float16 explicitly by rounding to nearest, ties to even —
// the rules of PyTorch's and CUDA's __float2half_rn:
//   - finite values round to nearest even; those at or beyond 65520 (65504 plus half its ulp)
//     round to +-inf, as IEEE rounding does;
//   - +-inf stays +-inf; NaN stays NaN (quiet, sign and the top payload bits kept), never inf;
//   - values below 2^-14 round to float16 subnormals (no flush to zero), below 2^-25 to +-0.
// The narrow range is why float16 training scales its loss (train/precision.h,
// kernels/step_guard.h).
#pragma once

#include <cstdint>
#include <cstring>

#include "cyclone/core/hd.h"

namespace cyclone {

struct float16 {
  uint16_t bits = 0;

  float16() = default;
  CYCLONE_HD explicit float16(float f) : bits(round_bits(f)) {}
  CYCLONE_HD explicit float16(double d) : bits(round_bits(static_cast<float>(d))) {}

  CYCLONE_HD operator float() const {
    const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
    const uint32_t e = (bits >> 10) & 0x1fu, m = bits & 0x3ffu;
    if (e == 0) {  // zero or subnormal: m 2^-24, exact in float
      const float v = static_cast<float>(m) * 5.9604644775390625e-8f;
      return sign ? -v : v;
    }
    const uint32_t u =
        sign | (e == 0x1fu ? 0x7f800000u | (m << 13) : ((e + 112u) << 23) | (m << 13));
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
  }

  static CYCLONE_HD float16 from_bits(uint16_t b) {
    float16 v;
    v.bits = b;
    return v;
  }

  // The bits of f rounded to float16 (nearest, ties to even; NaN stays a quiet NaN).
  static CYCLONE_HD uint16_t round_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    const uint32_t sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // >= 65520: inf
    if (a >= 0x38800000u) {  // >= 2^-14: normal; rebias the exponent (127 -> 15)
      uint32_t v = a - 0x38000000u;
      v += 0x0fffu + ((v >> 13) & 1u);  // round to nearest even at bit 13
      return static_cast<uint16_t>(sign | (v >> 13));
    }
    if (a < 0x33000000u) return static_cast<uint16_t>(sign);  // < 2^-25 (2^-25 ties to 0)
    // Subnormal: k 2^-24 with k = m 2^(e - 126), rounded to nearest even (k may reach 0x400,
    // which is the encoding of the smallest normal).
    const uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u, s = 126u - e;
    uint32_t k = m >> s;
    const uint32_t rem = m & ((1u << s) - 1u), half = 1u << (s - 1u);
    if (rem > half || (rem == half && (k & 1u))) ++k;
    return static_cast<uint16_t>(sign | k);
  }
};

static_assert(sizeof(float16) == 2, "float16 must be two bytes (the layout of __half)");

}  // namespace cyclone
