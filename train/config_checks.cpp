// The config's policies and optimizer options, checked as soon as the file is read: a misspelt
// field must not cost a data load, a range test or the phases before the one it is in.
#include <cmath>

#include "cyclone/optim/optimizer.h"
#include "cyclone/schedulers/policy.h"
#include "cyclone/train/config_section.h"

namespace cyclone::train::detail {

namespace {

// Stands in for the batches per epoch (unknown until the data is loaded) when *_epochs counts
// become steps: large, so that a check on a step count (1cycle's pct_start · total_steps > 1)
// fails here only where it would also fail on a real dataset.
constexpr int64_t kStepsPerEpoch = 100000;

// `finder`: the range test whose suggestion the policy's "finder" rates stand for, or null when
// none runs before it (then a "finder" rate is an error). Its rate is not known yet, so the spec
// is built with stand-ins from the middle and the ends of the test's sweep. An unknown, missing or
// mistyped field is wrong whatever the rate; a value refused with one stand-in but not the same
// way with every other may be fine with the real rate (max_lr: "finder" against a fixed base_lr)
// and is left for the run to judge.
void check_policy(const std::string& policy_json, const std::string& path, const FinderSpec* finder,
                  const std::string& origin) {
  std::vector<std::optional<double>> rates = {std::nullopt};
  if (finder) {
    const double lo = finder->options.start_lr, hi = finder->options.end_lr;
    rates = {std::sqrt(lo) * std::sqrt(hi), lo, hi};
  }
  auto resolve = [&](std::optional<double> rate, int64_t steps) {
    try {
      return resolve_policy_json(policy_json, rate, steps);
    } catch (const UsageError& e) {
      throw UsageError(origin + ": " + path + ": " + e.message());
    }
  };
  // The same text with other stand-ins: the spec has none, and its errors are the run's own.
  const bool exact = resolve(rates[0] ? std::optional<double>(*rates[0] * 2) : std::nullopt, 1) ==
                     resolve(rates[0], kStepsPerEpoch);
  std::string first_value_error;
  bool same_value_error = true;
  for (size_t i = 0; i < rates.size(); ++i) {
    schedulers::Params spec = schedulers::Params::parse(resolve(rates[i], kStepsPerEpoch));
    spec.set_context(origin + ": " + path);
    try {
      schedulers::make_policy(spec);
      return;
    } catch (const schedulers::ValueError& e) {
      if (exact) throw UsageError(e.message());
      if (i == 0) first_value_error = e.message();
      same_value_error = same_value_error && e.message() == first_value_error;
    } catch (const Error& e) {  // unknown, missing or mistyped fields: wrong whatever the rate
      throw UsageError(e.message());
    }
  }
  if (same_value_error) throw UsageError(first_value_error);
}

// The optimizer is built over one stand-in parameter per group (the model's parameters come
// later), so that its names, types and values are checked; which parameters a group's prefixes
// select is checked when the model is built.
void check_optimizer(const RunSpec& s, const std::string& origin) {
  const std::string path = "trainer.optimizer";
  json oj = json::parse(s.optimizer_json);
  if (!oj.contains("lr")) oj["lr"] = 1e-3;
  if (!s.phases.empty() && oj.contains("groups"))
    throw UsageError(origin + ": " + path +
                     ".groups: with trainer.phases, give per-group rates as each phase's lr_mult");
  NamedTensors params;
  auto add = [&](const std::string& name) {
    Tensor p = Tensor::zeros(Shape{1}, DType::kFloat32, Device::cpu());
    p.set_requires_grad(true);
    params.emplace_back(name, p);
  };
  add("w");
  if (oj.contains("groups") && oj["groups"].is_array()) {
    json& groups = oj["groups"];
    for (size_t i = 0; i < groups.size(); ++i) {
      if (!groups[i].is_object() || !groups[i].contains("prefixes") ||
          !groups[i]["prefixes"].is_array() || groups[i]["prefixes"].empty())
        continue;  // left for the optimizer to refuse
      const std::string prefix = "group" + std::to_string(i) + ".";
      groups[i]["prefixes"] = json::array({prefix});
      add(prefix + "w");
    }
  }
  try {
    optim::make_optimizer(s.optimizer, std::move(params), oj.dump());
  } catch (const Error& e) {
    throw UsageError(origin + ": " + path + ": " + e.message());
  }
}

}  // namespace

void check_policies_and_optimizer(const RunSpec& s, const std::string& policy_path,
                                  const std::string& origin) {
  if (s.phases.empty()) {
    check_policy(s.policy_json, policy_path, s.finder.enabled ? &s.finder : nullptr, origin);
  } else {
    const FinderSpec* finder = nullptr;  // the latest lr_find phase's
    for (size_t i = 0; i < s.phases.size(); ++i) {
      const PhaseSpec& ph = s.phases[i];
      if (ph.lr_find) {
        finder = &ph.finder;
        continue;
      }
      check_policy(ph.policy_json, "trainer.phases[" + std::to_string(i) + "].policy", finder,
                   origin);
    }
  }
  check_optimizer(s, origin);
}

}  // namespace cyclone::train::detail
