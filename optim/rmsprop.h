// RMSprop (torch.optim.RMSprop; Hinton's lecture 6e, centered as Graves 2013):
//   g <- g + wd p;  v <- alpha v + (1 - alpha) g^2
//   centered: a <- alpha a + (1 - alpha) g, s = sqrt(v - a^2) + eps;  else s = sqrt(v) + eps
//   momentum mu > 0: b <- mu b + g / s, p <- p - lr b;  else p <- p - lr g / s
// (kernels/optim_math.h). State: "square_avg", "momentum_buffer" (built with momentum > 0),
// "grad_avg" (centered). set_momentum() drives mu.
#pragma once

#include "cyclone/optim/optimizer.h"

namespace cyclone::optim {

struct RmspropOptions : CommonOptions {
  RmspropOptions() { lr = 1e-2; }  // PyTorch's default
  double alpha = 0.99;
  double eps = 1e-8;
  double momentum = 0;
  bool centered = false;
};

class Rmsprop : public Optimizer {
 public:
  explicit Rmsprop(NamedTensors params, const RmspropOptions& options = {});
  const RmspropOptions& options() const { return options_; }

 protected:
  std::string options_json() const override;

 private:
  RmspropOptions options_;
};

}  // namespace cyclone::optim
