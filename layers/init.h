// Weight initializers, selected by name (a network config's `init` field, best_lr's flag).
//
// The names and their meaning follow Keras (keras.initializers), because the best_lr demo this
// project reproduces is a Keras one; where PyTorch differs the PyTorch variant has its own name.
// With fan_in / fan_out from fans() and TN(s) = a normal of stddev s truncated to [-2s, 2s]
// (Keras' TruncatedNormal: values beyond two standard deviations are redrawn):
//   he_normal       TN(sqrt(2 / fan_in) / 0.87962566103423978)          (the default, kDefaultInit)
//   he_uniform      U(-l, l), l = sqrt(6 / fan_in)
//   glorot_normal   TN(sqrt(2 / (fan_in + fan_out)) / 0.87962566103423978)
//   glorot_uniform  U(-l, l), l = sqrt(6 / (fan_in + fan_out))
//   lecun_normal    TN(sqrt(1 / fan_in) / 0.87962566103423978)
//   lecun_uniform   U(-l, l), l = sqrt(3 / fan_in)
//   zeros, ones     constants
// 0.87962566103423978 is the standard deviation of a unit normal truncated to [-2, 2], so the
// truncated draws have exactly the variance Keras' VarianceScaling asks for (scale / n).
// PyTorch's torch.nn.init equivalents, untruncated:
//   kaiming_normal   N(0, sqrt(2 / fan_in))          (kaiming_normal_, mode='fan_in', relu gain)
//   kaiming_uniform  = he_uniform                    (kaiming_uniform_, a=0, mode='fan_in')
//   xavier_normal    N(0, sqrt(2 / (fan_in + fan_out)))   (xavier_normal_, gain 1)
//   xavier_uniform   = glorot_uniform                (xavier_uniform_, gain 1)
//
// Fans (PyTorch's _calculate_fan_in_and_fan_out on its weight layouts, which is Keras'
// _compute_fans on Keras' transposed layouts): linear [out, in]: fan_in = in, fan_out = out;
// conv [out, in, kh, kw...]: fan_in = in * kh * kw, fan_out = out * kh * kw. Keras' rules for
// rank < 2 (PyTorch refuses those): rank 1 [n]: fan_in = fan_out = n; rank 0: 1 and 1.
//
// Randomness: normal and uniform draws are kernels::normal_ / uniform_ fills of w from gen, so
// they are the same on the CPU and CUDA. Truncated normals use the inverse CDF (as PyTorch's
// trunc_normal_): z = Phi^-1(Phi(-2) + u (Phi(2) - Phi(-2))) for a float64 uniform u drawn from gen
// on the host, transformed on the host and copied to w's device (so again the same on every
// device); it draws random_counters(numel, float64) counters. The constants draw none.
// cost: one fill of w (normal_, uniform_), or numel host erfinv evaluations and one copy.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cyclone/core/generator.h"
#include "cyclone/core/shape.h"
#include "cyclone/core/tensor.h"

namespace cyclone {

inline constexpr const char* kDefaultInit = "he_normal";

struct Fans {
  int64_t fan_in = 1;
  int64_t fan_out = 1;
};
Fans fans(const Shape& weight_shape);

// Fills w (float32 or float64, any device) in place by the initializer called `name`; not
// recorded by autograd. An unknown name is an Error that lists the valid ones.
void init_tensor(const std::string& name, const Tensor& w, Generator& gen = default_generator());
std::vector<std::string> init_names();

// A standard normal truncated to [-2, 2] at probability u in [0, 1): the inverse-CDF map above.
double truncated_normal_from_uniform(double u);

}  // namespace cyclone
