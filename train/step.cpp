#include "cyclone/train/step.h"

#include <cmath>
#include <unordered_set>

#include "cyclone/core/autograd.h"
#include "cyclone/dist/grad_reducer.h"
#include "cyclone/dist/world.h"
#include "cyclone/layers/loss_ops.h"
#include "cyclone/train/distributed.h"
#include "cyclone/train/grad_utils.h"
#include "cyclone/train/interrupt.h"

namespace cyclone::train {

void check_optimizer_fits_model(const Module& model, const optim::Optimizer& opt, const char* who) {
  std::unordered_set<const TensorImpl*> own;
  for (const auto& [name, t] : model.named_parameters()) own.insert(t.impl_ptr().get());
  for (const auto& [name, t] : opt.params())
    CYCLONE_CHECK(own.count(t.impl_ptr().get()) > 0, who, ": the optimizer's parameter '", name,
                  "' is not a parameter of the model being trained (build the optimizer from this "
                  "model's named_parameters(), after the model)");
}

StepResult train_step(Module& model, optim::Optimizer& optimizer, const data::Batch& batch,
                      const StepOptions& options) {
  // An optimizer of another model would step weights this forward never used.
  check_optimizer_fits_model(model, optimizer, "train_step");
  return detail::train_step_prechecked(model, optimizer, batch, options);
}

StepResult detail::train_step_prechecked(Module& model, optim::Optimizer& optimizer,
                                         const data::Batch& batch, const StepOptions& options) {
  StepResult r;
  optimizer.zero_grad();
  dist::GradReducer* reducer = grad_reducer_for(optimizer);
  // A rank's shard of a last global batch smaller than the number of ranks may be empty: it
  // still takes part in the step's collectives, with a zero gradient of weight zero.
  const bool empty = batch.size() == 0;
  CYCLONE_CHECK(!empty || reducer, "train_step: an empty batch");
  Tensor loss;
  if (!empty) {
    const Tensor logits = model(batch.images);
    loss = cross_entropy(logits, batch.labels, options.label_smoothing);
    r.loss = loss.item();
    if (options.accuracy) {
      autograd::NoGradGuard no_grad;
      r.accuracy = accuracy_topk(logits.detach(), batch.labels, 1);
    }
  }
  r.samples = batch.size();
  // Alone, an interrupt counts when the step ends; in a job the ranks agreed on it below.
  auto done = [&]() -> StepResult& {
    if (!reducer) r.stop = interrupt_requested();
    return r;
  };
  double weight = 1;  // this rank's share of the global batch, times the number of ranks
  if (reducer) {
    const double n = static_cast<double>(batch.size());
    std::vector<double> v = {n, empty ? 0.0 : r.loss * n,
                             options.accuracy && !empty ? r.accuracy * n : 0.0,
                             interrupt_requested() ? 1.0 : 0.0};
    all_reduce_sum(v);
    CYCLONE_CHECK(v[0] > 0, "train_step: the global batch is empty");
    weight = n * reducer->communicator().size() / v[0];
    r.samples = static_cast<int64_t>(v[0]);
    r.loss = v[1] / v[0];
    if (options.accuracy) r.accuracy = v[2] / v[0];
    r.stop = v[3] > 0;
  }
  if (!std::isfinite(r.loss)) {
    r.grad_norm = r.loss;
    return done();  // the graph is freed with `loss`; nothing was accumulated
  }
  // Loss scaling: the backward starts from scale (times this rank's weight in a job).
  LossScaler* scaler = options.loss_scaler;
  const double s = scaler ? scaler->scale() : 1.0;
  r.loss_scale = s;
  auto seeded_backward = [&](double seed) {
    if (seed == 1) return loss.backward();
    if (loss.dtype() == DType::kFloat64)
      return loss.backward(Tensor::from_host(&seed, loss.shape(), DType::kFloat64, loss.device()));
    const float f = static_cast<float>(seed);
    loss.backward(Tensor::from_host(&f, loss.shape(), DType::kFloat32, loss.device()));
  };
  if (!reducer) {
    seeded_backward(s);
  } else {
    reducer->prepare();
    if (!empty) {
      autograd::GradReadyHook hook([&](const Tensor& leaf) { reducer->mark_ready(leaf); });
      seeded_backward(weight * s);
    }
    reducer->finish();
  }
  r.grad_norm = grad_norm(optimizer.params()) / s;
  if (!std::isfinite(r.grad_norm)) {
    if (scaler) scaler->update(true);  // the scaled gradients overflowed: back off, skip
    optimizer.zero_grad();
    return done();
  }
  if (scaler) {
    scale_grads(optimizer.params(), 1.0 / s);
    scaler->update(false);
  }
  clip_grad_norm(optimizer.params(), r.grad_norm, options.clip_grad_norm);
  optimizer.step();
  r.applied = true;
  return done();
}

}  // namespace cyclone::train
