// NAdam (torch.optim.NAdam; Dozat 2016, "Incorporating Nesterov Momentum into Adam"): Adam whose
// step looks ahead with Nesterov momentum, the momentum coefficient warmed up by a schedule
// mu_t = beta1 (1 - 0.5 * 0.96^(t momentum_decay)) and the bias correction a running product of
// the mu_t; L2 weight decay added to the gradient, or decoupled p <- p (1 - lr wd) (NAdamW):
//   m <- beta1 m + (1 - beta1) g;  v <- beta2 v + (1 - beta2) g^2
//   d = sqrt(v / (1 - beta2^t)) + eps
//   p <- p - lr (1 - mu_t) / (1 - prod_{i<=t} mu_i) g / d
//          - lr mu_{t+1} / (1 - prod_{i<=t+1} mu_i) m / d
// (kernels/optim_math.h). State, with PyTorch's names: "exp_avg", "exp_avg_sq" and the scalar
// "mu_product" (saved as a float64 0-d tensor, so a load resumes exactly). beta1 is the
// optimizer's momentum: set_momentum() sets it, as for Adam (OneCycleLR cycles betas[0]).
#pragma once

#include "cyclone/optim/optimizer.h"

namespace cyclone::optim {

// PyTorch's defaults: lr 2e-3, betas (0.9, 0.999), eps 1e-8, weight_decay 0,
// momentum_decay 4e-3, decoupled_weight_decay false.
struct NadamOptions : CommonOptions {
  NadamOptions() { lr = 2e-3; }
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double momentum_decay = 4e-3;
  bool decoupled_weight_decay = false;
};

class Nadam : public Optimizer {
 public:
  explicit Nadam(NamedTensors params, const NadamOptions& options = {});
  const NadamOptions& options() const { return options_; }

 protected:
  std::string options_json() const override;

 private:
  NadamOptions options_;
};

}  // namespace cyclone::optim
