#include "cyclone/optim/nadam.h"

#include <cmath>
#include <nlohmann/json.hpp>

namespace cyclone::optim {

namespace {
// PyTorch's checks (torch.optim.NAdam.__init__), each error naming its option.
kernels::OptimConfig nadam_config(const NadamOptions& o) {
  for (auto [what, b] : {std::pair{"beta1", o.beta1}, std::pair{"beta2", o.beta2}})
    CYCLONE_CHECK(std::isfinite(b) && b >= 0 && b < 1, "nadam: ", what, " must be in [0, 1), got ",
                  b);
  CYCLONE_CHECK(std::isfinite(o.eps) && o.eps >= 0, "nadam: eps must be >= 0, got ", o.eps);
  CYCLONE_CHECK(std::isfinite(o.momentum_decay) && o.momentum_decay >= 0,
                "nadam: momentum_decay must be >= 0, got ", o.momentum_decay);
  for (const ParamGroupSpec& g : o.groups)
    CYCLONE_CHECK(!g.momentum || *g.momentum < 1, "nadam: group '", g.name,
                  "' sets beta1 (momentum) ", *g.momentum, ", which must be < 1");
  kernels::OptimConfig c;
  c.algo = kernels::OptimAlgo::kNadam;
  c.eps = o.eps;
  c.momentum_decay = o.momentum_decay;
  c.decoupled = o.decoupled_weight_decay;
  return c;
}
}  // namespace

Nadam::Nadam(NamedTensors params, const NadamOptions& options)
    : Optimizer("nadam", std::move(params), options, nadam_config(options),
                {"exp_avg", "exp_avg_sq", ""}, options.beta1, options.beta2),
      options_(options) {}

std::string Nadam::options_json() const {
  nlohmann::json j = {{"eps", options_.eps},
                      {"momentum_decay", options_.momentum_decay},
                      {"decoupled_weight_decay", options_.decoupled_weight_decay},
                      {"no_decay_bn_bias", options_.no_decay_bn_bias}};
  return j.dump();
}

}  // namespace cyclone::optim
