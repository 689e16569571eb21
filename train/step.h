// One training step, shared by the trainer and the range test: forward, loss, backward, the
// gradient norm (whose finiteness decides whether the update happens), optional clipping, update.
#pragma once

#include "cyclone/data/loader.h"
#include "cyclone/kernels/step_guard_math.h"
#include "cyclone/layers/module.h"
#include "cyclone/optim/optimizer.h"

namespace cyclone::train {

// Dynamic loss scaling on the host, for train_step (the step runner keeps its scale on the
// device): the backward starts from loss * scale(), the gradients are unscaled before the norm
// check and the update, an overflow skips the step; the rule is kernels::loss_scale_update, the
// one the device guard applies.
class LossScaler {
 public:
  explicit LossScaler(kernels::LossScaleConfig config = {})
      : config_(config), scale_(config.init_scale) {}
  double scale() const { return scale_; }
  double good_steps() const { return good_; }
  int64_t overflows() const { return overflows_; }
  // A resumed run's state (train/run_state.h).
  void restore(double scale, double good_steps) {
    scale_ = scale;
    good_ = good_steps;
  }
  void update(bool overflow) {
    overflows_ += overflow ? 1 : 0;
    kernels::loss_scale_update(config_, overflow, &scale_, &good_);
  }

 private:
  kernels::LossScaleConfig config_;
  double scale_, good_ = 0;
  int64_t overflows_ = 0;
};

// Throws unless every parameter `opt` updates is one of `model`'s (the same tensor, not a copy):
// an optimizer built from another model, or from this one before it was rebuilt, would train
// nothing and report success. `who` starts the message ("trainer", "lr range test").
void check_optimizer_fits_model(const Module& model, const optim::Optimizer& opt, const char* who);

struct StepOptions {
  double clip_grad_norm = 0;  // > 0: clip the global norm to this
  double label_smoothing = 0;
  bool accuracy = false;  // also compute the batch's top-1 accuracy
  // Loss scaling (float16 training): the caller's scaler, which lives across steps; null: none.
  LossScaler* loss_scaler = nullptr;
};

// In a data-parallel job (train/distributed.h) loss, accuracy and samples are those of the global
// batch (every rank's shard), gradients are averaged over it before the norm, and `stop` is true
// when any rank was asked to stop (Ctrl-C, SIGTERM): every rank returns the same values.
struct StepResult {
  double loss = 0;
  int64_t samples = 0;  // images in the (global) batch
  bool stop = false;    // an interrupt was requested (on any rank)
  double grad_norm = 0;
  double accuracy = -1;  // -1 when not asked for
  // False when the loss or the gradient norm was not finite: no update was made and the
  // gradients were released.
  bool applied = false;
  double loss_scale = 1;  // the scale of this step's backward (1 without a loss scaler)
};

// The optimizer's rate and momentum must already be set for this step. Gradients are zeroed
// (in place) before the backward pass.
StepResult train_step(Module& model, optim::Optimizer& optimizer, const data::Batch& batch,
                      const StepOptions& options = {});

namespace detail {
// train_step without its check_optimizer_fits_model, for callers that made it once before their
// loop (the trainer, the range test): the check walks every parameter's name, every step.
StepResult train_step_prechecked(Module& model, optim::Optimizer& optimizer,
                                 const data::Batch& batch, const StepOptions& options);
}  // namespace detail

}  // namespace cyclone::train
