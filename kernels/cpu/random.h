// CPU backend of kernels/random.h (arguments already checked by the dispatcher). The reference
// implementation: a plain loop over Philox counters running the functors of kernels/random_ops.h.
#pragma once

#include <cstdint>

#include "cyclone/core/context.h"
#include "cyclone/core/tensor.h"

namespace cyclone::kernels::cpu {

void uniform_(Context& ctx, const Tensor& out, double lo, double hi, uint64_t seed,
              uint64_t offset);
void normal_(Context& ctx, const Tensor& out, double mean, double std, uint64_t seed,
             uint64_t offset);
void bernoulli_(Context& ctx, const Tensor& out, double p, uint64_t seed, uint64_t offset);

}  // namespace cyclone::kernels::cpu
