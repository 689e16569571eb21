// The learning-rate range test (Smith 2017 §3.3; fastai's lr_find): the rate grows from start_lr
// to end_lr over num_steps steps, N = num_steps, u = min(t, N−1) / (N−1):
//   exp:    lr(t) = start_lr · (end_lr / start_lr)^u      (the usual choice: equal time per decade)
//   linear: lr(t) = start_lr + (end_lr − start_lr) · u
// lr(0) = start_lr and lr(N−1) = end_lr exactly; the test stops there, so later steps hold end_lr.
// The exponential ramp is evaluated in log space, exp(log start_lr + u · (log end_lr − log
// start_lr)): the ratio end_lr / start_lr overflows to inf for bounds like 1e-300 and 1e10, and
// every rate after the first with it.
// No PyTorch scheduler; the trainer's range test (train/) drives it and watches the loss.
#include <algorithm>
#include <cmath>

#include "cyclone/schedulers/factories.h"

namespace cyclone::schedulers {

namespace {

class RangeTest final : public Policy {
 public:
  RangeTest(double start, double end, int64_t steps, bool exponential)
      : start_(start), end_(end), steps_(steps), exponential_(exponential) {}
  std::string name() const override { return "range_test"; }
  double lr(int64_t t) const override {
    check_step(t);
    if (t >= steps_ - 1) return end_;
    if (t == 0) return start_;
    const double u = static_cast<double>(t) / static_cast<double>(steps_ - 1);
    if (exponential_) {
      const double log_start = std::log(start_);
      return std::exp(log_start + u * (std::log(end_) - log_start));
    }
    return start_ + (end_ - start_) * u;
  }
  Params params() const override {
    Params p;
    p.set_text("policy", name())
        .set_number("start_lr", start_)
        .set_number("end_lr", end_)
        .set_integer("num_steps", steps_)
        .set_text("mode", exponential_ ? "exp" : "linear");
    return p;
  }
  std::unique_ptr<Policy> clone() const override { return std::make_unique<RangeTest>(*this); }

 private:
  double start_, end_;
  int64_t steps_;
  bool exponential_;
};

}  // namespace

namespace factories {

std::unique_ptr<Policy> range_test(const Params& p) {
  const double start = rate(p, "start_lr");
  const double end = rate(p, "end_lr");
  const int64_t steps = p.integer("num_steps");
  p.require(steps >= 2, "num_steps", "must be >= 2, got " + std::to_string(steps));
  const std::string mode = p.text("mode", "exp");
  p.require(mode == "exp" || mode == "linear", "mode",
            "must be \"exp\" or \"linear\", got \"" + mode + "\"");
  if (mode == "exp") {
    p.require(start > 0, "start_lr",
              "must be > 0 for an exponential sweep, got " + format_number(start));
    p.require(end > 0, "end_lr", "must be > 0 for an exponential sweep, got " + format_number(end));
  }
  return std::make_unique<RangeTest>(start, end, steps, mode == "exp");
}

}  // namespace factories

}  // namespace cyclone::schedulers
