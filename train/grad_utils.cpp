#include "cyclone/train/grad_utils.h"

#include <cmath>
#include <vector>

#include "cyclone/core/autograd.h"
#include "cyclone/core/context.h"
#include "cyclone/kernels/elementwise.h"
#include "cyclone/kernels/reduce.h"
#include "cyclone/layers/ops.h"
#include "cyclone/layers/reduce_ops.h"

namespace cyclone::train {

double grad_norm(const NamedTensors& params) {
  // One kernels::sum_squares per run of gradients on one device; one host read each.
  double total = 0;
  std::vector<Tensor> run;
  auto flush = [&] {
    if (run.empty()) return;
    const Tensor s = Tensor::empty({1}, DType::kFloat32, run.front().device());
    kernels::sum_squares(Context::of(s), run, s);
    total += s.item();
    run.clear();
  };
  for (const auto& [name, p] : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    if (!run.empty() && run.front().device() != g.device()) flush();
    run.push_back(g);
  }
  flush();
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
  std::vector<Tensor> grads;
  for (const auto& [name, p] : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    CYCLONE_CHECK(grads.empty() || grads.front().device() == g.device(),
                  "grad_sq_sum: the gradient of '", name, "' is on ", g.device(), ", others on ",
                  grads.front().device());
    grads.push_back(g);
  }
  if (grads.empty()) return Tensor();
  const Tensor s = Tensor::empty({1}, DType::kFloat32, grads.front().device());
  kernels::sum_squares(Context::of(s), grads, s);
  return s;
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
