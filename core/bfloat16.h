// bfloat16: the storage type of DType::kBFloat16 — the upper 16 bits of an IEEE float32 (8-bit
// exponent, 7-bit mantissa), bit for bit the layout of CUDA's __nv_bfloat16, so cuBLAS and cuDNN
// read the same buffers. Math is never done in bfloat16: a value converts to float (exactly,
// implicitly, so generic code computes in float), and a float converts to bfloat16 by rounding to
// nearest, ties to even (explicitly). Conversion rules, the same as PyTorch's and CUDA's
// __float2bfloat16_rn:
//   - finite values round to nearest even; those beyond the largest bfloat16 (3.3895e38) round to
//     +-inf, as IEEE rounding does;
//   - +-inf stays +-inf; NaN stays NaN (a quiet NaN with the sign of the input), never inf;
//   - subnormal floats keep their subnormal bfloat16 value (no flush to zero).
#pragma once

#include <cstdint>
#include <cstring>

#include "cyclone/core/hd.h"

namespace cyclone {

struct bfloat16 {
  uint16_t bits = 0;

  bfloat16() = default;
  CYCLONE_HD explicit bfloat16(float f) : bits(round_bits(f)) {}
  CYCLONE_HD explicit bfloat16(double d) : bits(round_bits(static_cast<float>(d))) {}

  CYCLONE_HD operator float() const {
    const uint32_t u = static_cast<uint32_t>(bits) << 16;
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
  }

  static CYCLONE_HD bfloat16 from_bits(uint16_t b) {
    bfloat16 v;
    v.bits = b;
    return v;
  }

  // The bits of f rounded to bfloat16 (nearest, ties to even; NaN stays a quiet NaN).
  static CYCLONE_HD uint16_t round_bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
    // Adding 0x7fff plus the lowest kept bit rounds to nearest with ties to even; a carry out of
    // the mantissa moves to the exponent (and the largest finite values to inf), as it should.
    u += 0x7fffu + ((u >> 16) & 1u);
    return static_cast<uint16_t>(u >> 16);
  }
};

static_assert(sizeof(bfloat16) == 2, "bfloat16 must be two bytes (the layout of __nv_bfloat16)");

}  // namespace cyclone
