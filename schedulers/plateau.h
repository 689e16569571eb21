// `plateau`: the one policy driven by a metric instead of the step
// (torch.optim.lr_scheduler.ReduceLROnPlateau). Its state is explicit: the trainer owns a
// PlateauState, reports each metric through PlateauPolicy::report, which returns the next state,
// and saves the state in its checkpoint (to_json / from_json), so a resumed run continues with
// exactly the rate, best value and counters it stopped with.
//
//   auto policy = make_policy(R"({"policy": "plateau", "lr": 0.1, "patience": 5})");
//   const auto& plateau = dynamic_cast<const PlateauPolicy&>(*policy);
//   PlateauState state = plateau.initial_state();
//   state = plateau.report(state, val_loss);   // once per evaluation
//   optimizer.set_lr(state.lr);
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cyclone/schedulers/policy.h"

namespace cyclone::schedulers {

struct PlateauState {
  double lr = 0;              // the rate in force now
  double best = 0;            // best metric so far (±inf before the first report)
  int64_t bad_reports = 0;    // reports since the last improvement (PyTorch's num_bad_epochs)
  int64_t cooldown_left = 0;  // reports still to ignore after a reduction (cooldown_counter)
  int64_t reports = 0;        // metrics reported so far (last_epoch)

  // JSON object; infinities are written as the strings "inf" / "-inf" (JSON has none).
  std::string to_json() const;
  static PlateauState from_json(std::string_view json);
  bool operator==(const PlateauState&) const = default;
};

// Fields (PyTorch's defaults): lr, factor (0.1), patience (10), threshold (1e-4), cooldown (0),
// min_lr (0), and, beyond the issue's list, mode ("min" | "max") and threshold_mode
// ("rel" | "abs") so accuracy can drive it too. One report:
//   better = metric < best·(1 − threshold) (min, rel) | metric < best − threshold (min, abs)
//          | metric > best·(1 + threshold) (max, rel) | metric > best + threshold (max, abs)
//   if better: best = metric, bad = 0 else bad += 1
//   if cooldown_left > 0: cooldown_left −= 1, bad = 0
//   if bad > patience: lr = max(lr·factor, min_lr) (only if that moves it by more than 1e-8),
//                      cooldown_left = cooldown, bad = 0
class PlateauPolicy final : public Policy {
 public:
  struct Config {
    double lr = 0, factor = 0.1;
    int64_t patience = 10;
    double threshold = 1e-4;
    int64_t cooldown = 0;
    double min_lr = 0;
    bool maximize = false, relative = true;
  };
  explicit PlateauPolicy(const Config& config) : c_(config) {}

  std::string name() const override { return "plateau"; }
  // With no metric reported the rate is `lr` at every step (what lr_schedule prints).
  double lr(int64_t step) const override;
  bool metric_driven() const override { return true; }
  Params params() const override;
  std::unique_ptr<Policy> clone() const override;

  PlateauState initial_state() const;
  // The state after one more metric (pure: the caller keeps the state).
  PlateauState report(const PlateauState& state, double metric) const;
  const Config& config() const { return c_; }

 private:
  Config c_;
};

}  // namespace cyclone::schedulers
