// Polynomial decay and its power-1 special case with free end points, the linear warm-up.
#include <algorithm>
#include <cmath>

#include "cyclone/schedulers/factories.h"

namespace cyclone::schedulers {

namespace {

// lr(t) = (lr − end_lr) · (1 − min(t, T)/T)^power + end_lr, T = total_steps.
// With end_lr = 0 this is torch.optim.lr_scheduler.PolynomialLR (total_iters = T, whose
// recursive get_lr equals this closed form); with end_lr it is TF's PolynomialDecay
// (cycle=False). The rate holds at end_lr from step T on.
class Polynomial final : public Policy {
 public:
  Polynomial(double lr, int64_t total, double power, double end_lr)
      : lr_(lr), total_(total), power_(power), end_lr_(end_lr) {}
  std::string name() const override { return "polynomial"; }
  double lr(int64_t t) const override {
    check_step(t);
    const double frac = static_cast<double>(std::min(t, total_)) / static_cast<double>(total_);
    return (lr_ - end_lr_) * std::pow(1.0 - frac, power_) + end_lr_;
  }
  Params params() const override {
    Params p;
    p.set_text("policy", name())
        .set_number("lr", lr_)
        .set_integer("total_steps", total_)
        .set_number("power", power_)
        .set_number("end_lr", end_lr_);
    return p;
  }
  std::unique_ptr<Policy> clone() const override { return std::make_unique<Polynomial>(*this); }

 private:
  double lr_;
  int64_t total_;
  double power_, end_lr_;
};

// lr(t) = start_lr + (end_lr − start_lr) · min(t, T)/T, T = total_steps.
// torch.optim.lr_scheduler.LinearLR with absolute end points: LinearLR(base_lr = end_lr,
// start_factor = start_lr/end_lr, end_factor = 1, total_iters = T). Reaches end_lr at step T
// and holds it, so it is the usual warm-up part of a `sequence`.
class Linear final : public Policy {
 public:
  Linear(double start, double end, int64_t total) : start_(start), end_(end), total_(total) {}
  std::string name() const override { return "linear"; }
  double lr(int64_t t) const override {
    check_step(t);
    const double frac = static_cast<double>(std::min(t, total_)) / static_cast<double>(total_);
    return start_ + (end_ - start_) * frac;
  }
  Params params() const override {
    Params p;
    p.set_text("policy", name())
        .set_number("start_lr", start_)
        .set_number("end_lr", end_)
        .set_integer("total_steps", total_);
    return p;
  }
  std::unique_ptr<Policy> clone() const override { return std::make_unique<Linear>(*this); }

 private:
  double start_, end_;
  int64_t total_;
};

}  // namespace

namespace factories {

std::unique_ptr<Policy> polynomial(const Params& p) {
  const double lr = rate(p, "lr");
  const int64_t total = positive_steps(p, "total_steps");
  const double power = p.number("power", 1.0);
  p.require(power > 0, "power", "must be > 0, got " + format_number(power));
  const double end_lr = rate(p, "end_lr", 0.0);
  return std::make_unique<Polynomial>(lr, total, power, end_lr);
}

std::unique_ptr<Policy> linear(const Params& p) {
  const double start = rate(p, "start_lr");
  const double end = rate(p, "end_lr");
  return std::make_unique<Linear>(start, end, positive_steps(p, "total_steps"));
}

}  // namespace factories

}  // namespace cyclone::schedulers
