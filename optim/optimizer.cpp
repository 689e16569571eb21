#include "cyclone/optim/optimizer.h"

#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "cyclone/core/context.h"
#include "cyclone/kernels/optim_update.h"

namespace cyclone::optim {

using json = nlohmann::json;

namespace {

constexpr const char* kMetadataKey = "cyclone.optimizer";
constexpr const char* kFormat = "cyclone.optimizer/1";

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

void check_non_negative(const char* what, double v) {
  CYCLONE_CHECK(std::isfinite(v) && v >= 0, what, " must be a finite value >= 0, got ", v);
}

std::string state_name(const std::string& param, const std::string& slot) {
  return "state." + param + "." + slot;
}

// The first key under which a and b differ ("" when equal), for an error a person can act on.
std::string first_difference(const json& a, const json& b) {
  if (!a.is_object() || !b.is_object()) return a == b ? "" : "(options)";
  for (const auto& [k, v] : a.items())
    if (!b.contains(k) || b.at(k) != v) return k;
  for (const auto& [k, v] : b.items())
    if (!a.contains(k)) return k;
  return "";
}

}  // namespace

bool is_bn_or_bias(const std::string& name, const Tensor& param) {
  const std::string bias = ".bias";
  const bool ends_with_bias =
      name == "bias" || (name.size() >= bias.size() &&
                         name.compare(name.size() - bias.size(), bias.size(), bias) == 0);
  return param.rank() <= 1 || ends_with_bias || name.find("bn") != std::string::npos;
}

// A launch plan and what it was built from: the storage of every tensor and each step lag. A
// step whose key differs rebuilds the plan (new gradient tensors, a parameter skipped or back).
struct Optimizer::Plan {
  kernels::OptimPlan plan;
  std::vector<uintptr_t> key;
};

Optimizer::Optimizer(std::string name, NamedTensors params, const CommonOptions& options,
                     const kernels::OptimConfig& config, std::vector<std::string> slots,
                     double momentum, double beta2)
    : name_(std::move(name)),
      params_(std::move(params)),
      config_(config),
      slots_(std::move(slots)),
      scalars_(std::make_unique<kernels::OptimScalarsBuffer>()) {
  CYCLONE_CHECK(!params_.empty(), name_, ": no parameters to optimize");
  CYCLONE_CHECK(slots_.size() == kernels::kOptimMaxSlots, name_, ": ", slots_.size(),
                " slot names for ", kernels::kOptimMaxSlots, " slots");
  std::set<std::string> seen;
  for (const auto& [pname, p] : params_) {
    CYCLONE_CHECK(!pname.empty(), name_, ": a parameter has an empty name");
    CYCLONE_CHECK(seen.insert(pname).second, name_, ": parameter '", pname, "' is listed twice");
    CYCLONE_CHECK(p.defined(), name_, ": parameter '", pname, "' is an undefined tensor");
    CYCLONE_CHECK(p.dtype() == DType::kFloat32 || p.dtype() == DType::kFloat64, name_,
                  ": parameter '", pname, "' is ", dtype_name(p.dtype()),
                  " (float32 or float64 expected)");
    CYCLONE_CHECK(p.is_leaf() && p.requires_grad(), name_, ": parameter '", pname,
                  "' must be a leaf tensor with requires_grad");
  }
  check_non_negative("learning rate", options.lr);
  check_non_negative("weight_decay", options.weight_decay);
  build_groups(options);

  const unsigned mask = kernels::optim_slot_mask(config_);
  state_.resize(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i].second;
    state_[i].resize(kernels::kOptimMaxSlots);
    for (int s = 0; s < kernels::kOptimMaxSlots; ++s)
      if (mask & (1u << s)) state_[i][s] = Tensor::zeros(p.shape(), p.dtype(), p.device());
  }
  param_steps_.assign(params_.size(), 0);
  kernels::OptimScalars sc;
  sc.lr = options.lr;
  sc.momentum = momentum;
  sc.beta2 = beta2;
  scalars_->set(sc);
}

Optimizer::~Optimizer() = default;

