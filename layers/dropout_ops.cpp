#include "cyclone/layers/dropout_ops.h"

#include <cmath>

#include "cyclone/core/autograd.h"
#include "cyclone/core/context.h"
#include "cyclone/kernels/elementwise.h"
#include "cyclone/kernels/random.h"
#include "cyclone/layers/ops.h"

namespace cyclone {

Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
  CYCLONE_CHECK(x.defined(), "dropout: x is undefined");
  CYCLONE_CHECK(std::isfinite(p) && p >= 0.0 && p < 1.0, "dropout: p must be in [0, 1), got ", p);
  if (!training || p == 0.0) return x;
  if (is_half(x.dtype()))
    return via_float32(x, [&](const Tensor& f) { return dropout(f, p, training, gen); });
  CYCLONE_CHECK(x.dtype() == DType::kFloat32 || x.dtype() == DType::kFloat64,
                "dropout: needs float32 or float64, got ", dtype_name(x.dtype()));
  Context& ctx = Context::of(x);
  Tensor keep = Tensor::empty(x.shape(), x.dtype(), x.device());
  kernels::bernoulli_(ctx, keep, 1.0 - p, gen);
  // The scale goes into the mask once, so that forward and backward are one product each.
  const Tensor mask = apply(kernels::UnaryOp::kMulScalar, keep, 1.0 / (1.0 - p));
  return autograd::record(apply(kernels::BinaryOp::kMul, x, mask), "dropout", {x},
                          [mask](const Tensor& g, const Tensor&) -> std::vector<Tensor> {
                            return {apply(kernels::BinaryOp::kMul, g, mask)};
                          });
}

}  // namespace cyclone
