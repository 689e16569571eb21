// Cyclical learning rates (Smith 2017, "Cyclical Learning Rates for Training Neural Networks"):
// triangular, triangular2, exp_range. torch.optim.lr_scheduler.CyclicLR with step_size_up =
// step_size_down = step_size, and the Keras CLR callback (bckenstler/CLR):
//   cycle = floor(1 + t / (2·step_size)),  x = 1 + t/(2·step_size) − cycle      (x ∈ [0, 1))
//   s = x / ½ on the way up (x ≤ ½), (x − 1) / (½ − 1) on the way down          (s ∈ [0, 1])
//   lr(t)       = base_lr + (max_lr − base_lr) · s · scale
//   momentum(t) = max_momentum − (max_momentum − base_momentum) · s · scale     (cycle_momentum)
// scale = 1 (triangular), 1/2^(cycle−1) (triangular2), γ^t (exp_range). The arithmetic follows
// CyclicLR.get_lr term by term so the numbers agree to the last bit or two.
//
// scale_mode (microDL / Keras CLR): "cycle" feeds the scale function the cycle number (counted
// from 1), "iterations" the step t. PyTorch fixes it by mode (cycle for triangular and
// triangular2, iterations for exp_range), which are the defaults here; naming it overrides.
//
// cycle_momentum defaults to false here, as in Smith's paper and the Keras callback: the momentum
// stays the optimizer's own. PyTorch's CyclicLR defaults to true (0.9 at the bottom of the rate,
// 0.8 at its top): give "cycle_momentum": true for that (base_momentum 0.8, max_momentum 0.9 are
// the defaults).
#include <cmath>

#include "cyclone/schedulers/factories.h"

namespace cyclone::schedulers {

namespace {

enum class Mode { kTriangular, kTriangular2, kExpRange };

class Cyclic final : public Policy {
 public:
  struct Config {
    Mode mode;
    double base_lr, max_lr;
    int64_t step_size;
    double gamma;
    bool scale_by_cycle;
    bool cycle_momentum;
    double base_momentum, max_momentum;
  };
  explicit Cyclic(const Config& c) : c_(c) {}

  std::string name() const override {
    switch (c_.mode) {
      case Mode::kTriangular:
        return "triangular";
      case Mode::kTriangular2:
        return "triangular2";
      case Mode::kExpRange:
        return "exp_range";
    }
    return "";
  }

  double lr(int64_t t) const override {
    check_step(t);
    const auto [s, scale] = shape(t);
    return c_.base_lr + (c_.max_lr - c_.base_lr) * s * scale;
  }

  std::optional<double> momentum(int64_t t) const override {
    check_step(t);
    if (!c_.cycle_momentum) return std::nullopt;
    const auto [s, scale] = shape(t);
    return c_.max_momentum - (c_.max_momentum - c_.base_momentum) * s * scale;
  }

  Params params() const override {
    Params p;
    p.set_text("policy", name())
        .set_number("base_lr", c_.base_lr)
        .set_number("max_lr", c_.max_lr)
        .set_integer("step_size", c_.step_size)
        .set_number("gamma", c_.gamma)
        .set_text("scale_mode", c_.scale_by_cycle ? "cycle" : "iterations")
        .set_boolean("cycle_momentum", c_.cycle_momentum)
        .set_number("base_momentum", c_.base_momentum)
        .set_number("max_momentum", c_.max_momentum);
    return p;
  }
  std::unique_ptr<Policy> clone() const override { return std::make_unique<Cyclic>(*this); }

 private:
  // The triangle's height s ∈ [0, 1] and the amplitude scale at step t.
  std::pair<double, double> shape(int64_t t) const {
    const double total = 2.0 * static_cast<double>(c_.step_size);
    const double ratio = static_cast<double>(c_.step_size) / total;  // ½, as PyTorch's step_ratio
    const double td = static_cast<double>(t);
    const double cycle = std::floor(1 + td / total);
    const double x = 1.0 + td / total - cycle;
    const double s = x <= ratio ? x / ratio : (x - 1) / (ratio - 1);
    const double arg = c_.scale_by_cycle ? cycle : td;
    double scale = 1.0;
    if (c_.mode == Mode::kTriangular2) scale = 1 / std::pow(2.0, arg - 1);
    if (c_.mode == Mode::kExpRange) scale = std::pow(c_.gamma, arg);
    return {s, scale};
  }

  Config c_;
};

std::unique_ptr<Policy> make_cyclic(const Params& p, Mode mode) {
  Cyclic::Config c{};
  c.mode = mode;
  c.base_lr = factories::rate(p, "base_lr");
  c.max_lr = factories::rate(p, "max_lr");
  p.require(
      c.max_lr >= c.base_lr, "max_lr",
      "must be >= base_lr (" + format_number(c.base_lr) + "), got " + format_number(c.max_lr));
  c.step_size = factories::positive_steps(p, "step_size");
  c.gamma = p.number("gamma", 1.0);
  // The amplitude is scaled by gamma per step or cycle: above 1 it would grow without bound (past
  // max_lr within a few hundred steps), never what a decaying exp_range means.
  p.require(c.gamma > 0 && c.gamma <= 1, "gamma",
            "must be in (0, 1] (the amplitude's decay; above 1 it grows past max_lr), got " +
                format_number(c.gamma));
  const std::string scale_mode =
      p.text("scale_mode", mode == Mode::kExpRange ? "iterations" : "cycle");
  p.require(scale_mode == "cycle" || scale_mode == "iterations", "scale_mode",
            "must be \"cycle\" or \"iterations\", got \"" + scale_mode + "\"");
  c.scale_by_cycle = scale_mode == "cycle";
  c.cycle_momentum = p.boolean("cycle_momentum", false);
  c.base_momentum = p.number("base_momentum", 0.8);
  c.max_momentum = p.number("max_momentum", 0.9);
  p.require(c.base_momentum >= 0, "base_momentum",
            "must be >= 0, got " + format_number(c.base_momentum));
  p.require(c.max_momentum >= c.base_momentum && c.max_momentum <= 1, "max_momentum",
            "must be in [base_momentum, 1], got " + format_number(c.max_momentum));
  return std::make_unique<Cyclic>(c);
}

}  // namespace

namespace factories {

std::unique_ptr<Policy> triangular(const Params& p) { return make_cyclic(p, Mode::kTriangular); }
std::unique_ptr<Policy> triangular2(const Params& p) { return make_cyclic(p, Mode::kTriangular2); }
std::unique_ptr<Policy> exp_range(const Params& p) { return make_cyclic(p, Mode::kExpRange); }

}  // namespace factories

}  // namespace cyclone::schedulers
