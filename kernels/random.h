// Random fills from the counter-based Philox4x32-10 stream (core/philox.h). The values are a pure
// function of (seed, offset, element index), identical on the CPU and on CUDA and independent of
// launch shape and thread count:
//   element i = value (i % V) of Philox counter (offset + i / V),  V = 4 (float32), 2 (float64),
// so a fill of n elements consumes random_counters(n, dtype) = ceil(n / V) counters. The overloads
// taking a Generator reserve exactly that many, so consecutive fills never overlap.
//
// uniform_:   out_i = lo + (hi - lo) u_i, u_i in [0, 1) (24-bit float / 53-bit double uniforms).
// normal_:    out_i = mean + std z_i, z_i standard normal by Box-Muller (Box & Muller 1958):
//             z = sqrt(-2 log u1) (cos, sin)(2 pi u2), one pair per two words (float) or per four
//             (double). Tails are cut at |z| <= 5.77 (float32), 8.57 (float64).
// bernoulli_: out_i = 1 if u_i < p else 0 (torch.bernoulli with a scalar p; a dropout keep-mask).
// Cost: writes n * sizeof(T) bytes and reads nothing; ceil(n / V) Philox calls of 10 rounds (two
// 32x32->64 multiplies each). normal_ adds per pair of values one log (a division and ~6 fmas),
// one sqrt and one sin/cos pair (~10 fmas, ~20 in float64). Not yet measured on a GPU; on one
// x86 core (single-threaded CPU backend) 1e7 float32 values took ~100 ms (uniform_) and ~570 ms
// (normal_).
// These match PyTorch's distributions, not its bits (PyTorch's Philox offsets differ).
#pragma once

#include <cstdint>

#include "cyclone/core/context.h"
#include "cyclone/core/dtype.h"
#include "cyclone/core/generator.h"
#include "cyclone/core/tensor.h"

namespace cyclone::kernels {

// Philox counters a fill of numel elements of dtype (float32 or float64) consumes.
uint64_t random_counters(int64_t numel, DType dtype);

// Explicit stream position: the caller owns counters [offset, offset + random_counters(...)).
void uniform_(Context& ctx, const Tensor& out, double lo, double hi, uint64_t seed,
              uint64_t offset);
void normal_(Context& ctx, const Tensor& out, double mean, double std, uint64_t seed,
             uint64_t offset);
void bernoulli_(Context& ctx, const Tensor& out, double p, uint64_t seed, uint64_t offset);

// The same, drawing the position from gen (which advances by random_counters(...)). Pass
// default_generator() for the process-wide stream seeded by manual_seed.
void uniform_(Context& ctx, const Tensor& out, double lo, double hi, Generator& gen);
void normal_(Context& ctx, const Tensor& out, double mean, double std, Generator& gen);
void bernoulli_(Context& ctx, const Tensor& out, double p, Generator& gen);

}  // namespace cyclone::kernels
