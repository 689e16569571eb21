// The math of kernels/step_guard.h, once, as a __host__ __device__ function: the CPU
// implementation and the CUDA kernel both call step_guard_update, so their parity test compares
// the same arithmetic.
#pragma once

#include <cmath>
#include <cstdint>

#include "cyclone/core/hd.h"

namespace cyclone::kernels {

// Header of the float64 state (indices).
enum StepGuardHeader : int {
  kGuardCount = 0,       // steps recorded since the state was made
  kGuardHalted = 1,      // 1 once halted: every later gate is 0
  kGuardSkips = 2,       // consecutive non-finite gradient norms
  kGuardAvg = 3,         // the smoothing's running average
  kGuardPow = 4,         // b^k of the smoothing (1 before the first point)
  kGuardBest = 5,        // the smallest smoothed loss so far (+inf before)
  kGuardApplied = 6,     // steps with gate 1
  kGuardReason = 7,      // why halted: StepGuardHalt
  kGuardHaltStep = 8,    // the count of the step that halted
  kGuardLossScale = 9,   // loss scaling: the current scale (0 until the first step sets it)
  kGuardGoodSteps = 10,  // loss scaling: steps without overflow since the scale last changed
  kGuardOverflows = 11,  // loss scaling: steps skipped because the scaled gradients overflowed
  kStepGuardHeader = 16  // header size (room to grow without moving the ring)
};
// Fields of one ring slot.
enum StepGuardField : int {
  kGuardLoss = 0,
  kGuardNorm = 1,
  kGuardCorrect = 2,
  kGuardGate = 3,       // 1: the update was made
  kGuardSmoothed = 4,   // the smoothed loss after this step (NaN when the step was skipped)
  kGuardScaleUsed = 5,  // the loss scale of this step's backward (1 without loss scaling)
  kStepGuardFields = 6
};
enum StepGuardHalt : int { kHaltNone = 0, kHaltLoss = 1, kHaltSkips = 2, kHaltDiverged = 3 };

// Dynamic loss scaling, for float16 training (torch.cuda.amp.GradScaler's rule and defaults): the
// backward runs on loss * scale so that small float16 gradients do not underflow; the gradients
// are unscaled (multiplied by 1 / scale) before the update.
struct LossScaleConfig {
  double init_scale = 65536.0;  // 2^16
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
};

// After a step whose gradients came from loss * *scale: an overflow (a non-finite gradient)
// multiplies the scale by backoff_factor and restarts the count of good steps; otherwise the count
// grows, and growth_interval good steps in a row multiply the scale by growth_factor.
CYCLONE_HD void loss_scale_update(const LossScaleConfig& c, bool overflow, double* scale,
                                  double* good) {
  if (overflow) {
    *scale *= c.backoff_factor;
    *good = 0;
    return;
  }
  *good += 1;
  if (*good >= static_cast<double>(c.growth_interval)) {
    *scale *= c.growth_factor;
    *good = 0;
  }
}

// Launch arguments (fixed for a captured step).
struct StepGuardConfig {
  double clip_norm = 0;                // > 0: clip the global gradient norm to this
  double smooth_beta = 0.98;           // the range test's loss smoothing
  double diverge_th = 0;               // > 0: halt when smoothed > diverge_th * best
  int64_t max_skips = 0;               // > 0: halt after this many non-finite norms in a row
  bool halt_on_nonfinite_loss = true;  // false: a non-finite loss is a skip (the range test)
  int64_t window = 1;                  // ring slots
  // Loss scaling: grad_sq is of gradients scaled by the state's scale (see step_guard.h).
  bool loss_scaling = false;
  LossScaleConfig loss_scale;
};

CYCLONE_HD bool guard_finite(double x) { return x - x == 0; }  // false for NaN and inf

// One step on `state` (see step_guard.h). Writes *gate and *scale, and with loss scaling the scale
// for the next step's backward to *loss_scale.
CYCLONE_HD void step_guard_update(const StepGuardConfig& cfg, double loss, double grad_sq,
                                  double correct, double* state, float* gate, float* scale,
                                  float* loss_scale = nullptr) {
  using std::sqrt;
  double s = 1;  // the scale this step's gradients carry
  if (cfg.loss_scaling) {
    if (state[kGuardLossScale] == 0) state[kGuardLossScale] = cfg.loss_scale.init_scale;
    s = state[kGuardLossScale];
  }
  const double norm = (grad_sq >= 0 ? sqrt(grad_sq) : grad_sq) / s;  // NaN stays NaN
  const auto count = static_cast<int64_t>(state[kGuardCount]);
  const bool live = state[kGuardHalted] == 0;
  bool apply = live;
  double smoothed = NAN;
  auto halt = [&](int reason) {
    state[kGuardHalted] = 1;
    state[kGuardReason] = reason;
    state[kGuardHaltStep] = static_cast<double>(count);
  };
  if (apply && !guard_finite(loss) && cfg.halt_on_nonfinite_loss) {
    apply = false;
    halt(kHaltLoss);
  } else if (apply && (!guard_finite(loss) || !guard_finite(norm))) {
    apply = false;
    // With loss scaling, scaled gradients that overflow while the scale is above 1 are the
    // scale's doing: it backs off below, and the skip does not count toward max_skips.
    const bool overflow = cfg.loss_scaling && guard_finite(loss);
    if (overflow) state[kGuardOverflows] += 1;
    if (!overflow || s <= 1) {
      state[kGuardSkips] += 1;
      if (cfg.max_skips > 0 && state[kGuardSkips] >= static_cast<double>(cfg.max_skips))
        halt(kHaltSkips);
    }
  } else if (apply) {
    state[kGuardSkips] = 0;
    state[kGuardApplied] += 1;
    const double b = cfg.smooth_beta;
    state[kGuardAvg] = b * state[kGuardAvg] + (1 - b) * loss;
    state[kGuardPow] *= b;
    smoothed = state[kGuardAvg] / (1 - state[kGuardPow]);
    if (smoothed < state[kGuardBest]) state[kGuardBest] = smoothed;
    if (cfg.diverge_th > 0 && smoothed > cfg.diverge_th * state[kGuardBest]) halt(kHaltDiverged);
  }
  *gate = apply ? 1.f : 0.f;
  // The factor the gradients are multiplied by: unscaling times clipping (of the true norm).
  const double clip =
      apply && cfg.clip_norm > 0 && norm > cfg.clip_norm ? cfg.clip_norm / (norm + 1e-6) : 1.0;
  *scale = static_cast<float>(apply ? clip / s : 1.0);
  if (cfg.loss_scaling && live && guard_finite(loss))
    loss_scale_update(cfg.loss_scale, !guard_finite(norm), &state[kGuardLossScale],
                      &state[kGuardGoodSteps]);
  if (cfg.loss_scaling && loss_scale) *loss_scale = static_cast<float>(state[kGuardLossScale]);
  const int64_t window = cfg.window > 0 ? cfg.window : 1;
  double* slot = state + kStepGuardHeader + (count % window) * kStepGuardFields;
  slot[kGuardLoss] = loss;
  slot[kGuardNorm] = norm;
  slot[kGuardCorrect] = correct;
  slot[kGuardGate] = apply ? 1 : 0;
  slot[kGuardSmoothed] = smoothed;
  slot[kGuardScaleUsed] = s;
  state[kGuardCount] = static_cast<double>(count + 1);
}

}  // namespace cyclone::kernels
