// Cosine annealing, single (cosine) and with warm restarts (sgdr).
#include <cmath>
#include <limits>
#include <numbers>

#include "cyclone/schedulers/factories.h"

namespace cyclone::schedulers {

namespace {

// lr(t) = min_lr + (lr − min_lr) · (1 + cos(π·t/T)) / 2, T = total_steps.
// torch.optim.lr_scheduler.CosineAnnealingLR (T_max = T, eta_min = min_lr). PyTorch's get_lr is
// recursive, lr_t = (1 + cos(πt/T)) / (1 + cos(π(t−1)/T)) · (lr_{t−1} − η_min) + η_min, with a
// special case at the trough; it telescopes to this closed form (its _get_closed_form_lr), so
// past T the rate rises again with period 2T exactly as PyTorch's does. Use `sequence` or `sgdr`
// for anything else after T.
class Cosine final : public Policy {
 public:
  Cosine(double lr, int64_t total, double min_lr) : lr_(lr), total_(total), min_lr_(min_lr) {}
  std::string name() const override { return "cosine"; }
  double lr(int64_t t) const override {
    check_step(t);
    // Same association as PyTorch: (π·t)/T, then (lr − min)·(1 + cos)/2.
    const double angle = std::numbers::pi * static_cast<double>(t) / static_cast<double>(total_);
    return min_lr_ + (lr_ - min_lr_) * (1 + std::cos(angle)) / 2;
  }
  Params params() const override {
    Params p;
    p.set_text("policy", name())
        .set_number("lr", lr_)
        .set_integer("total_steps", total_)
        .set_number("min_lr", min_lr_);
    return p;
  }
  std::unique_ptr<Policy> clone() const override { return std::make_unique<Cosine>(*this); }

 private:
  double lr_;
  int64_t total_;
  double min_lr_;
};

// SGDR (Loshchilov & Hutter 2017), torch.optim.lr_scheduler.CosineAnnealingWarmRestarts with
// T_0 = cycle_len, T_mult = cycle_mult, eta_min = min_lr:
//   lr(t) = min_lr + (lr − min_lr) · (1 + cos(π·T_cur/T_i)) / 2
// where cycle i lasts T_i = cycle_len · cycle_mult^i steps and T_cur counts steps since the last
// restart. PyTorch's step() advances T_cur by one and wraps it at T_i; walking the cycle lengths
// from 0 gives the same integers without the state.
class Sgdr final : public Policy {
 public:
  Sgdr(double lr, double min_lr, int64_t cycle_len, int64_t cycle_mult)
      : lr_(lr), min_lr_(min_lr), cycle_len_(cycle_len), cycle_mult_(cycle_mult) {}
  std::string name() const override { return "sgdr"; }

  double lr(int64_t t) const override {
    check_step(t);
    const auto [start, len] = cycle_at(t);
    const double angle =
        std::numbers::pi * static_cast<double>(t - start) / static_cast<double>(len);
    return min_lr_ + (lr_ - min_lr_) * (1 + std::cos(angle)) / 2;
  }

  void for_each_restart(int64_t end, const std::function<void(int64_t)>& f) const override {
    int64_t start = 0, len = cycle_len_;
    while (true) {
      if (len > std::numeric_limits<int64_t>::max() - start) break;
      start += len;
      if (start >= end) break;
      f(start);
      if (len > std::numeric_limits<int64_t>::max() / cycle_mult_) break;
      len *= cycle_mult_;
    }
  }

  Params params() const override {
    Params p;
    p.set_text("policy", name())
        .set_number("lr", lr_)
        .set_number("min_lr", min_lr_)
        .set_integer("cycle_len", cycle_len_)
        .set_integer("cycle_mult", cycle_mult_);
    return p;
  }
  std::unique_ptr<Policy> clone() const override { return std::make_unique<Sgdr>(*this); }

 private:
  // The first step and length of the cycle holding step t.
  std::pair<int64_t, int64_t> cycle_at(int64_t t) const {
    if (cycle_mult_ == 1) return {t - t % cycle_len_, cycle_len_};
    int64_t start = 0, len = cycle_len_;
    // Lengths grow geometrically, so this runs O(log t) times; the guards stop before overflow
    // (t < start + len holds by then because t itself fits in int64).
    while (len <= std::numeric_limits<int64_t>::max() - start && t >= start + len) {
      start += len;
      if (len > std::numeric_limits<int64_t>::max() / cycle_mult_) break;
      len *= cycle_mult_;
    }
    return {start, len};
  }

  double lr_, min_lr_;
  int64_t cycle_len_, cycle_mult_;
};

}  // namespace

namespace factories {

std::unique_ptr<Policy> cosine(const Params& p) {
  const double lr = rate(p, "lr");
  const int64_t total = positive_steps(p, "total_steps");
  return std::make_unique<Cosine>(lr, total, rate(p, "min_lr", 0.0));
}

std::unique_ptr<Policy> sgdr(const Params& p) {
  const double lr = rate(p, "lr");
  const double min_lr = rate(p, "min_lr", 0.0);
  const int64_t cycle_len = positive_steps(p, "cycle_len");
  const int64_t cycle_mult = p.integer("cycle_mult", 1);
  p.require(cycle_mult >= 1, "cycle_mult",
            "must be an integer >= 1 (as CosineAnnealingWarmRestarts' T_mult), got " +
                std::to_string(cycle_mult));
  return std::make_unique<Sgdr>(lr, min_lr, cycle_len, cycle_mult);
}

}  // namespace factories

}  // namespace cyclone::schedulers
