#include "cyclone/layers/loss_ops.h"

#include <limits>

#include "cyclone/core/autograd.h"
#include "cyclone/core/context.h"
#include "cyclone/kernels/softmax.h"
#include "cyclone/layers/autocast.h"
#include "cyclone/layers/ops.h"

namespace cyclone {

namespace {

using ForwardKernel = void (*)(Context&, const Tensor&, const Tensor&);
using BackwardKernel = void (*)(Context&, const Tensor&, const Tensor&, const Tensor&);

// softmax and log_softmax: the backward needs only the output and the upstream gradient.
Tensor softmax_like(const char* name, ForwardKernel forward, BackwardKernel backward,
                    const Tensor& x) {
  CYCLONE_CHECK(x.defined(), name, ": undefined input");
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  forward(Context::of(x), x, y);
  return autograd::record(y, name, {x},
                          [backward](const Tensor& g, const Tensor& out) -> std::vector<Tensor> {
                            Tensor dx = Tensor::empty(out.shape(), out.dtype(), out.device());
                            backward(Context::of(out), out, g, dx);
                            return {dx};
                          });
}

}  // namespace

// bfloat16 / float16 inputs are computed in float32 (the kernels' dtypes) and rounded back, as
// the reductions are; cross_entropy under autocast keeps its float32 loss (PyTorch's autocast
// runs it in float32).
Tensor softmax(const Tensor& x) {
  if (is_half(x.dtype())) return via_float32(x, [](const Tensor& f) { return softmax(f); });
  return softmax_like("softmax", kernels::softmax_forward, kernels::softmax_backward, x);
}

Tensor log_softmax(const Tensor& x) {
  if (is_half(x.dtype())) return via_float32(x, [](const Tensor& f) { return log_softmax(f); });
  return softmax_like("log_softmax", kernels::log_softmax_forward, kernels::log_softmax_backward,
                      x);
}

Tensor cross_entropy(const Tensor& logits, const Tensor& labels, double label_smoothing) {
  CYCLONE_CHECK(logits.defined() && labels.defined(), "cross_entropy: undefined logits or labels");
  if (is_half(logits.dtype())) {
    const Tensor loss = cross_entropy(cast(logits, DType::kFloat32), labels, label_smoothing);
    return autocast_dtype() != DType::kFloat32 ? loss : cast(loss, logits.dtype());
  }
  Context& ctx = Context::of(logits);
  Tensor loss = Tensor::empty(Shape(), logits.dtype(), logits.device());
  Tensor lse =
      Tensor::empty({logits.rank() >= 1 ? logits.dim(0) : 0}, logits.dtype(), logits.device());
  kernels::softmax_cross_entropy_forward(ctx, logits, labels, label_smoothing, loss, lse);
  return autograd::record(
      loss, "cross_entropy", {logits},
      [logits, labels, lse, label_smoothing](const Tensor& g,
                                             const Tensor&) -> std::vector<Tensor> {
        Tensor dlogits = Tensor::empty(logits.shape(), logits.dtype(), logits.device());
        kernels::softmax_cross_entropy_backward(Context::of(logits), logits, labels,
                                                label_smoothing, lse, g, dlogits);
        return {dlogits};
      });
}

double accuracy_topk(const Tensor& logits, const Tensor& labels, int k) {
  CYCLONE_CHECK(logits.defined() && labels.defined(), "accuracy_topk: undefined logits or labels");
  if (is_half(logits.dtype()))  // widening keeps every order and tie
    return accuracy_topk(cast(logits.detach(), DType::kFloat32), labels, k);
  Tensor count = Tensor::empty({1}, DType::kInt32, logits.device());
  kernels::topk_correct(Context::of(logits), logits, labels, k, count);
  const int64_t rows = logits.dim(0);
  if (rows == 0) return std::numeric_limits<double>::quiet_NaN();
  return static_cast<double>(count.item<int32_t>()) / static_cast<double>(rows);
}

}  // namespace cyclone
