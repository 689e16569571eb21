// Learning-rate and momentum policies: pure functions of the optimizer step (DESIGN.md, "Policies
// are data"). t = 0 is the first update; where a policy has a PyTorch namesake, lr(t) is what that
// scheduler reports after t calls to step(). A policy has no hidden state, so resuming at step k
// is just asking for lr(k); the one metric-driven policy, `plateau`, keeps its state in an
// explicit PlateauState the trainer owns (plateau.h).
//
//   auto policy = make_policy(R"({"policy": "cosine", "lr": 0.1, "total_steps": 1000})");
//   double lr = policy->lr(step);
//   std::string spec = policy->to_json();  // make_policy(spec) gives the same numbers
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cyclone/schedulers/params.h"

namespace cyclone::schedulers {

// What a policy sets at one step. `momentum` is empty for a policy that does not schedule it: the
// optimizer keeps its own.
struct Value {
  double lr = 0;
  std::optional<double> momentum = {};
};

class Policy {
 public:
  virtual ~Policy() = default;

  // The name it is registered under ("cosine", "one_cycle", ...).
  virtual std::string name() const = 0;
  // The learning rate at step t >= 0.
  virtual double lr(int64_t step) const = 0;
  // The momentum at step t, for policies that cycle it (CLR with cycle_momentum, 1cycle).
  virtual std::optional<double> momentum(int64_t /*step*/) const { return std::nullopt; }
  Value value(int64_t step) const { return {lr(step), momentum(step)}; }

  // Calls f with each step in [0, end) at which a warm restart begins (SGDR), in increasing order;
  // a visitor, so that a schedule of 10^8 one-step cycles need not be held whole.
  virtual void for_each_restart(int64_t /*end*/, const std::function<void(int64_t)>& /*f*/) const {}
  // Those steps as a list, for snapshot ensembles.
  std::vector<int64_t> restarts(int64_t end) const {
    std::vector<int64_t> out;
    for_each_restart(end, [&out](int64_t s) { out.push_back(s); });
    return out;
  }
  // True for policies driven by a metric the trainer reports (plateau): lr(t) is then only the
  // value before any report, and the trainer drives PlateauPolicy::report instead.
  virtual bool metric_driven() const { return false; }

  // The JSON object this policy was built from, every default filled in; make_policy(params())
  // rebuilds an identical policy.
  virtual Params params() const = 0;
  std::string to_json(int indent = -1) const { return params().dump(indent); }

  virtual std::unique_ptr<Policy> clone() const = 0;
};

// Builds the policy `spec` describes ({"policy": "<name>", ...}). Unknown names, missing, mistyped
// or out-of-range fields and unknown fields throw cyclone::Error naming the field. An optional
// "momentum" field (the optimizer's momentum, reported where the policy does not schedule it) is
// accepted on every spec; read it with spec_momentum.
std::unique_ptr<Policy> make_policy(const Params& spec);
std::unique_ptr<Policy> make_policy(std::string_view json);

// The names make_policy knows, in registry order.
std::vector<std::string> policy_names();

// The spec's "momentum" field (validated, in [0, 1]) or `fallback` when it has none.
double spec_momentum(const Params& spec, double fallback = 0.9);

// Throws unless step >= 0; every policy's lr/momentum calls it.
void check_step(int64_t step);

}  // namespace cyclone::schedulers