void Optimizer::build_groups(const CommonOptions& options) {
  std::set<std::string> names;
  for (size_t i = 0; i < options.groups.size(); ++i) {
    const ParamGroupSpec& spec = options.groups[i];
    ParamGroup g;
    g.name = spec.name.empty() ? "group" + std::to_string(i) : spec.name;
    CYCLONE_CHECK(g.name != "default", name_, ": 'default' is the name of the implicit group");
    CYCLONE_CHECK(names.insert(g.name).second, name_, ": two parameter groups are named '", g.name,
                  "'");
    CYCLONE_CHECK(!spec.prefixes.empty(), name_, ": parameter group '", g.name,
                  "' has no prefixes");
    g.prefixes = spec.prefixes;
    g.lr_mult = spec.lr_mult;
    g.weight_decay = spec.weight_decay.value_or(options.weight_decay);
    g.momentum = spec.momentum;
    check_non_negative("a group's lr_mult", g.lr_mult);
    check_non_negative("a group's weight_decay", g.weight_decay);
    if (g.momentum) check_non_negative("a group's momentum", *g.momentum);
    groups_.push_back(std::move(g));
  }
  ParamGroup def;
  def.name = "default";
  def.weight_decay = options.weight_decay;
  groups_.push_back(def);
  const size_t num_specs = options.groups.size();

  std::map<size_t, size_t> twin;  // group -> its no_decay twin
  param_group_.resize(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& [pname, p] = params_[i];
    size_t gi = num_specs;  // default
    for (size_t s = 0; s < num_specs && gi == num_specs; ++s)
      for (const std::string& prefix : groups_[s].prefixes)
        if (starts_with(pname, prefix)) {
          gi = s;
          break;
        }
    if (options.no_decay_bn_bias && is_bn_or_bias(pname, p)) {
      auto it = twin.find(gi);
      if (it == twin.end()) {
        ParamGroup t = groups_[gi];
        t.name += ".no_decay";
        t.weight_decay = 0;
        t.params.clear();
        groups_.push_back(std::move(t));
        it = twin.emplace(gi, groups_.size() - 1).first;
      }
      gi = it->second;
    }
    groups_[gi].params.push_back(pname);
    param_group_[i] = static_cast<int32_t>(gi);
  }
  for (size_t s = 0; s < num_specs; ++s) {
    bool used = !groups_[s].params.empty();
    if (auto it = twin.find(s); it != twin.end())
      used = used || !groups_[it->second].params.empty();
    if (!used) {
      std::string prefixes;
      for (const std::string& p : groups_[s].prefixes)
        prefixes += (prefixes.empty() ? "'" : ", '") + p + "'";
      CYCLONE_THROW(name_, ": parameter group '", groups_[s].name, "' (prefixes ", prefixes,
                    ") matches no parameter; the first parameter is '", params_[0].first, "'");
    }
  }
}

std::vector<kernels::OptimGroupParams> Optimizer::group_params() const {
  std::vector<kernels::OptimGroupParams> out;
  for (const ParamGroup& g : groups_) {
    kernels::OptimGroupParams gp;
    gp.lr_mult = g.lr_mult;
    gp.weight_decay = g.weight_decay;
    gp.has_momentum = g.momentum.has_value() ? 1 : 0;
    gp.momentum = g.momentum.value_or(0.0);
    out.push_back(gp);
  }
  return out;
}

void Optimizer::prepare_step() {
  ++step_;
  // Parameters with a gradient this step, bucketed by (device, dtype): one launch each.
  std::map<std::tuple<int, int, int>, std::vector<size_t>> buckets;
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& [pname, p] = params_[i];
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    CYCLONE_CHECK(g.shape() == p.shape() && g.dtype() == p.dtype() && g.device() == p.device(),
                  name_, ": the gradient of '", pname, "' is ", dtype_name(g.dtype()), " ",
                  g.shape(), " on ", g.device(), ", the parameter ", dtype_name(p.dtype()), " ",
                  p.shape(), " on ", p.device());
    ++param_steps_[i];
    buckets[{static_cast<int>(p.device().type), p.device().index, static_cast<int>(p.dtype())}]
        .push_back(i);
  }
  std::vector<std::vector<uintptr_t>> keys;
  for (const auto& [bk, idx] : buckets) {
    std::vector<uintptr_t> key;
    for (size_t i : idx) {
      key.push_back(reinterpret_cast<uintptr_t>(params_[i].second.raw_data()));
      key.push_back(reinterpret_cast<uintptr_t>(params_[i].second.grad().raw_data()));
      for (const Tensor& s : state_[i])
        key.push_back(s.defined() ? reinterpret_cast<uintptr_t>(s.raw_data()) : 0);
      key.push_back(static_cast<uintptr_t>(step_ - param_steps_[i]));
      key.push_back(static_cast<uintptr_t>(params_[i].second.numel()));
    }
    keys.push_back(std::move(key));
  }
  bool same = !tables_dirty_ && keys.size() == plans_.size();
  for (size_t b = 0; same && b < keys.size(); ++b) same = keys[b] == plans_[b].key;
  if (!same) {
    plans_.clear();
    const auto groups = group_params();
    size_t b = 0;
    for (const auto& [bk, idx] : buckets) {
      std::vector<kernels::OptimTensorArgs> args;
      for (size_t i : idx) {
        kernels::OptimTensorArgs a;
        a.param = params_[i].second;
        a.grad = params_[i].second.grad();
        for (int s = 0; s < kernels::kOptimMaxSlots; ++s) a.state[s] = state_[i][s];
        a.group = param_group_[i];
        a.step_lag = static_cast<double>(step_ - param_steps_[i]);
        args.push_back(std::move(a));
      }
      plans_.push_back(
          Plan{kernels::OptimPlan(config_, groups, std::move(args)), std::move(keys[b++])});
    }
    tables_dirty_ = false;
  }
  kernels::OptimScalars sc = scalars_->host();
  sc.step = static_cast<double>(step_);
  scalars_->set(sc);
  for (const Plan& plan : plans_)
    if (plan.plan.device().is_cuda()) scalars_->upload(Context::current(plan.plan.device()));
}

