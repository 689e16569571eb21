#include "cyclone/layers/module.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <unordered_map>

#include "cyclone/core/autograd.h"
#include "cyclone/core/file_util.h"
#include "cyclone/layers/autocast.h"
#include "cyclone/layers/layout.h"
#include "cyclone/layers/ops.h"

namespace cyclone {

namespace {

// Set while summary() runs: Module::operator() reports each leaf module's output here.
struct SummaryRecorder {
  std::unordered_map<const Module*, std::string> names;
  struct Row {
    std::string name, type;
    Shape out;
    int64_t params;
  };
  std::vector<Row> rows;
};
thread_local SummaryRecorder* t_recorder = nullptr;

std::string join(const std::string& prefix, const std::string& name) {
  if (name.empty()) return prefix;
  return prefix.empty() ? name : prefix + "." + name;
}

}  // namespace

Tensor Module::operator()(const Tensor& x) {
  std::optional<AutocastScope> autocast;
  if (compute_dtype_ != DType::kFloat32) autocast.emplace(compute_dtype_);
  // Channels last: the scope opens here unless a caller already opened one (then x is NHWC).
  std::optional<ChannelsLastScope> layout;
  if (channels_last_ && !channels_last_active()) layout.emplace(true);
  Tensor y = forward(layout && x.defined() && x.rank() == 4 ? to_channels_last(x) : x);
  if (layout && y.defined() && y.rank() == 4) y = to_channels_first(y);
  // The model computed in bfloat16: its caller (the loss, metrics) gets float32.
  if (autocast && is_half(y.dtype())) y = cast(y, DType::kFloat32);
  record_call(y);
  return y;
}

void Module::record_call(const Tensor& y) {
  if (t_recorder && children_.empty()) {
    auto it = t_recorder->names.find(this);
    int64_t own = 0;
    for (const auto& [n, p] : params_) own += p.numel();
    // Shapes are reported in NCHW whatever the layout ran.
    Shape shown = y.shape();
    if (channels_last_active() && shown.rank() == 4)
      shown = {shown[0], shown[3], shown[1], shown[2]};
    t_recorder->rows.push_back(
        {it == t_recorder->names.end() ? "?" : it->second, type_name(), shown, own});
  }
}

void Module::set_compute_dtype(DType dtype) {
  CYCLONE_CHECK(dtype == DType::kFloat32 || is_half(dtype),
                "set_compute_dtype: float32, bfloat16 or float16, not ", dtype_name(dtype));
  compute_dtype_ = dtype;
}

void Module::check_new_name(const std::string& name) const {
  CYCLONE_CHECK(!name.empty() && name.find('.') == std::string::npos, type_name(),
                ": bad member name '", name, "' (non-empty, no dots)");
  auto taken = [&](const auto& list) {
    for (const auto& [n, _] : list)
      if (n == name) return true;
    return false;
  };
  CYCLONE_CHECK(!taken(params_) && !taken(buffers_) && !taken(children_), type_name(),
                ": the name '", name, "' is registered twice");
}

Tensor Module::register_parameter(const std::string& name, Tensor t) {
  check_new_name(name);
  CYCLONE_CHECK(t.defined() && t.is_leaf(), type_name(), ": parameter '", name,
                "' must be a defined leaf tensor");
  t.set_requires_grad(true);
  params_.emplace_back(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  check_new_name(name);
  CYCLONE_CHECK(t.defined(), type_name(), ": buffer '", name, "' is undefined");
  buffers_.emplace_back(name, t);
  return t;
}

bool Module::reaches(const Module* m) const {
  if (m == this) return true;
  for (const auto& [n, c] : children_)
    if (c->reaches(m)) return true;
  return false;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> m) {
  check_new_name(name);
  CYCLONE_CHECK(m != nullptr, type_name(), ": sub-module '", name, "' is null");
  // A module inside itself would make every walk below (parameters, str(), train()) endless.
  CYCLONE_CHECK(!m->reaches(this), type_name(), ": sub-module '", name, "' (", m->type_name(), ") ",
                m.get() == this ? "is this module itself" : "contains this module",
                ": a module cannot be inside itself");
  children_.emplace_back(name, std::move(m));
}

void Module::collect(const std::string& prefix, bool params, bool trainable_only, NamedTensors& out,
                     std::set<const void*>* seen) const {
  for (const auto& [n, t] : params ? params_ : buffers_)
    if ((!trainable_only || t.requires_grad()) &&
        (seen == nullptr || seen->insert(t.impl_ptr().get()).second))
      out.emplace_back(join(prefix, n), t);
  for (const auto& [n, c] : children_)
    c->collect(join(prefix, n), params, trainable_only, out, seen);
}

NamedTensors Module::named_parameters(bool trainable_only, bool remove_duplicate) const {
  NamedTensors out;
  std::set<const void*> seen;
  collect("", true, trainable_only, out, remove_duplicate ? &seen : nullptr);
  return out;
}

std::vector<Tensor> Module::parameters(bool trainable_only) const {
  std::vector<Tensor> out;
  for (auto& [n, t] : named_parameters(trainable_only)) out.push_back(t);
  return out;
}

NamedTensors Module::named_buffers(bool remove_duplicate) const {
  NamedTensors out;
  std::set<const void*> seen;
  collect("", false, false, out, remove_duplicate ? &seen : nullptr);
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
  std::vector<std::pair<std::string, Module*>> out{{"", this}};
  for (auto& [n, c] : children_)
    for (auto& [sub, m] : c->named_modules()) out.emplace_back(join(n, sub), m);
  return out;
}

std::vector<std::shared_ptr<Generator>> Module::random_generators() const {
  std::vector<std::shared_ptr<Generator>> out;
  auto add = [&out](const std::shared_ptr<Generator>& g) {
    if (g && std::find(out.begin(), out.end(), g) == out.end()) out.push_back(g);
  };
  add(own_generator());
  for (const auto& child : children_)
    for (const auto& g : child.second->random_generators()) add(g);
  return out;
}

std::shared_ptr<Module> Module::child(const std::string& name) const {
  for (const auto& [n, m] : children_)
    if (n == name) return m;
  CYCLONE_THROW(type_name(), " has no child module '", name, "'");
}

Tensor Module::forward_stages(const Tensor&, size_t, size_t) {
  CYCLONE_THROW(type_name(), " cannot run in stages (it lists none)");
}

StageSlice::StageSlice(Module& model, size_t begin, size_t end)
    : model_(model), begin_(begin), end_(end) {
  const std::vector<Stage> st = model.stages();
  CYCLONE_CHECK(begin < end && end <= st.size(), model.type_name(), ": stages [", begin, ", ", end,
                ") of ", st.size());
  for (size_t i = begin; i < end; ++i)
    for (const std::string& name : st[i].modules) register_module(name, model.child(name));
  // The pieces compute as the whole model would.
  set_compute_dtype(model.compute_dtype());
  set_channels_last(model.channels_last());
}

Tensor StageSlice::forward(const Tensor& x) { return model_.forward_stages(x, begin_, end_); }

std::string StageSlice::extra_repr() const {
  const std::vector<Stage> st = model_.stages();
  return model_.type_name() + " stages " + st[begin_].name + ".." + st[end_ - 1].name;
}

Module& Module::submodule(const std::string& path) {
  for (auto& [n, m] : named_modules())
    if (n == path) return *m;
  CYCLONE_THROW(type_name(), " has no sub-module '", path, "'");
}

NamedTensors Module::parameters_with_prefix(const std::string& prefix) const {
  NamedTensors out;
  for (auto& [n, t] : named_parameters(false, /*remove_duplicate=*/false))
    if (n.compare(0, prefix.size(), prefix) == 0) out.emplace_back(n, t);
  return out;
}

int64_t Module::num_parameters(bool trainable_only) const {
  int64_t n = 0;
  for (auto& [name, t] : named_parameters(trainable_only)) n += t.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, c] : children_) c->train(on);
}

