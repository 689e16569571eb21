// The 1cycle policy (Smith & Topin 2017, "Super-Convergence"; fastai's two-phase variant),
// torch.optim.lr_scheduler.OneCycleLR with total_steps = T:
//   initial = max_lr / div_factor,  min = initial / final_div_factor
//   two phases:   0 → pT−1: initial → max_lr,   pT−1 → T−1: max_lr → min
//   three_phase:  0 → pT−1: initial → max_lr,   pT−1 → 2pT−2: max_lr → initial,
//                 2pT−2 → T−1: initial → min
// (p = pct_start; phase ends are fractional, as PyTorch's). Within a phase,
//   pct = (t − start) / (end − start),
//   cos:    lr = end_lr + (start_lr − end_lr)/2 · (1 + cos(π·pct))
//   linear: lr = (end_lr − start_lr) · pct + start_lr
// and momentum moves the opposite way: max_momentum → base_momentum while the rate rises,
// back to max_momentum while it falls (held at max_momentum in the third phase).
// OneCycleLR's last step is T−1; past it PyTorch extrapolates once and then raises, so here the
// value at T−1 (min) holds for every t >= T.
#include <algorithm>
#include <cmath>
#include <numbers>

#include "cyclone/schedulers/factories.h"

namespace cyclone::schedulers {

namespace {

class OneCycle final : public Policy {
 public:
  struct Config {
    double max_lr;
    int64_t total_steps;
    double pct_start, div_factor, final_div_factor;
    bool cosine;  // anneal: "cos" (true) or "linear"
    bool three_phase, cycle_momentum;
    double base_momentum, max_momentum;
  };
  explicit OneCycle(const Config& c) : c_(c) {
    const double initial = c.max_lr / c.div_factor;
    const double min = initial / c.final_div_factor;
    const double T = static_cast<double>(c.total_steps);
    const double p = c.pct_start;
    if (c.three_phase) {
      phases_ = {{p * T - 1, initial, c.max_lr, c.max_momentum, c.base_momentum},
                 {2 * p * T - 2, c.max_lr, initial, c.base_momentum, c.max_momentum},
                 {T - 1, initial, min, c.max_momentum, c.max_momentum}};
    } else {
      phases_ = {{p * T - 1, initial, c.max_lr, c.max_momentum, c.base_momentum},
                 {T - 1, c.max_lr, min, c.base_momentum, c.max_momentum}};
    }
  }

  std::string name() const override { return "one_cycle"; }
  double lr(int64_t t) const override { return at(t).first; }
  std::optional<double> momentum(int64_t t) const override {
    const double m = at(t).second;
    if (!c_.cycle_momentum) return std::nullopt;
    return m;
  }

  Params params() const override {
    Params p;
    p.set_text("policy", name())
        .set_number("max_lr", c_.max_lr)
        .set_integer("total_steps", c_.total_steps)
        .set_number("pct_start", c_.pct_start)
        .set_number("div_factor", c_.div_factor)
        .set_number("final_div_factor", c_.final_div_factor)
        .set_text("anneal", c_.cosine ? "cos" : "linear")
        .set_boolean("three_phase", c_.three_phase)
        .set_boolean("cycle_momentum", c_.cycle_momentum)
        .set_number("base_momentum", c_.base_momentum)
        .set_number("max_momentum", c_.max_momentum);
    return p;
  }
  std::unique_ptr<Policy> clone() const override { return std::make_unique<OneCycle>(*this); }

 private:
  struct Phase {
    double end_step, start_lr, end_lr, start_momentum, end_momentum;
  };

  double anneal(double start, double end, double pct) const {
    if (c_.cosine) return end + (start - end) / 2.0 * (std::cos(std::numbers::pi * pct) + 1);
    return (end - start) * pct + start;
  }

  // (lr, momentum) at step t, walking the phases as OneCycleLR.get_lr does.
  std::pair<double, double> at(int64_t t) const {
    check_step(t);
    const double step = static_cast<double>(std::min(t, c_.total_steps - 1));
    double start = 0.0;
    for (size_t i = 0; i < phases_.size(); ++i) {
      const Phase& ph = phases_[i];
      if (step <= ph.end_step || i + 1 == phases_.size()) {
        const double pct = (step - start) / (ph.end_step - start);
        return {anneal(ph.start_lr, ph.end_lr, pct),
                anneal(ph.start_momentum, ph.end_momentum, pct)};
      }
      start = ph.end_step;
    }
    return {0, 0};  // unreachable: the last phase always matches
  }

  Config c_;
  std::vector<Phase> phases_;
};

}  // namespace

namespace factories {

std::unique_ptr<Policy> one_cycle(const Params& p) {
  OneCycle::Config c{};
  c.max_lr = rate(p, "max_lr");
  c.total_steps = positive_steps(p, "total_steps");
  c.pct_start = p.number("pct_start", 0.3);
  p.require(c.pct_start > 0 && c.pct_start < 1, "pct_start",
            "must be in (0, 1), got " + format_number(c.pct_start));
  const double T = static_cast<double>(c.total_steps);
  // Each phase must span a positive number of steps, or OneCycleLR divides by zero or runs a
  // phase backwards.
  p.require(c.pct_start * T > 1, "pct_start",
            "times total_steps must be > 1 so the warm-up phase has a length, got " +
                format_number(c.pct_start) + " * " + std::to_string(c.total_steps));
  c.div_factor = p.number("div_factor", 25.0);
  p.require(c.div_factor > 0, "div_factor", "must be > 0, got " + format_number(c.div_factor));
  c.final_div_factor = p.number("final_div_factor", 1e4);
  p.require(c.final_div_factor > 0, "final_div_factor",
            "must be > 0, got " + format_number(c.final_div_factor));
  const std::string anneal = p.text("anneal", "cos");
  p.require(anneal == "cos" || anneal == "linear", "anneal",
            "must be \"cos\" or \"linear\", got \"" + anneal + "\"");
  c.cosine = anneal == "cos";
  c.three_phase = p.boolean("three_phase", false);
  if (c.three_phase) {
    p.require(2 * c.pct_start * T - 2 < T - 1, "pct_start",
              "must leave a third phase with three_phase (2·pct_start·total_steps − 2 < "
              "total_steps − 1), got " +
                  format_number(c.pct_start));
  }
  c.cycle_momentum = p.boolean("cycle_momentum", true);
  c.base_momentum = p.number("base_momentum", 0.85);
  c.max_momentum = p.number("max_momentum", 0.95);
  p.require(c.base_momentum >= 0, "base_momentum",
            "must be >= 0, got " + format_number(c.base_momentum));
  p.require(c.max_momentum >= c.base_momentum && c.max_momentum <= 1, "max_momentum",
            "must be in [base_momentum, 1], got " + format_number(c.max_momentum));
  return std::make_unique<OneCycle>(c);
}

}  // namespace factories

}  // namespace cyclone::schedulers
