#include "cyclone/layers/activation_ops.h"

#include <cmath>

#include "cyclone/core/autograd.h"
#include "cyclone/core/error.h"
#include "cyclone/core/spelling.h"
#include "cyclone/layers/ops.h"

namespace cyclone {

using kernels::BinaryOp;
using kernels::UnaryOp;

namespace {

// An activation whose backward is one fused pass of `backward` on (grad, input).
Tensor fused(UnaryOp forward, BinaryOp backward, const char* name, const Tensor& x) {
  return autograd::record(apply(forward, x), name, {x},
                          [x, backward](const Tensor& g, const Tensor&) -> std::vector<Tensor> {
                            return {apply(backward, g, x)};
                          });
}

// An activation with a scalar parameter: backward = grad * derivative(x; param).
Tensor with_param(UnaryOp forward, UnaryOp derivative, const char* name, const Tensor& x,
                  double param) {
  return autograd::record(
      apply(forward, x, param), name, {x},
      [x, derivative, param](const Tensor& g, const Tensor&) -> std::vector<Tensor> {
        return {apply(BinaryOp::kMul, g, apply(derivative, x, param))};
      });
}

struct Entry {
  const char* name;
  Tensor (*fn)(const Tensor&);
};

// The registry behind activation(): one function-local table (DESIGN.md: explicit registries).
const std::vector<Entry>& registry() {
  static const std::vector<Entry> table = {
      {"relu", [](const Tensor& x) { return relu(x); }},
      {"leaky_relu", [](const Tensor& x) { return leaky_relu(x); }},
      {"elu", [](const Tensor& x) { return elu(x); }},
      {"selu", [](const Tensor& x) { return selu(x); }},
      {"tanh", [](const Tensor& x) { return tanh(x); }},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }},
      {"gelu", [](const Tensor& x) { return gelu(x); }},
      {"gelu_tanh", [](const Tensor& x) { return gelu(x, true); }},
      {"silu", [](const Tensor& x) { return silu(x); }},
      {"swish", [](const Tensor& x) { return silu(x); }},
  };
  return table;
}

}  // namespace

Tensor leaky_relu(const Tensor& x, double negative_slope) {
  CYCLONE_CHECK(std::isfinite(negative_slope), "leaky_relu: negative_slope must be finite, got ",
                negative_slope);
  return with_param(UnaryOp::kLeakyRelu, UnaryOp::kLeakyReluGrad, "leaky_relu", x, negative_slope);
}

Tensor elu(const Tensor& x, double alpha) {
  CYCLONE_CHECK(std::isfinite(alpha), "elu: alpha must be finite, got ", alpha);
  return with_param(UnaryOp::kElu, UnaryOp::kEluGrad, "elu", x, alpha);
}

Tensor selu(const Tensor& x) { return fused(UnaryOp::kSelu, BinaryOp::kSeluBackward, "selu", x); }

Tensor gelu(const Tensor& x, bool tanh_approximation) {
  if (tanh_approximation)
    return fused(UnaryOp::kGeluTanh, BinaryOp::kGeluTanhBackward, "gelu_tanh", x);
  return fused(UnaryOp::kGelu, BinaryOp::kGeluBackward, "gelu", x);
}

Tensor silu(const Tensor& x) { return fused(UnaryOp::kSilu, BinaryOp::kSiluBackward, "silu", x); }

Tensor activation(const std::string& name, const Tensor& x) {
  for (const Entry& e : registry())
    if (name == e.name) return e.fn(x);
  std::string valid;
  std::vector<std::string> names;
  for (const Entry& e : registry()) {
    valid += (valid.empty() ? "" : ", ") + std::string(e.name);
    names.emplace_back(e.name);
  }
  CYCLONE_THROW("unknown activation '", name, "'", did_you_mean(name, names), " (valid: ", valid,
                ")");
}

std::vector<std::string> activation_names() {
  std::vector<std::string> names;
  for (const Entry& e : registry()) names.emplace_back(e.name);
  return names;
}

}  // namespace cyclone
