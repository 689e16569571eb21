// SGD with momentum, dampening, Nesterov momentum and weight decay (torch.optim.SGD):
//   g <- g + wd p;  b <- g (first step) or mu b + (1 - dampening) g;
//   g <- g + mu b (nesterov) or b;  p <- p - lr g
// (kernels/optim_math.h). State: "momentum_buffer" when built with momentum > 0 (in the options or
// a group); set_momentum() then drives mu, as a cyclical-momentum policy does.
#pragma once

#include "cyclone/optim/optimizer.h"

namespace cyclone::optim {

struct SgdOptions : CommonOptions {
  double momentum = 0;
  double dampening = 0;
  bool nesterov = false;  // needs momentum > 0 and dampening 0 (PyTorch's rule)
};

class Sgd : public Optimizer {
 public:
  explicit Sgd(NamedTensors params, const SgdOptions& options = {});
  const SgdOptions& options() const { return options_; }

 protected:
  std::string options_json() const override;

 private:
  SgdOptions options_;
};

}  // namespace cyclone::optim
