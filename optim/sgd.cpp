#include "cyclone/optim/sgd.h"

#include <cmath>
#include <nlohmann/json.hpp>

namespace cyclone::optim {

namespace {
kernels::OptimConfig sgd_config(const SgdOptions& o) {
  // momentum >= 1 never forgets a gradient: the velocity grows without bound.
  CYCLONE_CHECK(std::isfinite(o.momentum) && o.momentum >= 0 && o.momentum < 1,
                "sgd: momentum must be in [0, 1), got ", o.momentum);
  CYCLONE_CHECK(std::isfinite(o.dampening) && o.dampening >= 0 && o.dampening <= 1,
                "sgd: dampening must be in [0, 1], got ", o.dampening);
  bool any_momentum = o.momentum > 0;
  for (const ParamGroupSpec& g : o.groups)
    any_momentum = any_momentum || g.momentum.value_or(0) > 0;
  CYCLONE_CHECK(!o.nesterov || (any_momentum && o.dampening == 0),
                "sgd: nesterov needs momentum > 0 and dampening 0 (momentum ", o.momentum,
                ", dampening ", o.dampening, ")");
  kernels::OptimConfig c;
  c.algo = kernels::OptimAlgo::kSgd;
  c.dampening = o.dampening;
  c.nesterov = o.nesterov;
  c.has_momentum_buffer = any_momentum;
  return c;
}
}  // namespace

Sgd::Sgd(NamedTensors params, const SgdOptions& options)
    : Optimizer("sgd", std::move(params), options, sgd_config(options), {"momentum_buffer", "", ""},
                options.momentum, /*beta2=*/0),
      options_(options) {}

std::string Sgd::options_json() const {
  // Options that shape the state and the math; lr, momentum and groups are saved separately.
  nlohmann::json j = {{"dampening", options_.dampening},
                      {"nesterov", options_.nesterov},
                      {"momentum_buffer", config().has_momentum_buffer},
                      {"no_decay_bn_bias", options_.no_decay_bn_bias}};
  return j.dump();
}

}  // namespace cyclone::optim
