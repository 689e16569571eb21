// Device-side bookkeeping of one training step, so that a step (and a CUDA graph of it) needs no
// host read: what the host used to decide after reading the loss and the gradient norm back is
// decided here, on the device, and recorded in a ring the host reads every N steps.
//
// Per step, from the loss L, the sum of squared gradients G and the batch's correct count c
// (math in kernels/step_guard_math.h, shared by the CPU loop and the one-thread CUDA kernel):
//   norm = sqrt(G)
//   halted already, or L not finite (halt_on_nonfinite_loss), or norm not finite -> gate = 0
//     (no update this step; a non-finite norm counts toward max_skips consecutive skips);
//   otherwise gate = 1, scale = clip / (norm + 1e-6) when clip > 0 and norm > clip, else 1
//     (torch.nn.utils.clip_grad_norm_), and the smoothed loss of the range test advances:
//     avg = b avg + (1 - b) L, smoothed = avg / (1 - b^k), best = min(best, smoothed), and
//     smoothed > diverge_th * best latches `halted` (fast.ai / Smith's stopping rule).
//   The record {L, norm, c, gate, smoothed} goes to ring slot (count mod window).
// Once halted, every later step of the window gets gate 0, so the weights stay those the host
// would have kept had it looked after the halting step.
// Loss scaling (cfg.loss_scaling, float16 training): the gradients were computed from loss * S,
// S the state's scale (cfg.loss_scale.init_scale at first). The norm above is the true one,
// sqrt(G) / S, and scale includes the unscaling 1 / S. A non-finite norm with a finite loss is an
// overflow: the step is skipped and S backs off (counting toward max_skips only once S <= 1);
// growth_interval good steps in a row grow S (kernels/step_guard_math.h, GradScaler's rule). The
// new S is written to `loss_scale` for the next backward.
// Cost: one thread, ~30 flops, ~100 bytes: a launch, nothing else.
#pragma once

#include "cyclone/core/context.h"
#include "cyclone/core/tensor.h"
#include "cyclone/kernels/step_guard_math.h"

namespace cyclone::kernels {

// A fresh state for `window` ring slots (float64 [kStepGuardHeader + kStepGuardFields * window],
// zero counters, best = +inf) on `device`.
Tensor step_guard_state(int64_t window, Device device);

// One step. `loss`: one float32/float64 element; `grad_sq`: one float32 element (may be
// undefined: treated as 0, no gradient); `correct`: one int32 element or undefined (recorded 0);
// `state` from step_guard_state; `gate` and `scale`: one float32 element each, written;
// `loss_scale`: one float32 element, written with loss scaling (required then, else unused). All
// on one device.
void step_guard(Context& ctx, const StepGuardConfig& cfg, const Tensor& loss, const Tensor& grad_sq,
                const Tensor& correct, const Tensor& state, const Tensor& gate, const Tensor& scale,
                const Tensor& loss_scale = Tensor());

}  // namespace cyclone::kernels
