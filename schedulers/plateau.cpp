// ReduceLROnPlateau as a pure transition on an explicit state (plateau.h has the rules).
#include "cyclone/schedulers/plateau.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "cyclone/core/error.h"
#include "cyclone/schedulers/factories.h"

namespace cyclone::schedulers {

namespace {

// PyTorch's eps: a reduction smaller than this is skipped (the rate has reached min_lr).
constexpr double kMinChange = 1e-8;

}  // namespace

double PlateauPolicy::lr(int64_t step) const {
  check_step(step);
  return c_.lr;
}

Params PlateauPolicy::params() const {
  Params p;
  p.set_text("policy", name())
      .set_number("lr", c_.lr)
      .set_number("factor", c_.factor)
      .set_integer("patience", c_.patience)
      .set_number("threshold", c_.threshold)
      .set_integer("cooldown", c_.cooldown)
      .set_number("min_lr", c_.min_lr)
      .set_text("mode", c_.maximize ? "max" : "min")
      .set_text("threshold_mode", c_.relative ? "rel" : "abs");
  return p;
}

std::unique_ptr<Policy> PlateauPolicy::clone() const {
  return std::make_unique<PlateauPolicy>(*this);
}

PlateauState PlateauPolicy::initial_state() const {
  PlateauState s;
  s.lr = c_.lr;
  s.best = c_.maximize ? -std::numeric_limits<double>::infinity()
                       : std::numeric_limits<double>::infinity();
  return s;
}

PlateauState PlateauPolicy::report(const PlateauState& state, double metric) const {
  PlateauState s = state;
  s.reports += 1;
  // Comparisons with NaN are false, so a NaN metric counts as no improvement, as in PyTorch.
  bool better;
  if (!c_.maximize) {
    better = c_.relative ? metric < s.best * (1 - c_.threshold) : metric < s.best - c_.threshold;
  } else {
    better = c_.relative ? metric > s.best * (c_.threshold + 1) : metric > s.best + c_.threshold;
  }
  if (better) {
    s.best = metric;
    s.bad_reports = 0;
  } else {
    s.bad_reports += 1;
  }
  if (s.cooldown_left > 0) {
    s.cooldown_left -= 1;
    s.bad_reports = 0;  // ignore bad reports while cooling down
  }
  if (s.bad_reports > c_.patience) {
    const double reduced = std::max(s.lr * c_.factor, c_.min_lr);
    if (s.lr - reduced > kMinChange) s.lr = reduced;
    s.cooldown_left = c_.cooldown;
    s.bad_reports = 0;
  }
  return s;
}

std::string PlateauState::to_json() const {
  Params p;
  p.set_number("lr", lr);
  if (std::isinf(best)) {
    p.set_text("best", best > 0 ? "inf" : "-inf");
  } else {
    p.set_number("best", best);
  }
  p.set_integer("bad_reports", bad_reports)
      .set_integer("cooldown_left", cooldown_left)
      .set_integer("reports", reports);
  return p.dump();
}

PlateauState PlateauState::from_json(std::string_view json) {
  Params p = Params::parse(json);
  p.set_context("plateau state");
  PlateauState s;
  s.lr = factories::rate(p, "lr");
  const std::string best = p.has("best") && !p.has_number("best") ? p.text("best") : "";
  if (best.empty()) {
    s.best = p.number("best");
  } else {
    p.require(best == "inf" || best == "-inf", "best",
              "must be a number, \"inf\" or \"-inf\", got \"" + best + "\"");
    s.best = (best == "inf" ? 1 : -1) * std::numeric_limits<double>::infinity();
  }
  s.bad_reports = p.integer("bad_reports");
  s.cooldown_left = p.integer("cooldown_left");
  s.reports = p.integer("reports");
  p.require(s.bad_reports >= 0, "bad_reports", "must be >= 0");
  p.require(s.cooldown_left >= 0, "cooldown_left", "must be >= 0");
  p.require(s.reports >= 0, "reports", "must be >= 0");
  p.check_all_used();
  return s;
}

namespace factories {

std::unique_ptr<Policy> plateau(const Params& p) {
  PlateauPolicy::Config c;
  c.lr = rate(p, "lr");
  c.factor = p.number("factor", 0.1);
  p.require(c.factor > 0 && c.factor < 1, "factor",
            "must be in (0, 1), got " + format_number(c.factor));
  c.patience = p.integer("patience", 10);
  p.require(c.patience >= 0, "patience", "must be >= 0, got " + std::to_string(c.patience));
  c.threshold = p.number("threshold", 1e-4);
  p.require(c.threshold >= 0, "threshold", "must be >= 0, got " + format_number(c.threshold));
  c.cooldown = p.integer("cooldown", 0);
  p.require(c.cooldown >= 0, "cooldown", "must be >= 0, got " + std::to_string(c.cooldown));
  c.min_lr = rate(p, "min_lr", 0.0);
  const std::string mode = p.text("mode", "min");
  p.require(mode == "min" || mode == "max", "mode",
            "must be \"min\" or \"max\", got \"" + mode + "\"");
  c.maximize = mode == "max";
  const std::string tm = p.text("threshold_mode", "rel");
  p.require(tm == "rel" || tm == "abs", "threshold_mode",
            "must be \"rel\" or \"abs\", got \"" + tm + "\"");
  c.relative = tm == "rel";
  return std::make_unique<PlateauPolicy>(c);
}

}  // namespace factories

}  // namespace cyclone::schedulers
