#include "cyclone/train/weights.h"

#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "cyclone/core/error.h"
#include "cyclone/core/safetensors.h"

namespace cyclone::train {

bool name_under(const std::string& name, const std::vector<std::string>& prefixes) {
  for (const auto& p : prefixes)
    if (name.rfind(p, 0) == 0) return true;
  return false;
}

namespace {

std::string join(const std::vector<std::string>& v, size_t max_items = 8) {
  std::string out;
  for (size_t i = 0; i < v.size() && i < max_items; ++i) out += (i ? ", " : "") + v[i];
  if (v.size() > max_items) out += ", ... (" + std::to_string(v.size()) + " in all)";
  return out;
}

std::string shape_str(const Shape& s) {
  std::ostringstream o;
  o << s;
  return o.str();
}

// PyTorch users sometimes save float64 state dicts: narrowed here, on the CPU.
Tensor narrow_to_float32(const Tensor& src) {
  Tensor out = Tensor::empty(src.shape(), DType::kFloat32, Device::cpu());
  const double* a = src.data<double>();
  float* b = out.data<float>();
  for (int64_t i = 0; i < src.numel(); ++i) b[i] = static_cast<float>(a[i]);
  return out;
}

}  // namespace

std::string WeightsReport::summary() const {
  const size_t total = loaded.size() + kept.size() + mismatched.size() + missing.size();
  std::string s =
      "loaded " + std::to_string(loaded.size()) + " of " + std::to_string(total) + " model tensors";
  if (!kept.empty()) s += "; kept the new head's " + join(kept);
  if (!mismatched.empty()) s += "; skipped (shape): " + join(mismatched, 4);
  if (!missing.empty()) s += "; not in the file: " + join(missing);
  if (!unused.empty()) s += "; unused from the file: " + join(unused);
  return s;
}

WeightsReport load_weights(Module& model, const std::string& path, bool partial,
                           const std::vector<std::string>& keep_prefixes) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw Error(path + ": no such weights file (model_fname / --model_fname)");
  const SafetensorsFile file = load_safetensors(path);
  std::map<std::string, Tensor> incoming(file.tensors.begin(), file.tensors.end());
  WeightsReport r;
  NamedTensors to_load;
  std::set<std::string> used;
  for (const auto& [name, t] : model.state_dict()) {
    if (name_under(name, keep_prefixes)) {
      r.kept.push_back(name);
      used.insert(name);
      continue;
    }
    auto it = incoming.find(name);
    if (it == incoming.end()) {
      r.missing.push_back(name);
      continue;
    }
    used.insert(name);
    const Tensor& src = it->second;
    if (src.shape() != t.shape()) {
      r.mismatched.push_back(name + ": " + shape_str(src.shape()) + " in the file, " +
                             shape_str(t.shape()) + " in the model");
      continue;
    }
    if (src.dtype() != t.dtype()) {
      if (!(src.dtype() == DType::kFloat64 && t.dtype() == DType::kFloat32))
        throw Error(path + ": '" + name + "' is " + dtype_name(src.dtype()) + " in the file but " +
                    dtype_name(t.dtype()) + " in the model (save float32 or float64 weights)");
      to_load.emplace_back(name, narrow_to_float32(src));
    } else {
      to_load.emplace_back(name, src);
    }
    r.loaded.push_back(name);
  }
  for (const auto& [name, t] : file.tensors)
    if (!used.count(name)) r.unused.push_back(name);
  if (!partial && (!r.mismatched.empty() || !r.missing.empty() || !r.unused.empty())) {
    std::string what;
    if (!r.mismatched.empty()) what += "shapes differ: " + join(r.mismatched, 4);
    if (!r.missing.empty())
      what += (what.empty() ? "" : "; ") + ("not in the file: " + join(r.missing));
    if (!r.unused.empty())
      what += (what.empty() ? "" : "; ") + ("not in the model: " + join(r.unused));
    throw Error(path + ": does not fit the model (" + what +
                "); --partial (network.partial) loads the tensors that fit and skips the rest");
  }
  // --partial with nothing that fits would train from the random init as if it had loaded: the
  // file is another model's, or not weights at all (an optimizer state).
  if (r.loaded.empty()) {
    std::vector<std::string> have, want;
    for (const auto& [name, t] : file.tensors) have.push_back(name);
    for (const auto& [name, t] : model.state_dict())
      if (!name_under(name, keep_prefixes)) want.push_back(name);
    throw Error(path + ": none of its " + std::to_string(have.size()) +
                " tensors fits the model (the file holds " +
                (have.empty() ? "none" : join(have, 4)) + "; the model wants " + join(want, 4) +
                "): give the weights of this model (model.safetensors)");
  }
  model.load_state_dict(to_load, /*strict=*/false);
  return r;
}

}  // namespace cyclone::train