void Module::to(Device device) {
  for (auto* list : {&params_, &buffers_})
    for (auto& [n, t] : *list)
      if (!(t.device() == device)) t.set_data(t.detach().to(device));
  for (auto& [n, c] : children_) c->to(device);
}

void Module::freeze() {
  for (auto& [n, t] : named_parameters()) {
    t.set_requires_grad(false);
    t.zero_grad();
  }
}

void Module::unfreeze() {
  for (auto& [n, t] : named_parameters()) t.set_requires_grad(true);
}

NamedTensors Module::state_dict() const {
  NamedTensors out = named_parameters(false, /*remove_duplicate=*/false);
  for (auto& b : named_buffers(/*remove_duplicate=*/false)) out.push_back(b);
  return out;
}

std::vector<std::string> Module::load_state_dict(const NamedTensors& state, bool strict) {
  const NamedTensors mine = state_dict();
  std::map<std::string, Tensor> incoming;
  for (const auto& [n, t] : state) incoming[n] = t;
  std::vector<std::string> skipped;
  std::set<std::string> used;
  // Validate everything before changing anything, so a failed load leaves the model as it was.
  std::vector<std::pair<Tensor, Tensor>> copies;
  for (const auto& [n, t] : mine) {
    auto it = incoming.find(n);
    if (it == incoming.end()) {
      CYCLONE_CHECK(!strict, "load_state_dict: '", n, "' is missing from the weights (",
                    state.size(), " tensors given)");
      skipped.push_back(n);
      continue;
    }
    used.insert(n);
    const Tensor& src = it->second;
    if (src.shape() != t.shape()) {
      CYCLONE_CHECK(!strict, "load_state_dict: '", n, "' has shape ", src.shape(),
                    " in the weights but ", t.shape(), " in the model");
      skipped.push_back(n);
      continue;
    }
    const bool both_float = is_floating(src.dtype()) && is_floating(t.dtype());
    CYCLONE_CHECK(src.dtype() == t.dtype() || both_float, "load_state_dict: '", n, "' has dtype ",
                  dtype_name(src.dtype()), " in the weights but ", dtype_name(t.dtype()),
                  " in the model");
    copies.emplace_back(t, src.dtype() == t.dtype() ? src : cast(src, t.dtype()));
  }
  for (const auto& [n, t] : state) {
    if (used.count(n)) continue;
    CYCLONE_CHECK(!strict, "load_state_dict: the weights have '", n, "', which the model does not");
    skipped.push_back(n);
  }
  autograd::NoGradGuard no_grad;
  for (auto& [dst, src] : copies) dst.copy_from(src.to(dst.device()));
  return skipped;
}

