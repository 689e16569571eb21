// Optimizer: groups, stepping, hyperparameters (state save/load: optimizer_state.cpp).
#include "cyclone/optim/optimizer.h"

#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include "cyclone/core/context.h"
#include "cyclone/kernels/optim_update.h"

namespace cyclone::optim {

namespace {

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

void check_non_negative(const char* what, double v) {
  CYCLONE_CHECK(std::isfinite(v) && v >= 0, what, " must be a finite value >= 0, got ", v);
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
  std::map<const void*, std::string> tensors;  // a tensor under two names would step twice
  for (const auto& [pname, p] : params_) {
    CYCLONE_CHECK(!pname.empty(), name_, ": a parameter has an empty name");
    CYCLONE_CHECK(seen.insert(pname).second, name_, ": parameter '", pname, "' is listed twice");
    CYCLONE_CHECK(p.defined(), name_, ": parameter '", pname, "' is an undefined tensor");
    const auto [it, fresh] = tensors.emplace(p.impl_ptr().get(), pname);
    CYCLONE_CHECK(fresh, name_, ": parameters '", it->second, "' and '", pname,
                  "' are the same tensor (a shared weight): list it once, or it is updated twice "
                  "a step");
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
  mu_product_.resize(params_.size());
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i].second;
    state_[i].resize(kernels::kOptimMaxSlots);
    for (int s = 0; s < kernels::kOptimMaxSlots; ++s)
      if (mask & (1u << s)) state_[i][s] = Tensor::zeros(p.shape(), p.dtype(), p.device());
    if (kernels::optim_has_mu_product(config_))
      mu_product_[i] = Tensor::from_vector(std::vector<double>{1.0, 1.0}, Shape{2}, p.device());
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
    if (g.momentum)
      CYCLONE_CHECK(std::isfinite(*g.momentum) && *g.momentum >= 0 && *g.momentum < 1, name_,
                    ": parameter group '", g.name, "' has momentum ", *g.momentum,
                    ", not in [0, 1)");
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
      const Tensor& mp = mu_product_[i];
      key.push_back(mp.defined() ? reinterpret_cast<uintptr_t>(mp.raw_data()) : 0);
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
        a.mu_product = mu_product_[i];
        a.group = param_group_[i];
        a.step_lag = static_cast<double>(step_ - param_steps_[i]);
        args.push_back(std::move(a));
      }
      plans_.push_back(
          Plan{kernels::OptimPlan(config_, groups, std::move(args)), std::move(keys[b++])});
    }
    tables_dirty_ = false;
    ++plan_generation_;
  }
  kernels::OptimScalars sc = scalars_->host();
  sc.step = static_cast<double>(step_);
  scalars_->set(sc);
  for (const Plan& plan : plans_)
    if (plan.plan.device().is_cuda()) scalars_->upload(Context::current(plan.plan.device()));
}

void Optimizer::launch_step(const Tensor& gate) {
  for (const Plan& plan : plans_)
    kernels::optim_update(Context::current(plan.plan.device()), plan.plan, *scalars_, gate);
  // The parameters changed in place: a graph built before the step must not run backward.
  for (const auto& [name, p] : params_)
    if (p.grad().defined()) p.mark_modified();
}

void Optimizer::unstep(int64_t n) {
  CYCLONE_CHECK(n >= 0 && n <= step_, name_, ": cannot take back ", n, " steps of ", step_);
  if (n == 0) return;
  step_ -= n;
  for (size_t i = 0; i < params_.size(); ++i)
    if (params_[i].second.grad().defined())
      param_steps_[i] = std::max<int64_t>(0, param_steps_[i] - n);
  kernels::OptimScalars sc = scalars_->host();
  sc.step = static_cast<double>(step_);
  scalars_->set(sc);
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
  const bool adam_like =
      config_.algo == kernels::OptimAlgo::kAdam || config_.algo == kernels::OptimAlgo::kNadam;
  CYCLONE_CHECK(std::isfinite(momentum) && momentum >= 0 && momentum < 1, name_, ": ",
                adam_like ? "beta1" : "momentum", " (set by set_momentum) must be in [0, 1), got ",
                momentum);
  if (!adam_like) {
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
  if (mu_product_[i].defined()) {
    if (slot == kMuProductSlot) return mu_product(i);
    names += (names.empty() ? "" : ", ") + std::string(kMuProductSlot);
  }
  CYCLONE_THROW(name_, ": no state '", slot, "' for parameter '", param_name,
                "' (state: ", names.empty() ? "none" : names, ")");
}

}  // namespace cyclone::optim
