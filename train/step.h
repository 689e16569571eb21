// One training step, shared by the trainer and the range test: forward, loss, backward, the
// gradient norm (whose finiteness decides whether the update happens), optional clipping, update.
#pragma once

#include "cyclone/data/loader.h"
#include "cyclone/layers/module.h"
#include "cyclone/optim/optimizer.h"

namespace cyclone::train {

struct StepOptions {
  double clip_grad_norm = 0;  // > 0: clip the global norm to this
  double label_smoothing = 0;
  bool accuracy = false;  // also compute the batch's top-1 accuracy
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
};

// The optimizer's rate and momentum must already be set for this step. Gradients are zeroed
// (in place) before the backward pass.
StepResult train_step(Module& model, optim::Optimizer& optimizer, const data::Batch& batch,
                      const StepOptions& options = {});

}  // namespace cyclone::train
