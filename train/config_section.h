// Internal to the config reader (run_config.cpp, config_readers.cpp; not installed): reading one
// mapping of the config tree with every key accounted for, and the readers of its larger parts.
#pragma once

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cyclone/train/cli.h"
#include "cyclone/train/run.h"

namespace cyclone::train::detail {

using json = nlohmann::json;

// Canonical key path -> the spelling the file used, for the config being parsed, so errors name
// what the user wrote.
extern thread_local std::map<std::string, std::string> g_given_as;

// Reads the fields of one JSON object, remembering which were read, so that a key nobody asked
// for is an error naming it.
class Section {
 public:
  // A null section (YAML's "EarlyStopping:" with nothing under it) reads as an empty one.
  Section(const json& j, std::string path, std::string origin)
      : j_(j.is_null() ? empty() : j), path_(std::move(path)), origin_(std::move(origin)) {
    if (!j_.is_object()) fail(path_.empty() ? "the config" : path_, "must be a mapping");
  }
  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    const auto it = g_given_as.find(key);
    throw UsageError(origin_ + ": " + key +
                     (it == g_given_as.end() ? "" : " (written " + it->second + ")") + " " + what);
  }
  std::string key(const std::string& k) const { return path_.empty() ? k : path_ + "." + k; }
  bool has(const std::string& k) {
    used_.insert(k);
    return j_.contains(k);
  }
  const json& at(const std::string& k) {
    used_.insert(k);
    return j_.at(k);
  }
  std::string str(const std::string& k, const std::string& fallback, bool required = false) {
    if (!has(k)) {
      if (required) fail(key(k), "is required");
      return fallback;
    }
    if (!at(k).is_string()) fail(key(k), "must be a string, got " + at(k).dump());
    return at(k).get<std::string>();
  }
  double num(const std::string& k, double fallback, double lo = -INFINITY, double hi = INFINITY) {
    if (!has(k)) return fallback;
    if (!at(k).is_number()) fail(key(k), "must be a number, got " + at(k).dump());
    const double v = at(k).get<double>();
    if (!(v >= lo && v <= hi))
      fail(key(k), "= " + at(k).dump() + " is outside [" + format_number(lo) + ", " +
                       format_number(hi) + "]");
    return v;
  }
  int64_t integer(const std::string& k, int64_t fallback, int64_t lo = INT64_MIN) {
    if (!has(k)) return fallback;
    const json& v = at(k);
    if (!v.is_number_integer() &&
        !(v.is_number() && std::floor(v.get<double>()) == v.get<double>()))
      fail(key(k), "must be an integer, got " + v.dump());
    // Out of int64's range (a huge float, or an unsigned above 2^63 - 1): refused, not wrapped
    // (and a float cast past the range would be undefined behaviour).
    const bool too_big =
        v.is_number_unsigned()
            ? v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)
            : !v.is_number_integer() && !(std::fabs(v.get<double>()) < 9.2233720368547758e18);
    if (too_big) fail(key(k), "= " + v.dump() + " is too large for an integer");
    const int64_t x =
        v.is_number_integer() ? v.get<int64_t>() : static_cast<int64_t>(v.get<double>());
    if (x < lo) fail(key(k), "= " + std::to_string(x) + " must be >= " + std::to_string(lo));
    return x;
  }
  bool boolean(const std::string& k, bool fallback) {
    if (!has(k)) return fallback;
    if (!at(k).is_boolean()) fail(key(k), "must be true or false, got " + at(k).dump());
    return at(k).get<bool>();
  }
  std::vector<double> numbers(const std::string& k) {
    if (!has(k)) return {};
    if (!at(k).is_array()) fail(key(k), "must be a list of numbers");
    std::vector<double> out;
    for (const json& e : at(k)) {
      if (!e.is_number()) fail(key(k), "must be a list of numbers, got " + e.dump());
      out.push_back(e.get<double>());
    }
    return out;
  }
  std::vector<std::string> strings(const std::string& k) {
    if (!has(k)) return {};
    if (!at(k).is_array()) fail(key(k), "must be a list of strings");
    std::vector<std::string> out;
    for (const json& e : at(k)) {
      if (!e.is_string()) fail(key(k), "must be a list of strings, got " + e.dump());
      out.push_back(e.get<std::string>());
    }
    return out;
  }
  void check_all_used() const {
    std::vector<std::string> known(used_.begin(), used_.end());
    for (const auto& [k, v] : j_.items())
      if (!used_.count(k)) {
        const std::string near = closest_match(k, known);
        fail(key(k),
             "is not a known key" + (near.empty() ? "" : " (did you mean '" + key(near) + "'?)"));
      }
  }

 private:
  static const json& empty() {
    static const json e = json::object();
    return e;
  }
  const json& j_;
  std::string path_, origin_;
  std::set<std::string> used_;
};

// Cyclone's range-test options (the lr_finder section, or a phase's lr_find mapping).
void read_finder(Section& f, FinderSpec& spec, const std::string& path);
// trainer.callbacks (microDL's LearningRateScheduler, EarlyStopping, ModelCheckpoint,
// TensorBoard); `patience` is trainer.patience when given.
void read_callbacks(Section& t, RunSpec& s, bool& has_scheduler, std::optional<int64_t>& patience,
                    const std::string& origin);
LayerGroup read_group(const json& g, const std::string& path, const std::string& origin);
// trainer.phases[i]; lr_find: true takes the run's lr_finder options `s.finder`.
PhaseSpec read_phase(const json& j, size_t i, const RunSpec& s, const std::string& origin);
// Builds every policy (the run's, read from `policy_path`, or each phase's) and the optimizer
// from what the config gave, with stand-ins for what only the run knows (the range test's rate,
// the batches per epoch, the model's parameters), so that an unknown, missing or mistyped field
// is a UsageError naming the file and the key path before any data is read or file written
// (config_checks.cpp).
void check_policies_and_optimizer(const RunSpec& s, const std::string& policy_path,
                                  const std::string& origin);

}  // namespace cyclone::train::detail
