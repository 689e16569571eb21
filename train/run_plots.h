// The plots a run leaves in its log directory: the range test (lr_finder.svg), the momentum /
// weight-decay sweeps (lr_finder_<what>.svg) and the schedule of the training that follows
// (schedule.svg). Written with train/plot.h.
#pragma once

#include <string>
#include <vector>

#include "cyclone/schedulers/policy.h"
#include "cyclone/train/lr_finder.h"
#include "cyclone/train/trainer.h"

namespace cyclone::train {

// Smoothed loss against the rate on a log axis, the raw loss faint behind it, the suggestions
// marked, the y axis clipped at 1.5x the first smoothed loss so the final blow-up does not flatten
// the rest. Several runs (repeats) overlay in different colours.
void plot_lr_finder(const std::vector<const LrFinderResult*>& runs, const Suggestions& s,
                    const std::string& path, const std::string& title);

// One smoothed curve per value of the swept hyperparameter.
void plot_lr_sweep(const std::vector<SweepCurve>& curves, const std::string& what,
                   const std::string& path);

// lr (left axis; with `scaling`, as the trainer scales it for the global batch) and momentum
// (right axis, when the policy schedules it) over total_steps.
void plot_schedule(const schedulers::Policy& policy, int64_t total_steps, const std::string& path,
                   const TrainerOptions* scaling = nullptr);

}  // namespace cyclone::train
