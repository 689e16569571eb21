// The policy registry: one function-local table (DESIGN.md habit 9), so no static initialiser can
// vanish when the library is linked statically.
#include <array>
#include <utility>

#include "cyclone/core/error.h"
#include "cyclone/core/spelling.h"
#include "cyclone/schedulers/factories.h"
#include "cyclone/schedulers/policy.h"

namespace cyclone::schedulers {

namespace {

using Factory = std::unique_ptr<Policy> (*)(const Params&);

const auto& registry() {
  static const std::array<std::pair<std::string_view, Factory>, 16> table{{
      {"constant", &factories::constant},
      {"step", &factories::step},
      {"multistep", &factories::multistep},
      {"exponential", &factories::exponential},
      {"inverse_time", &factories::inverse_time},
      {"polynomial", &factories::polynomial},
      {"cosine", &factories::cosine},
      {"sgdr", &factories::sgdr},
      {"triangular", &factories::triangular},
      {"triangular2", &factories::triangular2},
      {"exp_range", &factories::exp_range},
      {"one_cycle", &factories::one_cycle},
      {"range_test", &factories::range_test},
      {"linear", &factories::linear},
      {"sequence", &factories::sequence},
      {"plateau", &factories::plateau},
  }};
  return table;
}

std::string known_names() {
  std::string out;
  for (const auto& [name, f] : registry()) out += (out.empty() ? "" : ", ") + std::string(name);
  return out;
}

}  // namespace

void check_step(int64_t step) { CYCLONE_CHECK(step >= 0, "policy step must be >= 0, got ", step); }

std::vector<std::string> policy_names() {
  std::vector<std::string> out;
  for (const auto& [name, f] : registry()) out.emplace_back(name);
  return out;
}

double spec_momentum(const Params& spec, double fallback) {
  if (!spec.has("momentum")) return fallback;
  const double m = spec.number("momentum");
  spec.require(m >= 0 && m <= 1, "momentum", "must be in [0, 1], got " + format_number(m));
  return m;
}

std::unique_ptr<Policy> make_policy(const Params& spec_in) {
  Params spec = spec_in;  // a copy: the used-field bookkeeping is this call's own
  const std::string context = spec.context();
  CYCLONE_CHECK(spec.has("policy"), context, ": missing field 'policy' (one of ", known_names(),
                ")");
  const std::string name = spec.text("policy");
  for (const auto& [known, factory] : registry()) {
    if (known != name) continue;
    spec.set_context(context == "spec" ? "policy '" + name + "'"
                                       : context + " (policy '" + name + "')");
    spec_momentum(spec);  // validates it and marks it used
    std::unique_ptr<Policy> policy = factory(spec);
    spec.check_all_used();
    return policy;
  }
  const std::string near = closest_match(name, policy_names());
  CYCLONE_THROW(context, ": field 'policy': unknown policy '", name, "'",
                near.empty() ? "" : ": did you mean '" + near + "'?", " (known: ", known_names(),
                ")");
}

std::unique_ptr<Policy> make_policy(std::string_view json) {
  return make_policy(Params::parse(json));
}

namespace factories {

double rate(const Params& p, std::string_view key) {
  const double v = p.number(key);
  p.require(v >= 0, key, "must be a rate >= 0, got " + format_number(v));
  return v;
}
double rate(const Params& p, std::string_view key, double fallback) {
  return p.has(key) ? rate(p, key) : fallback;
}
int64_t positive_steps(const Params& p, std::string_view key) {
  const int64_t v = p.integer(key);
  p.require(v > 0, key, "must be > 0 steps, got " + std::to_string(v));
  return v;
}

}  // namespace factories

}  // namespace cyclone::schedulers
