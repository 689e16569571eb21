#include "cyclone/train/step.h"

#include <cmath>

#include "cyclone/core/autograd.h"
#include "cyclone/layers/loss_ops.h"
#include "cyclone/train/grad_utils.h"

namespace cyclone::train {

StepResult train_step(Module& model, optim::Optimizer& optimizer, const data::Batch& batch,
                      const StepOptions& options) {
  StepResult r;
  optimizer.zero_grad();
  const Tensor logits = model(batch.images);
  const Tensor loss = cross_entropy(logits, batch.labels, options.label_smoothing);
  r.loss = loss.item();
  if (options.accuracy) {
    autograd::NoGradGuard no_grad;
    r.accuracy = accuracy_topk(logits.detach(), batch.labels, 1);
  }
  if (!std::isfinite(r.loss)) {
    r.grad_norm = r.loss;
    return r;  // the graph is freed with `loss`; nothing was accumulated
  }
  loss.backward();
  r.grad_norm = grad_norm(optimizer.params());
  if (!std::isfinite(r.grad_norm)) {
    optimizer.zero_grad();
    return r;
  }
  clip_grad_norm(optimizer.params(), r.grad_norm, options.clip_grad_norm);
  optimizer.step();
  r.applied = true;
  return r;
}

}  // namespace cyclone::train
