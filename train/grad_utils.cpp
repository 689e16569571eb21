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

}  // namespace cyclone::train
