// Policies run one after another: torch.optim.lr_scheduler.SequentialLR with milestones at the
// cumulative part lengths. Part i runs for `steps` steps from s_i = steps_0 + … + steps_{i−1} and
// sees its own step count:
//   lr(t) = part_i.lr(t − s_i)   for s_i <= t < s_{i+1}
// The last part runs on past its `steps` (which it may omit), as SequentialLR's last scheduler
// does. Typical: {"policy": "sequence", "parts": [{"policy": "linear", "start_lr": 0,
// "end_lr": 0.1, "total_steps": 500, "steps": 500}, {"policy": "cosine", "lr": 0.1,
// "total_steps": 9500, "steps": 9500}]}
#include <algorithm>
#include <cstdint>
#include <limits>

#include "cyclone/schedulers/factories.h"

namespace cyclone::schedulers {

namespace {

class Sequence final : public Policy {
 public:
  struct Part {
    std::shared_ptr<const Policy> policy;  // immutable, so copies of a Sequence may share it
    int64_t start;
    std::optional<int64_t> steps;  // absent only for the last part
  };
  explicit Sequence(std::vector<Part> parts) : parts_(std::move(parts)) {}

  std::string name() const override { return "sequence"; }
  double lr(int64_t t) const override {
    check_step(t);
    const Part& p = part_at(t);
    return p.policy->lr(t - p.start);
  }
  std::optional<double> momentum(int64_t t) const override {
    check_step(t);
    const Part& p = part_at(t);
    return p.policy->momentum(t - p.start);
  }
  void for_each_restart(int64_t end, const std::function<void(int64_t)>& f) const override {
    for (size_t i = 0; i < parts_.size(); ++i) {
      const Part& p = parts_[i];
      const int64_t stop = i + 1 < parts_.size() ? std::min(end, parts_[i + 1].start) : end;
      if (stop <= p.start) break;
      const int64_t offset = p.start;
      p.policy->for_each_restart(stop - p.start, [&f, offset](int64_t r) { f(offset + r); });
    }
  }
  Params params() const override {
    std::vector<Params> parts;
    for (const Part& p : parts_) {
      Params part = p.policy->params();
      if (p.steps) part.set_integer("steps", *p.steps);
      parts.push_back(std::move(part));
    }
    Params p;
    p.set_text("policy", name()).set_objects("parts", parts);
    return p;
  }
  std::unique_ptr<Policy> clone() const override { return std::make_unique<Sequence>(*this); }

 private:
  const Part& part_at(int64_t t) const {
    // The last part whose start is <= t (starts are strictly increasing; parts_[0].start = 0).
    auto it = std::upper_bound(parts_.begin(), parts_.end(), t,
                               [](int64_t v, const Part& p) { return v < p.start; });
    return *(it - 1);
  }

  std::vector<Part> parts_;
};

}  // namespace

namespace factories {

std::unique_ptr<Policy> sequence(const Params& p) {
  const std::vector<Params> specs = p.objects("parts");
  p.require(!specs.empty(), "parts", "must list at least one policy");
  std::vector<Sequence::Part> parts;
  int64_t start = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    const Params& spec = specs[i];
    const bool last = i + 1 == specs.size();
    std::optional<int64_t> steps;
    if (!last || spec.has("steps")) {
      steps = spec.integer("steps");  // "missing field 'steps'" for a middle part without it
      spec.require(*steps > 0, "steps", "must be > 0, got " + std::to_string(*steps));
      spec.require(*steps <= std::numeric_limits<int64_t>::max() - start, "steps",
                   "overflows the schedule length");
    }
    Params policy_spec = spec;
    policy_spec.erase("steps");  // `steps` belongs to the sequence, not to the part's policy
    std::unique_ptr<Policy> policy = make_policy(policy_spec);
    spec.require(!policy->metric_driven(), "policy",
                 "plateau is driven by a metric and cannot be a sequence part");
    parts.push_back({std::shared_ptr<const Policy>(std::move(policy)), start, steps});
    if (steps) start += *steps;
  }
  return std::make_unique<Sequence>(std::move(parts));
}

}  // namespace factories

}  // namespace cyclone::schedulers
