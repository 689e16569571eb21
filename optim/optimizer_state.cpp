// Optimizer state: state_dict / load_state_dict and their safetensors files (optimizer.h).
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "cyclone/core/json_depth.h"
#include "cyclone/kernels/optim_update.h"
#include "cyclone/optim/optimizer.h"

namespace cyclone::optim {

using json = nlohmann::json;

namespace {

constexpr const char* kMetadataKey = "cyclone.optimizer";
constexpr const char* kFormat = "cyclone.optimizer/1";

std::string state_name(const std::string& param, const std::string& slot) {
  return "state." + param + "." + slot;
}

// The first key under which a and b differ ("" when equal), for an error a person can act on.
// A step count: a whole number in [0, 2^63) (nlohmann's get<int64_t>() would cast a float, past
// int64's range too).
int64_t whole_number(const json& v, const char* what) {
  CYCLONE_CHECK(v.is_number_unsigned() && v.get<uint64_t>() <= static_cast<uint64_t>(INT64_MAX),
                "optimizer state: step count of '", what, "' must be a whole number >= 0, got ",
                v.dump().substr(0, 40));
  return static_cast<int64_t>(v.get<uint64_t>());
}

std::string first_difference(const json& a, const json& b) {
  if (!a.is_object() || !b.is_object()) return a == b ? "" : "(options)";
  for (const auto& [k, v] : a.items())
    if (!b.contains(k) || b.at(k) != v) return k;
  for (const auto& [k, v] : b.items())
    if (!a.contains(k)) return k;
  return "";
}

}  // namespace

// The entry of the pair the parameter's last step wrote (entry 0, P_0 = 1, before its first).
Tensor Optimizer::mu_product(size_t param) const {
  const std::vector<double> pair = mu_product_[param].to_vector<double>();
  const double v = pair[static_cast<size_t>(param_steps_[param] & 1)];
  return Tensor::from_vector(std::vector<double>{v}, Shape(), Device::cpu());
}

OptimizerState Optimizer::state_dict() const {
  OptimizerState out;
  json meta;
  meta["format"] = kFormat;
  meta["optimizer"] = name_;
  meta["options"] = json::parse(options_json());
  meta["step"] = step_;
  meta["lr"] = lr();
  meta["momentum"] = momentum();
  meta["beta2"] = beta2();
  json groups = json::array();
  for (const ParamGroup& g : groups_) {
    json jg;
    jg["name"] = g.name;
    jg["prefixes"] = g.prefixes;
    jg["lr_mult"] = g.lr_mult;
    jg["weight_decay"] = g.weight_decay;
    jg["momentum"] = g.momentum ? json(*g.momentum) : json(nullptr);
    jg["params"] = g.params;
    groups.push_back(std::move(jg));
  }
  meta["groups"] = std::move(groups);
  json steps = json::object();
  for (size_t i = 0; i < params_.size(); ++i) {
    steps[params_[i].first] = param_steps_[i];
    for (size_t s = 0; s < slots_.size(); ++s)
      if (state_[i][s].defined())
        out.tensors.emplace_back(state_name(params_[i].first, slots_[s]), state_[i][s]);
    if (mu_product_[i].defined())
      out.tensors.emplace_back(state_name(params_[i].first, kMuProductSlot), mu_product(i));
  }
  meta["param_steps"] = std::move(steps);
  out.metadata[kMetadataKey] = meta.dump();
  return out;
}

void Optimizer::load_state_dict(const OptimizerState& state) {
  auto it = state.metadata.find(kMetadataKey);
  CYCLONE_CHECK(it != state.metadata.end(), name_, ": the state has no '", kMetadataKey,
                "' metadata (not an optimizer state)");
  json meta;
  try {
    // Bounded nesting: a mismatched option is dumped into the error, recursively.
    meta = json::parse(it->second, json_depth_limit<json>(name_ + ": the optimizer metadata"));
  } catch (const json::exception& e) {
    CYCLONE_THROW(name_, ": the optimizer metadata is not valid JSON: ", e.what());
  }
  // Validate everything before changing anything, so a bad state leaves this optimizer intact.
  std::vector<ParamGroup> groups = groups_;
  std::vector<int64_t> steps(params_.size());
  int64_t step = 0;
  double lr = 0, momentum = 0, beta2 = 0;
  try {
    CYCLONE_CHECK(meta.value("format", "") == kFormat, name_, ": optimizer state format '",
                  meta.value("format", ""), "', expected '", kFormat, "'");
    const std::string saved = meta.at("optimizer").get<std::string>();
    CYCLONE_CHECK(saved == name_, name_, ": the state was saved by optimizer '", saved, "'");
    const json mine = json::parse(options_json());
    const std::string diff = first_difference(meta.at("options"), mine);
    CYCLONE_CHECK(diff.empty(), name_, ": option '", diff, "' is ",
                  meta.at("options").value(diff, json()).dump(), " in the state but ",
                  mine.value(diff, json()).dump(), " here");
    step = whole_number(meta.at("step"), "step");
    CYCLONE_CHECK(step >= 0, name_, ": negative step count ", step, " in the state");
    lr = meta.at("lr").get<double>();
    momentum = meta.at("momentum").get<double>();
    beta2 = meta.at("beta2").get<double>();
    const json& jgroups = meta.at("groups");
    CYCLONE_CHECK(jgroups.is_array() && jgroups.size() == groups.size(), name_, ": the state has ",
                  jgroups.size(), " parameter groups, this optimizer ", groups.size());
    for (size_t g = 0; g < groups.size(); ++g) {
      const json& jg = jgroups[g];
      const std::string gname = jg.at("name").get<std::string>();
      CYCLONE_CHECK(gname == groups[g].name, name_, ": parameter group ", g, " is '", gname,
                    "' in the state but '", groups[g].name, "' here");
      const auto saved_params = jg.at("params").get<std::vector<std::string>>();
      CYCLONE_CHECK(saved_params == groups[g].params, name_, ": parameter group '", gname,
                    "' holds ", saved_params.size(), " parameters in the state and ",
                    groups[g].params.size(), " here (or other names)");
      groups[g].lr_mult = jg.at("lr_mult").get<double>();
      groups[g].weight_decay = jg.at("weight_decay").get<double>();
      if (jg.at("momentum").is_null())
        groups[g].momentum.reset();
      else
        groups[g].momentum = jg.at("momentum").get<double>();
    }
    const json& jsteps = meta.at("param_steps");
    for (size_t i = 0; i < params_.size(); ++i) {
      CYCLONE_CHECK(jsteps.contains(params_[i].first), name_, ": the state has no step count for '",
                    params_[i].first, "'");
      steps[i] = whole_number(jsteps.at(params_[i].first), params_[i].first.c_str());
      CYCLONE_CHECK(steps[i] >= 0 && steps[i] <= step, name_, ": step count ", steps[i], " of '",
                    params_[i].first, "' is outside [0, ", step, "]");
    }
    CYCLONE_CHECK(jsteps.size() == params_.size(), name_, ": the state has step counts for ",
                  jsteps.size(), " parameters, this optimizer has ", params_.size());
  } catch (const json::exception& e) {
    CYCLONE_THROW(name_, ": malformed optimizer metadata: ", e.what());
  }

  std::map<std::string, const Tensor*> by_name;
  for (const auto& [n, t] : state.tensors) by_name[n] = &t;
  size_t expected = 0;
  for (size_t i = 0; i < params_.size(); ++i)
    for (size_t s = 0; s < slots_.size(); ++s) {
      const Tensor& dst = state_[i][s];
      if (!dst.defined()) continue;
      ++expected;
      const std::string n = state_name(params_[i].first, slots_[s]);
      auto t = by_name.find(n);
      CYCLONE_CHECK(t != by_name.end(), name_, ": the state lacks tensor '", n, "'");
      CYCLONE_CHECK(t->second->shape() == dst.shape(), name_, ": state tensor '", n, "' has shape ",
                    t->second->shape(), ", expected ", dst.shape());
      CYCLONE_CHECK(t->second->dtype() == dst.dtype(), name_, ": state tensor '", n, "' is ",
                    dtype_name(t->second->dtype()), ", expected ", dtype_name(dst.dtype()));
    }
  // NAdam's mu_product: a float64 0-d tensor holding a product of factors in [0, 1).
  std::vector<double> mu_products(params_.size(), 1.0);
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!mu_product_[i].defined()) continue;
    ++expected;
    const std::string n = state_name(params_[i].first, kMuProductSlot);
    auto t = by_name.find(n);
    CYCLONE_CHECK(t != by_name.end(), name_, ": the state lacks tensor '", n, "'");
    CYCLONE_CHECK(t->second->rank() == 0 && t->second->dtype() == DType::kFloat64, name_,
                  ": state tensor '", n, "' is ", dtype_name(t->second->dtype()), " ",
                  t->second->shape(), ", expected float64 []");
    mu_products[i] = t->second->item<double>();
    CYCLONE_CHECK(std::isfinite(mu_products[i]) && mu_products[i] >= 0 && mu_products[i] <= 1,
                  name_, ": state tensor '", n, "' holds ", mu_products[i], ", outside [0, 1]");
  }
  if (by_name.size() != expected) {
    std::set<std::string> known;
    for (size_t i = 0; i < params_.size(); ++i)
      for (size_t s = 0; s < slots_.size(); ++s)
        if (state_[i][s].defined()) known.insert(state_name(params_[i].first, slots_[s]));
    for (size_t i = 0; i < params_.size(); ++i)
      if (mu_product_[i].defined()) known.insert(state_name(params_[i].first, kMuProductSlot));
    for (const auto& [n, t] : by_name)
      CYCLONE_CHECK(known.count(n), name_, ": unexpected state tensor '", n, "'");
  }

  for (size_t i = 0; i < params_.size(); ++i) {
    for (size_t s = 0; s < slots_.size(); ++s)
      if (state_[i][s].defined())
        state_[i][s].copy_from(*by_name.at(state_name(params_[i].first, slots_[s])));
    // Both entries of the pair: the next step reads the one its parity names.
    if (mu_product_[i].defined())
      mu_product_[i].copy_from(Tensor::from_vector(
          std::vector<double>{mu_products[i], mu_products[i]}, Shape{2}, Device::cpu()));
  }
  groups_ = std::move(groups);
  param_steps_ = std::move(steps);
  step_ = step;
  kernels::OptimScalars sc = scalars_->host();
  sc.lr = lr;
  sc.momentum = momentum;
  sc.beta2 = beta2;
  sc.step = static_cast<double>(step);
  scalars_->set(sc);
  mark_tables_dirty();
}

void Optimizer::save(const std::string& path) const {
  const OptimizerState s = state_dict();
  save_safetensors(path, s.tensors, s.metadata);
}

void Optimizer::load(const std::string& path) {
  SafetensorsFile f = load_safetensors(path, Device::cpu());
  try {
    load_state_dict(OptimizerState{std::move(f.tensors), std::move(f.metadata)});
  } catch (const Error& e) {
    CYCLONE_THROW(path, ": ", e.message());
  }
}

}  // namespace cyclone::optim
