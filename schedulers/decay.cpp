// The decays that only ever shrink the rate: constant, step, multistep, exponential, 1/t.
// PyTorch computes StepLR/MultiStepLR/ExponentialLR recursively (lr *= gamma at each boundary);
// the closed forms here equal them up to rounding (the golden tests allow 1e-12 relative).
#include <algorithm>
#include <cmath>

#include "cyclone/schedulers/factories.h"

namespace cyclone::schedulers {

namespace {

// lr(t) = lr.
class Constant final : public Policy {
 public:
  explicit Constant(double lr) : lr_(lr) {}
  std::string name() const override { return "constant"; }
  double lr(int64_t t) const override {
    check_step(t);
    return lr_;
  }
  Params params() const override {
    Params p;
    p.set_text("policy", name()).set_number("lr", lr_);
    return p;
  }
  std::unique_ptr<Policy> clone() const override { return std::make_unique<Constant>(*this); }

 private:
  double lr_;
};

// lr(t) = lr · γ^floor(t / step_size)                         torch.optim.lr_scheduler.StepLR
class Step final : public Policy {
 public:
  Step(double lr, int64_t step_size, double gamma)
      : lr_(lr), step_size_(step_size), gamma_(gamma) {}
  std::string name() const override { return "step"; }
  double lr(int64_t t) const override {
    check_step(t);
    return lr_ * std::pow(gamma_, static_cast<double>(t / step_size_));
  }
  Params params() const override {
    Params p;
    p.set_text("policy", name())
        .set_number("lr", lr_)
        .set_integer("step_size", step_size_)
        .set_number("gamma", gamma_);
    return p;
  }
  std::unique_ptr<Policy> clone() const override { return std::make_unique<Step>(*this); }

 private:
  double lr_;
  int64_t step_size_;
  double gamma_;
};

// lr(t) = lr · γ^(number of milestones m with m <= t)    torch.optim.lr_scheduler.MultiStepLR
// (bisect_right, so the rate drops at the milestone step itself).
class MultiStep final : public Policy {
 public:
  MultiStep(double lr, std::vector<int64_t> milestones, double gamma)
      : lr_(lr), milestones_(std::move(milestones)), gamma_(gamma) {}
  std::string name() const override { return "multistep"; }
  double lr(int64_t t) const override {
    check_step(t);
    const auto passed =
        std::upper_bound(milestones_.begin(), milestones_.end(), t) - milestones_.begin();
    return lr_ * std::pow(gamma_, static_cast<double>(passed));
  }
  Params params() const override {
    Params p;
    p.set_text("policy", name())
        .set_number("lr", lr_)
        .set_integers("milestones", milestones_)
        .set_number("gamma", gamma_);
    return p;
  }
  std::unique_ptr<Policy> clone() const override { return std::make_unique<MultiStep>(*this); }

 private:
  double lr_;
  std::vector<int64_t> milestones_;
  double gamma_;
};

// lr(t) = lr · γ^t                                       torch.optim.lr_scheduler.ExponentialLR
class Exponential final : public Policy {
 public:
  Exponential(double lr, double gamma) : lr_(lr), gamma_(gamma) {}
  std::string name() const override { return "exponential"; }
  double lr(int64_t t) const override {
    check_step(t);
    return lr_ * std::pow(gamma_, static_cast<double>(t));
  }
  Params params() const override {
    Params p;
    p.set_text("policy", name()).set_number("lr", lr_).set_number("gamma", gamma_);
    return p;
  }
  std::unique_ptr<Policy> clone() const override { return std::make_unique<Exponential>(*this); }

 private:
  double lr_, gamma_;
};

// lr(t) = lr / (1 + k·t): the "1/t decay" of Robbins–Monro step sizes (Keras InverseTimeDecay
// with decay_steps = 1, staircase off). No PyTorch namesake.
class InverseTime final : public Policy {
 public:
  InverseTime(double lr, double k) : lr_(lr), k_(k) {}
  std::string name() const override { return "inverse_time"; }
  double lr(int64_t t) const override {
    check_step(t);
    return lr_ / (1.0 + k_ * static_cast<double>(t));
  }
  Params params() const override {
    Params p;
    p.set_text("policy", name()).set_number("lr", lr_).set_number("k", k_);
    return p;
  }
  std::unique_ptr<Policy> clone() const override { return std::make_unique<InverseTime>(*this); }

 private:
  double lr_, k_;
};

double positive_gamma(const Params& p, double fallback) {
  const double g = p.has("gamma") ? p.number("gamma") : fallback;
  p.require(g > 0, "gamma", "must be > 0, got " + format_number(g));
  return g;
}

}  // namespace

namespace factories {

std::unique_ptr<Policy> constant(const Params& p) {
  return std::make_unique<Constant>(rate(p, "lr"));
}

std::unique_ptr<Policy> step(const Params& p) {
  const double lr = rate(p, "lr");
  const int64_t step_size = positive_steps(p, "step_size");
  return std::make_unique<Step>(lr, step_size, positive_gamma(p, 0.1));
}

std::unique_ptr<Policy> multistep(const Params& p) {
  const double lr = rate(p, "lr");
  std::vector<int64_t> milestones = p.integers("milestones");
  for (size_t i = 0; i < milestones.size(); ++i) {
    p.require(milestones[i] > 0, "milestones",
              "must hold steps > 0, got " + std::to_string(milestones[i]));
    p.require(i == 0 || milestones[i] > milestones[i - 1], "milestones",
              "must be strictly increasing, got " + std::to_string(milestones[i]) + " after " +
                  (i ? std::to_string(milestones[i - 1]) : ""));
  }
  return std::make_unique<MultiStep>(lr, std::move(milestones), positive_gamma(p, 0.1));
}

std::unique_ptr<Policy> exponential(const Params& p) {
  const double lr = rate(p, "lr");
  if (!p.has("gamma")) p.number("gamma");  // no default: throws "missing field 'gamma'"
  return std::make_unique<Exponential>(lr, positive_gamma(p, 1.0));
}

std::unique_ptr<Policy> inverse_time(const Params& p) {
  const double lr = rate(p, "lr");
  const double k = p.number("k");
  p.require(k >= 0, "k", "must be >= 0, got " + format_number(k));
  return std::make_unique<InverseTime>(lr, k);
}

}  // namespace factories

}  // namespace cyclone::schedulers
