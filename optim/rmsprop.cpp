#include "cyclone/optim/rmsprop.h"

#include <cmath>
#include <nlohmann/json.hpp>

namespace cyclone::optim {

namespace {
kernels::OptimConfig rmsprop_config(const RmspropOptions& o) {
  CYCLONE_CHECK(std::isfinite(o.alpha) && o.alpha >= 0 && o.alpha <= 1,
                "rmsprop: alpha must be in [0, 1], got ", o.alpha);
  CYCLONE_CHECK(std::isfinite(o.eps) && o.eps >= 0, "rmsprop: eps must be >= 0, got ", o.eps);
  CYCLONE_CHECK(std::isfinite(o.momentum) && o.momentum >= 0 && o.momentum < 1,
                "rmsprop: momentum must be in [0, 1), got ", o.momentum);
  bool any_momentum = o.momentum > 0;
  for (const ParamGroupSpec& g : o.groups)
    any_momentum = any_momentum || g.momentum.value_or(0) > 0;
  kernels::OptimConfig c;
  c.algo = kernels::OptimAlgo::kRmsprop;
  c.eps = o.eps;
  c.centered = o.centered;
  c.has_momentum_buffer = any_momentum;
  return c;
}
}  // namespace

Rmsprop::Rmsprop(NamedTensors params, const RmspropOptions& options)
    : Optimizer("rmsprop", std::move(params), options, rmsprop_config(options),
                {"square_avg", "momentum_buffer", "grad_avg"}, options.momentum,
                /*beta2=*/options.alpha),
      options_(options) {}

std::string Rmsprop::options_json() const {
  nlohmann::json j = {{"eps", options_.eps},
                      {"alpha", options_.alpha},
                      {"centered", options_.centered},
                      {"momentum_buffer", config().has_momentum_buffer},
                      {"no_decay_bn_bias", options_.no_decay_bn_bias}};
  return j.dump();
}

}  // namespace cyclone::optim