void Module::save(const std::string& path) const {
  save_safetensors(path, state_dict(), {{"format", "pt"}, {"producer", "cyclone"}});
}

std::vector<std::string> Module::load(const std::string& path, bool strict) {
  const SafetensorsFile f = load_safetensors(path);
  try {
    return load_state_dict(f.tensors, strict);
  } catch (const OutOfMemory&) {
    throw;
  } catch (const Error& e) {
    CYCLONE_THROW(path, ": ", e.message());
  }
}

std::string Module::str() const {
  std::ostringstream os;
  std::function<void(const Module&, const std::string&, int)> rec =
      [&](const Module& m, const std::string& name, int depth) {
        os << std::string(2 * depth, ' ') << (name.empty() ? "" : "(" + name + "): ")
           << m.type_name() << "(" << m.extra_repr() << ")\n";
        for (const auto& [n, c] : m.children_) rec(*c, n, depth + 1);
      };
  rec(*this, "", 0);
  return os.str();
}

std::string summary(Module& model, const Shape& input_shape, Device device) {
  SummaryRecorder rec;
  for (auto& [n, m] : model.named_modules()) rec.names[m] = n.empty() ? "(model)" : n;
  const bool was_training = model.is_training();
  model.eval();
  {
    autograd::NoGradGuard no_grad;
    t_recorder = &rec;
    try {
      model(Tensor::zeros(input_shape, DType::kFloat32, device));
    } catch (...) {
      t_recorder = nullptr;
      model.train(was_training);
      throw;
    }
    t_recorder = nullptr;
  }
  model.train(was_training);
  std::ostringstream os;
  char line[256];
  std::snprintf(line, sizeof line, "%-32s %-16s %-22s %12s\n", "layer", "type", "output shape",
                "parameters");
  os << line << std::string(85, '-') << "\n";
  for (const auto& r : rec.rows) {
    std::snprintf(line, sizeof line, "%-32s %-16s %-22s %12lld\n", r.name.c_str(), r.type.c_str(),
                  r.out.str().c_str(), static_cast<long long>(r.params));
    os << line;
  }
  os << std::string(85, '-') << "\n";
  os << "input " << input_shape << "\n";
  os << "total parameters: " << model.num_parameters() << "\n";
  os << "trainable parameters: " << model.num_parameters(true) << "\n";
  return os.str();
}

}  // namespace cyclone
