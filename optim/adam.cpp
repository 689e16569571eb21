#include "cyclone/optim/adam.h"

#include <cmath>
#include <nlohmann/json.hpp>

namespace cyclone::optim {

namespace {
kernels::OptimConfig adam_config(const std::string& name, const AdamOptions& o) {
  for (auto [what, b] : {std::pair{"beta1", o.beta1}, std::pair{"beta2", o.beta2}})
    CYCLONE_CHECK(std::isfinite(b) && b >= 0 && b < 1, name, ": ", what, " must be in [0, 1), got ",
                  b);
  CYCLONE_CHECK(std::isfinite(o.eps) && o.eps >= 0, name, ": eps must be >= 0, got ", o.eps);
  for (const ParamGroupSpec& g : o.groups)
    CYCLONE_CHECK(!g.momentum || *g.momentum < 1, name, ": group '", g.name,
                  "' sets beta1 (momentum) ", *g.momentum, ", which must be < 1");
  kernels::OptimConfig c;
  c.algo = kernels::OptimAlgo::kAdam;
  c.eps = o.eps;
  c.amsgrad = o.amsgrad;
  c.decoupled = o.decoupled_weight_decay;
  return c;
}

AdamOptions decoupled(AdamOptions o) {
  o.decoupled_weight_decay = true;
  return o;
}
}  // namespace

Adam::Adam(NamedTensors params, const AdamOptions& options)
    : Adam(options.decoupled_weight_decay ? "adamw" : "adam", std::move(params), options) {}

Adam::Adam(std::string name, NamedTensors params, const AdamOptions& options)
    : Optimizer(name, std::move(params), options, adam_config(name, options),
                {"exp_avg", "exp_avg_sq", options.amsgrad ? "max_exp_avg_sq" : ""}, options.beta1,
                options.beta2),
      options_(options) {}

std::string Adam::options_json() const {
  nlohmann::json j = {{"eps", options_.eps},
                      {"amsgrad", options_.amsgrad},
                      {"decoupled_weight_decay", options_.decoupled_weight_decay},
                      {"no_decay_bn_bias", options_.no_decay_bn_bias}};
  return j.dump();
}

AdamW::AdamW(NamedTensors params, const AdamOptions& options)
    : Adam("adamw", std::move(params), decoupled(options)) {}

}  // namespace cyclone::optim
