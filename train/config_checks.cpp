// The config's policies and optimizer options, checked as soon as the file is read: a misspelt
// field must not cost a data load, a range test or the phases before the one it is in.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <optional>

#include "cyclone/core/progress.h"
#include "cyclone/optim/optimizer.h"
#include "cyclone/schedulers/policy.h"
#include "cyclone/train/config_section.h"
#include "cyclone/train/run_detail.h"

namespace cyclone::train::detail {

namespace {

// Stands in for the batches per epoch (unknown until the data is loaded) when *_epochs counts
// become steps: large, so that a check on a step count (1cycle's pct_start · total_steps > 1)
// fails here only where it would also fail on a real dataset.
constexpr int64_t kStepsPerEpoch = 100000;

void check_policy(const std::string& policy_json, const std::string& path, const FinderSpec* finder,
                  const std::string& origin) {
  check_policy_builds(policy_json, std::nullopt, finder, kStepsPerEpoch, origin + ": " + path);
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

void check_policy_builds(const std::string& policy_json, std::optional<double> rate,
                         const FinderSpec* finder, int64_t steps_per_epoch,
                         const std::string& context) {
  std::vector<std::optional<double>> rates = {rate};
  if (!rate && finder) {
    // The rates the test can suggest: its sweep, and down to a tenth of its start (the *_div10
    // suggestions), on a 1-2-5 series so that a refusal quotes round numbers.
    const double lo = finder->options.start_lr / 10, hi = finder->options.end_lr;
    rates = {lo};
    for (int k = static_cast<int>(std::floor(std::log10(lo)));
         k <= static_cast<int>(std::ceil(std::log10(hi))) && k < 400; ++k)
      for (const char* m : {"1", "2", "5"}) {
        const double v = std::strtod((std::string(m) + "e" + std::to_string(k)).c_str(), nullptr);
        if (v > *rates.back() * (1 + 1e-9) && v < hi * (1 - 1e-9)) rates.push_back(v);
      }
    rates.push_back(hi);
  }
  std::vector<std::string> refusals;
  for (const std::optional<double>& r : rates) {
    std::string text;
    try {
      text = resolve_policy_json(policy_json, r, steps_per_epoch);
    } catch (const UsageError& e) {  // a "finder" rate where no range test runs first
      throw UsageError(context.empty() ? e.message() : context + ": " + e.message());
    }
    schedulers::Params spec = schedulers::Params::parse(text);
    if (!context.empty()) spec.set_context(context);
    try {
      schedulers::make_policy(spec);
      return;  // the run's own rate may well be one that fits
    } catch (const schedulers::ValueError& e) {
      refusals.push_back(e.message());
    } catch (const Error& e) {  // unknown, missing or mistyped fields: wrong whatever the rate
      throw UsageError(e.message());
    }
  }
  const std::string& middle = refusals[refusals.size() / 2];
  if (std::all_of(refusals.begin(), refusals.end(),
                  [&](const std::string& m) { return m == refusals.front(); }))
    throw UsageError(middle);
  throw UsageError(middle + ", for every rate the range test can suggest (" +
                   std::to_string(refusals.size()) + " tried, from " +
                   format_double("%g", rates.front().value()) + " to " +
                   format_double("%g", rates.back().value()) + ")");
}

void check_policies_and_optimizer(const RunSpec& s, const std::string& policy_path,
                                  const std::string& origin) {
  if (s.phases.empty()) {
    check_policy(s.policy_json, policy_path, s.finder.enabled ? &s.finder : nullptr, origin);
  } else {
    check_phase_policies(s, std::nullopt, kStepsPerEpoch, origin);
  }
  check_optimizer(s, origin);
}

void check_phase_policies(const RunSpec& s, std::optional<double> rate, int64_t steps_per_epoch,
                          const std::string& origin) {
  const FinderSpec* finder =
      nullptr;  // the latest lr_find phase's, whose rate is "finder" after it
  for (size_t i = 0; i < s.phases.size(); ++i) {
    const PhaseSpec& ph = s.phases[i];
    if (ph.lr_find) {
      finder = &ph.finder;
      rate.reset();
      continue;
    }
    const std::string path = "trainer.phases[" + std::to_string(i) + "].policy";
    check_policy_builds(ph.policy_json, rate, finder, steps_per_epoch,
                        origin.empty() ? path : origin + ": " + path);
  }
}

}  // namespace cyclone::train::detail
