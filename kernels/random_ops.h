// The per-counter math of the random fills, written once as CYCLONE_HD functors and run by the CPU
// loop (kernels/cpu/random.cpp) and the CUDA grid (kernels/cuda/random.cu), so both backends
// execute the same operations and produce bit-identical tensors. Each functor writes the
// V = philox::kValuesPerCounter<T> values of one Philox counter (the stream mapping of
// core/philox.h: element i of a fill is value i % V of counter offset + i / V).
#pragma once

#include <cstdint>

#include "cyclone/core/hd.h"
#include "cyclone/core/philox.h"

namespace cyclone::kernels::random_ops {

// lo + (hi - lo) u, u uniform in [0, 1), as one fma. With lo and hi of very different magnitude
// the rounding may yield hi itself (as torch.Tensor.uniform_ may).
template <class T>
struct Uniform {
  T lo, scale;  // scale = hi - lo
  CYCLONE_HD void operator()(uint64_t seed, uint64_t counter, T* v) const {
    philox::uniform_values<T>(seed, counter, v);
    for (int j = 0; j < philox::kValuesPerCounter<T>; ++j)
      v[j] = philox::detail::fma_rn(scale, v[j], lo);
  }
};

// mean + std z, z standard normal by Box-Muller, as one fma.
template <class T>
struct Normal {
  T mean, std;
  CYCLONE_HD void operator()(uint64_t seed, uint64_t counter, T* v) const {
    philox::normal_values<T>(seed, counter, v);
    for (int j = 0; j < philox::kValuesPerCounter<T>; ++j)
      v[j] = philox::detail::fma_rn(std, v[j], mean);
  }
};

// 1 with probability p (u < p), else 0: a dropout keep-mask when p is the keep probability.
template <class T>
struct Bernoulli {
  T p;
  CYCLONE_HD void operator()(uint64_t seed, uint64_t counter, T* v) const {
    philox::uniform_values<T>(seed, counter, v);
    for (int j = 0; j < philox::kValuesPerCounter<T>; ++j)
      v[j] = v[j] < p ? static_cast<T>(1) : static_cast<T>(0);
  }
};

}  // namespace cyclone::kernels::random_ops
