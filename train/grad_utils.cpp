#include "cyclone/train/grad_utils.h"

#include <cmath>

#include "cyclone/core/autograd.h"
#include "cyclone/core/context.h"
#include "cyclone/kernels/elementwise.h"
#include "cyclone/layers/ops.h"
#include "cyclone/layers/reduce_ops.h"

namespace cyclone::train {

double grad_norm(const NamedTensors& params) {
  autograd::NoGradGuard no_grad;
  // Sums stay on the device of each gradient; one host read per device at the end.
  double total = 0;
  Tensor acc;
  for (const auto& [name, p] : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    Tensor s = sum(square(cast(g, DType::kFloat32)));
    if (acc.defined() && acc.device() != s.device()) {
      total += acc.item();
      acc = Tensor();
    }
    acc = acc.defined() ? add(acc, s) : s;
  }
  if (acc.defined()) total += acc.item();
  return std::sqrt(total);
}

double clip_grad_norm(const NamedTensors& params, double norm, double max_norm) {
  if (!(max_norm > 0) || !std::isfinite(norm) || norm <= max_norm) return 1.0;
  const double scale = max_norm / (norm + 1e-6);
  for (const auto& [name, p] : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    kernels::unary(Context::of(g), kernels::UnaryOp::kMulScalar, g, g, scale);
  }
  return scale;
}

void scale_grads(const NamedTensors& params, double factor) {
  for (const auto& [name, p] : params) {
    const Tensor g = p.grad();
    if (g.defined()) kernels::unary(Context::of(g), kernels::UnaryOp::kMulScalar, g, g, factor);
  }
}

Tensor grad_sq_sum(const NamedTensors& params) {
  autograd::NoGradGuard no_grad;
  Tensor acc;
  for (const auto& [name, p] : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    CYCLONE_CHECK(!acc.defined() || acc.device() == g.device(), "grad_sq_sum: the gradient of '",
                  name, "' is on ", g.device(), ", others on ", acc.device());
    const Tensor s = sum(square(cast(g, DType::kFloat32)));
    acc = acc.defined() ? add(acc, s) : s;
  }
  return acc;
}

void scale_grads(const NamedTensors& params, const Tensor& scale) {
  for (const auto& [name, p] : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    if (g.dtype() == scale.dtype()) {
      kernels::binary(Context::of(g), kernels::BinaryOp::kMul, g, scale, g);
    } else {
      autograd::NoGradGuard no_grad;
      kernels::binary(Context::of(g), kernels::BinaryOp::kMul, g, cast(scale, g.dtype()), g);
    }
  }
}

}  // namespace cyclone::train
