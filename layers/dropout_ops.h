// Differentiable dropout (Srivastava et al., "Dropout: A Simple Way to Prevent Neural Networks from
// Overfitting", JMLR 2014), inverted as torch.nn.functional.dropout:
//   training: y = x * m / (1 - p), m_i ~ Bernoulli(1 - p) (1 keeps the element);  dx = dy * m/(1-p)
//   eval, or p == 0: y = x (the same tensor; no random numbers are drawn)
// p must be in [0, 1) (p = 1 would divide by zero; PyTorch returns zeros there, Cyclone refuses).
//
// The keep-mask comes from kernels::bernoulli_ (kernels/random.h) with keep probability 1 - p in
// x's dtype: m_i = (u_i < 1 - p) for the Philox uniform u_i of (gen's seed, gen's offset, i), so
// the same generator state gives the same mask on the CPU and on CUDA, and a fill consumes
// random_counters(numel, dtype) counters of gen.
// cost: a mask fill (n writes), a scale (n reads, n writes), the product (2n reads, n writes); the
// scaled mask (n elements of x's dtype) is kept for the backward.
#pragma once

#include "cyclone/core/generator.h"
#include "cyclone/core/tensor.h"

namespace cyclone {

Tensor dropout(const Tensor& x, double p, bool training, Generator& gen = default_generator());

}  // namespace cyclone
