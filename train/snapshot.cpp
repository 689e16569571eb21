#include "cyclone/train/snapshot.h"

#include <algorithm>

#include "cyclone/core/autograd.h"
#include "cyclone/core/error.h"

namespace cyclone::train {

namespace {

NamedTensors deep_copy(const NamedTensors& in) {
  autograd::NoGradGuard no_grad;
  NamedTensors out;
  out.reserve(in.size());
  for (const auto& [n, t] : in) out.emplace_back(n, t.detach().clone());
  return out;
}

}  // namespace

std::vector<std::shared_ptr<Generator>> with_model_generators(
    const Module& model, std::vector<std::shared_ptr<Generator>> generators) {
  std::vector<std::shared_ptr<Generator>> out;
  for (auto& g : generators)
    if (g && std::find(out.begin(), out.end(), g) == out.end()) out.push_back(std::move(g));
  for (auto& g : model.random_generators())
    if (std::find(out.begin(), out.end(), g) == out.end()) out.push_back(std::move(g));
  return out;
}

std::vector<std::pair<uint64_t, uint64_t>> random_stream_states(
    const Module& model, std::vector<std::shared_ptr<Generator>> generators) {
  std::vector<std::pair<uint64_t, uint64_t>> out = {
      {default_generator().seed(), default_generator().offset()}};
  for (const auto& g : with_model_generators(model, std::move(generators)))
    out.emplace_back(g->seed(), g->offset());
  return out;
}

void set_random_stream_states(const Module& model,
                              std::vector<std::shared_ptr<Generator>> generators,
                              const std::vector<std::pair<uint64_t, uint64_t>>& states,
                              const std::string& origin) {
  const auto gens = with_model_generators(model, std::move(generators));
  CYCLONE_CHECK(states.size() == gens.size() + 1, origin, ": ", states.size(),
                " random streams recorded, this run has ", gens.size() + 1);
  default_generator().set_state(states[0].first, states[0].second);
  for (size_t i = 0; i < gens.size(); ++i)
    gens[i]->set_state(states[i + 1].first, states[i + 1].second);
}

StateSnapshot::StateSnapshot(const Module& model, const optim::Optimizer& optimizer,
                             std::vector<std::shared_ptr<Generator>> generators) {
  model_ = deep_copy(model.state_dict());
  optimizer_ = optimizer.state_dict();
  optimizer_.tensors = deep_copy(optimizer_.tensors);
  rngs_.push_back({nullptr, default_generator().seed(), default_generator().offset()});
  for (auto& g : with_model_generators(model, std::move(generators)))
    rngs_.push_back({g, g->seed(), g->offset()});
}

void StateSnapshot::restore(Module& model, optim::Optimizer& optimizer) const {
  autograd::NoGradGuard no_grad;
  model.load_state_dict(model_);
  optimizer.load_state_dict(optimizer_);
  optimizer.zero_grad(/*set_to_none=*/true);
  for (const Rng& r : rngs_) (r.gen ? *r.gen : default_generator()).set_state(r.seed, r.offset);
}

}  // namespace cyclone::train
