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
  kStepGuardHeader = 16  // header size (room to grow without moving the ring)
};
// Fields of one ring slot.
enum StepGuardField : int {
  kGuardLoss = 0,
  kGuardNorm = 1,
  kGuardCorrect = 2,
  kGuardGate = 3,      // 1: the update was made
  kGuardSmoothed = 4,  // the smoothed loss after this step (NaN when the step was skipped)
  kStepGuardFields = 5
};
enum StepGuardHalt : int { kHaltNone = 0, kHaltLoss = 1, kHaltSkips = 2, kHaltDiverged = 3 };

// Launch arguments (fixed for a captured step).
struct StepGuardConfig {
  double clip_norm = 0;                // > 0: clip the global gradient norm to this
  double smooth_beta = 0.98;           // the range test's loss smoothing
  double diverge_th = 0;               // > 0: halt when smoothed > diverge_th * best
  int64_t max_skips = 0;               // > 0: halt after this many non-finite norms in a row
  bool halt_on_nonfinite_loss = true;  // false: a non-finite loss is a skip (the range test)
  int64_t window = 1;                  // ring slots
};

CYCLONE_HD bool guard_finite(double x) { return x - x == 0; }  // false for NaN and inf

// One step on `state` (see step_guard.h). Writes *gate and *scale.
CYCLONE_HD void step_guard_update(const StepGuardConfig& cfg, double loss, double grad_sq,
                                  double correct, double* state, float* gate, float* scale) {
  using std::sqrt;
  const double norm = grad_sq >= 0 ? sqrt(grad_sq) : grad_sq;  // NaN stays NaN
  const auto count = static_cast<int64_t>(state[kGuardCount]);
  bool apply = state[kGuardHalted] == 0;
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
    state[kGuardSkips] += 1;
    if (cfg.max_skips > 0 && state[kGuardSkips] >= static_cast<double>(cfg.max_skips))
      halt(kHaltSkips);
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
  *scale = apply && cfg.clip_norm > 0 && norm > cfg.clip_norm
               ? static_cast<float>(cfg.clip_norm / (norm + 1e-6))
               : 1.f;
  const int64_t window = cfg.window > 0 ? cfg.window : 1;
  double* slot = state + kStepGuardHeader + (count % window) * kStepGuardFields;
  slot[kGuardLoss] = loss;
  slot[kGuardNorm] = norm;
  slot[kGuardCorrect] = correct;
  slot[kGuardGate] = apply ? 1 : 0;
  slot[kGuardSmoothed] = smoothed;
  state[kGuardCount] = static_cast<double>(count + 1);
}

}  // namespace cyclone::kernels
