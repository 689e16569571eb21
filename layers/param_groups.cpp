#include "cyclone/layers/param_groups.h"

namespace cyclone {

bool is_no_weight_decay(const Tensor& param) { return param.rank() <= 1; }

namespace {

NamedTensors select(const Module& model, bool trainable_only, bool exempt) {
  NamedTensors out;
  for (auto& [name, p] : model.named_parameters(trainable_only))
    if (is_no_weight_decay(p) == exempt) out.emplace_back(name, p);
  return out;
}

}  // namespace

NamedTensors no_weight_decay_params(const Module& model, bool trainable_only) {
  return select(model, trainable_only, true);
}

NamedTensors weight_decay_params(const Module& model, bool trainable_only) {
  return select(model, trainable_only, false);
}

std::vector<std::string> no_weight_decay_names(const Module& model) {
  std::vector<std::string> out;
  for (auto& [name, p] : no_weight_decay_params(model)) out.push_back(name);
  return out;
}

}  // namespace cyclone
