// Differentiable activations beyond layers/ops.h's relu/sigmoid/tanh, and selection by name (the
// `--activation` flag of best_lr and the `activation` field of a network config).
//
// Each forward is one pass of a UnaryOp of kernels/functors.h (n reads, n writes). Backward:
//   selu, gelu, gelu_tanh, silu: one fused pass of a *Backward BinaryOp on (grad, input);
//   leaky_relu, elu: grad * derivative, two passes (a BinaryOp carries no scalar parameter, so the
//   slope / alpha go into a UnaryOp derivative first). Backward passes are not themselves recorded
//   (no second derivatives), as for relu/sigmoid/tanh.
//
// Formulas, each following the PyTorch function it names:
//   leaky_relu(x, s)  = x > 0 ? x : s*x                          torch.nn.functional.leaky_relu
//   elu(x, a)         = x > 0 ? x : a*(e^x - 1)                  torch.nn.functional.elu
//   selu(x)           = scale * elu(x, alpha), alpha = 1.6732632423543772848170429916717,
//                       scale = 1.0507009873554804934193349852946 (Klambauer et al. 2017)
//   gelu(x)           = x * Phi(x) = x/2 (1 + erf(x / sqrt 2))   torch gelu, approximate='none'
//   gelu(x, true)     = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))   approximate='tanh'
//   silu(x) = swish(x) = x * sigmoid(x)                          torch.nn.functional.silu
// At the kinks (x = 0 of leaky_relu, elu with a != 1, selu) the gradient is the left derivative,
// as in PyTorch.
#pragma once

#include <string>
#include <vector>

#include "cyclone/core/tensor.h"

namespace cyclone {

Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
Tensor elu(const Tensor& x, double alpha = 1.0);
Tensor selu(const Tensor& x);
Tensor gelu(const Tensor& x, bool tanh_approximation = false);
Tensor silu(const Tensor& x);
inline Tensor swish(const Tensor& x) { return silu(x); }

// The activation called `name` with its default parameters: "relu", "leaky_relu" (slope 0.01),
// "elu" (alpha 1), "selu", "tanh", "sigmoid", "gelu" (erf form), "gelu_tanh", "silu", "swish"
// (= silu). An unknown name is an Error that lists the valid ones.
Tensor activation(const std::string& name, const Tensor& x);
// The names activation() accepts, in the order above.
std::vector<std::string> activation_names();

}  // namespace cyclone
