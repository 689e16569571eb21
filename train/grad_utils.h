// Gradient bookkeeping a training step needs between backward() and the optimizer: the global
// norm (whose finiteness decides whether the step is taken) and norm clipping.
#pragma once

#include "cyclone/core/safetensors.h"

namespace cyclone::train {

// sqrt(sum over every defined gradient of sum(g^2)), torch.nn.utils.clip_grad_norm_'s total norm
// (norm_type 2). NaN or inf when any gradient element is not finite. One read-back to the host.
double grad_norm(const NamedTensors& params);

// Scales every gradient by max_norm / (norm + 1e-6) when norm > max_norm (PyTorch's formula);
// `norm` is grad_norm(params), computed by the caller, who also decides what a non-finite norm
// means (the trainer skips the step). Returns the scale applied (1 when none).
double clip_grad_norm(const NamedTensors& params, double norm, double max_norm);

// The device-side pair of the two above, for steps the host does not wait for
// (train/step_runner.h): the sum of squares of every defined gradient as one float32 element on
// their device (undefined when none has a gradient; all gradients must share one device), and
// every gradient multiplied by `scale` (one float32 element on that device).
Tensor grad_sq_sum(const NamedTensors& params);
void scale_grads(const NamedTensors& params, const Tensor& scale);
// Every defined gradient multiplied by a host factor (loss scaling's unscale in train_step).
void scale_grads(const NamedTensors& params, double factor);

}  // namespace cyclone::train
