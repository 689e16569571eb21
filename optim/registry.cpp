// make_optimizer: the one table of optimizer names (DESIGN.md habit 9), options from JSON.
#include <functional>
#include <nlohmann/json.hpp>
#include <set>

#include "cyclone/core/spelling.h"
#include "cyclone/optim/adam.h"
#include "cyclone/optim/nadam.h"
#include "cyclone/optim/optimizer.h"
#include "cyclone/optim/rmsprop.h"
#include "cyclone/optim/sgd.h"

namespace cyclone::optim {

namespace {

using json = nlohmann::json;

std::string join(const std::set<std::string>& names) {
  std::string s;
  for (const std::string& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

// Reads the keys of `j`, remembering which were asked for, so that unknown ones are reported.
class Reader {
 public:
  Reader(std::string where, const json& j) : where_(std::move(where)), j_(j) {
    CYCLONE_CHECK(j_.is_object(), where_, ": options must be a JSON object, got ", j_.dump());
  }
  template <class T>
  void get(const char* key, T& out) {
    known_.insert(key);
    if (!j_.contains(key)) return;
    try {
      out = j_.at(key).get<T>();
    } catch (const json::exception&) {
      CYCLONE_THROW(where_, ": option '", key, "' has the wrong type: ", j_.at(key).dump());
    }
  }
  template <class T>
  void get(const char* key, std::optional<T>& out) {
    known_.insert(key);
    if (!j_.contains(key) || j_.at(key).is_null()) return;
    T v{};
    get(key, v);
    out = v;
  }
  const json* child(const char* key) {
    known_.insert(key);
    return j_.contains(key) ? &j_.at(key) : nullptr;
  }
  void finish() const {
    for (const auto& [k, v] : j_.items()) {
      if (known_.count(k)) continue;
      const std::string near =
          closest_match(k, std::vector<std::string>(known_.begin(), known_.end()));
      CYCLONE_THROW(where_, ": unknown option '", k, "'",
                    near.empty() ? "" : ": did you mean '" + near + "'?", " (valid: ", join(known_),
                    ")");
    }
  }

 private:
  std::string where_;
  const json& j_;
  std::set<std::string> known_;
};

void read_common(Reader& r, const std::string& where, CommonOptions& o) {
  r.get("lr", o.lr);
  r.get("weight_decay", o.weight_decay);
  r.get("no_decay_bn_bias", o.no_decay_bn_bias);
  if (const json* groups = r.child("groups")) {
    CYCLONE_CHECK(groups->is_array(), where, ": 'groups' must be an array, got ", groups->dump());
    for (size_t i = 0; i < groups->size(); ++i) {
      Reader g(where + " group " + std::to_string(i), (*groups)[i]);
      ParamGroupSpec spec;
      g.get("name", spec.name);
      g.get("prefixes", spec.prefixes);
      g.get("lr_mult", spec.lr_mult);
      g.get("weight_decay", spec.weight_decay);
      g.get("momentum", spec.momentum);
      g.finish();
      o.groups.push_back(std::move(spec));
    }
  }
}

using Factory = std::function<std::unique_ptr<Optimizer>(NamedTensors, const json&)>;

// Adam and AdamW read the same options; AdamWOptions only changes the defaults.
template <class Options, class Opt>
Factory read_adam(const char* name) {
  return [name](NamedTensors p, const json& j) -> std::unique_ptr<Optimizer> {
    Reader r(name, j);
    Options o;
    read_common(r, name, o);
    r.get("beta1", o.beta1);
    r.get("beta2", o.beta2);
    r.get("eps", o.eps);
    r.get("amsgrad", o.amsgrad);
    r.finish();
    return std::make_unique<Opt>(std::move(p), o);
  };
}

const std::map<std::string, Factory>& registry() {
  static const std::map<std::string, Factory> table = {
      {"sgd",
       [](NamedTensors p, const json& j) -> std::unique_ptr<Optimizer> {
         Reader r("sgd", j);
         SgdOptions o;
         read_common(r, "sgd", o);
         r.get("momentum", o.momentum);
         r.get("dampening", o.dampening);
         r.get("nesterov", o.nesterov);
         r.finish();
         return std::make_unique<Sgd>(std::move(p), o);
       }},
      {"adam", read_adam<AdamOptions, Adam>("adam")},
      {"adamw", read_adam<AdamWOptions, AdamW>("adamw")},
      {"nadam",
       [](NamedTensors p, const json& j) -> std::unique_ptr<Optimizer> {
         Reader r("nadam", j);
         NadamOptions o;
         read_common(r, "nadam", o);
         r.get("beta1", o.beta1);
         r.get("beta2", o.beta2);
         r.get("eps", o.eps);
         r.get("momentum_decay", o.momentum_decay);
         r.get("decoupled_weight_decay", o.decoupled_weight_decay);
         r.finish();
         return std::make_unique<Nadam>(std::move(p), o);
       }},
      {"rmsprop",
       [](NamedTensors p, const json& j) -> std::unique_ptr<Optimizer> {
         Reader r("rmsprop", j);
         RmspropOptions o;
         read_common(r, "rmsprop", o);
         r.get("alpha", o.alpha);
         r.get("eps", o.eps);
         r.get("momentum", o.momentum);
         r.get("centered", o.centered);
         r.finish();
         return std::make_unique<Rmsprop>(std::move(p), o);
       }},
  };
  return table;
}

}  // namespace

std::vector<std::string> optimizer_names() {
  std::vector<std::string> names;
  for (const auto& [name, f] : registry()) names.push_back(name);
  return names;
}

std::unique_ptr<Optimizer> make_optimizer(const std::string& name, NamedTensors params,
                                          const std::string& options_json) {
  const auto& table = registry();
  const std::string key = ascii_lower(name);  // any case, as configs accept ("SGD", "AdamW")
  auto it = table.find(key);
  if (it == table.end()) {
    std::set<std::string> names;
    for (const auto& [n, f] : table) names.insert(n);
    const std::string near = closest_match(key, optimizer_names());
    CYCLONE_THROW("unknown optimizer '", name, "'",
                  near.empty() ? "" : ": did you mean '" + near + "'?", " (valid: ", join(names),
                  ")");
  }
  json j;
  try {
    j = json::parse(options_json.empty() ? "{}" : options_json);
  } catch (const json::exception& e) {
    CYCLONE_THROW(name, ": options are not valid JSON: ", e.what());
  }
  return it->second(std::move(params), j);
}

}  // namespace cyclone::optim