void Optimizer::launch_step() {
  for (const Plan& plan : plans_)
    kernels::optim_update(Context::current(plan.plan.device()), plan.plan, *scalars_);
}

void Optimizer::zero_grad(bool set_to_none) {
  for (const auto& [pname, p] : params_) p.zero_grad(set_to_none);
}

void Optimizer::set_lr(double lr) {
  check_non_negative("learning rate", lr);
  kernels::OptimScalars sc = scalars_->host();
  sc.lr = lr;
  scalars_->set(sc);
}

double Optimizer::lr() const { return scalars_->host().lr; }

void Optimizer::set_momentum(double momentum) {
  if (config_.algo == kernels::OptimAlgo::kAdam) {
    CYCLONE_CHECK(std::isfinite(momentum) && momentum >= 0 && momentum < 1, name_,
                  ": beta1 (set by set_momentum) must be in [0, 1), got ", momentum);
  } else {
    check_non_negative("momentum", momentum);
    CYCLONE_CHECK(momentum == 0 || config_.has_momentum_buffer, name_, ": set_momentum(", momentum,
                  ") on an optimizer built with momentum 0 (no momentum buffer): build it with "
                  "the momentum the schedule starts from");
  }
  kernels::OptimScalars sc = scalars_->host();
  sc.momentum = momentum;
  scalars_->set(sc);
}

double Optimizer::momentum() const { return scalars_->host().momentum; }
double Optimizer::beta2() const { return scalars_->host().beta2; }

size_t Optimizer::param_index(const std::string& param_name) const {
  for (size_t i = 0; i < params_.size(); ++i)
    if (params_[i].first == param_name) return i;
  CYCLONE_THROW(name_, ": no parameter named '", param_name, "'");
}

size_t Optimizer::group_index(const std::string& group) const {
  std::string names;
  for (size_t i = 0; i < groups_.size(); ++i) {
    if (groups_[i].name == group) return i;
    names += (i ? ", " : "") + groups_[i].name;
  }
  CYCLONE_THROW(name_, ": no parameter group named '", group, "' (groups: ", names, ")");
}

const ParamGroup& Optimizer::group_of(const std::string& param_name) const {
  return groups_[static_cast<size_t>(param_group_[param_index(param_name)])];
}

void Optimizer::set_group_lr_mult(const std::string& group, double lr_mult) {
  check_non_negative("lr_mult", lr_mult);
  groups_[group_index(group)].lr_mult = lr_mult;
  mark_tables_dirty();
}

void Optimizer::set_group_weight_decay(const std::string& group, double weight_decay) {
  check_non_negative("weight_decay", weight_decay);
  groups_[group_index(group)].weight_decay = weight_decay;
  mark_tables_dirty();
}

int64_t Optimizer::param_step_count(const std::string& param_name) const {
  return param_steps_[param_index(param_name)];
}

Tensor Optimizer::state(const std::string& param_name, const std::string& slot) const {
  const size_t i = param_index(param_name);
  std::string names;
  for (size_t s = 0; s < slots_.size(); ++s) {
    if (slots_[s].empty() || !state_[i][s].defined()) continue;
    if (slots_[s] == slot) return state_[i][s];
    names += (names.empty() ? "" : ", ") + slots_[s];
  }
  CYCLONE_THROW(name_, ": no state '", slot, "' for parameter '", param_name,
                "' (state: ", names.empty() ? "none" : names, ")");
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
    meta = json::parse(it->second);
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
    step = meta.at("step").get<int64_t>();
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
      steps[i] = jsteps.at(params_[i].first).get<int64_t>();
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
  if (by_name.size() != expected) {
    std::set<std::string> known;
    for (size_t i = 0; i < params_.size(); ++i)
      for (size_t s = 0; s < slots_.size(); ++s)
        if (state_[i][s].defined()) known.insert(state_name(params_[i].first, slots_[s]));
    for (const auto& [n, t] : by_name)
      CYCLONE_CHECK(known.count(n), name_, ": unexpected state tensor '", n, "'");
  }

  for (size_t i = 0; i < params_.size(); ++i)
    for (size_t s = 0; s < slots_.size(); ++s)
      if (state_[i][s].defined())
        state_[i][s].copy_from(*by_name.at(state_name(params_[i].first, slots_[s])));
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
