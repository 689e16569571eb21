// Adam (torch.optim.Adam) and AdamW (torch.optim.AdamW): bias-corrected moment estimates, optional
// AMSGrad (the running maximum of v in the denominator), L2 weight decay added to the gradient
// (Adam) or decoupled decay p <- p (1 - lr wd) (AdamW, Loshchilov & Hutter 2019):
//   m <- beta1 m + (1 - beta1) g;  v <- beta2 v + (1 - beta2) g^2
//   p <- p - (lr / (1 - beta1^t)) m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// (kernels/optim_math.h). State: "exp_avg", "exp_avg_sq", "max_exp_avg_sq" (amsgrad). beta1 is the
// optimizer's momentum: set_momentum() sets it, as PyTorch's OneCycleLR cycles beta1 for Adam.
#pragma once

#include "cyclone/optim/optimizer.h"

namespace cyclone::optim {

struct AdamOptions : CommonOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  bool amsgrad = false;
  bool decoupled_weight_decay = false;  // AdamW
};

// AdamW's defaults: PyTorch's weight_decay of 1e-2, decoupled.
struct AdamWOptions : AdamOptions {
  AdamWOptions() {
    weight_decay = 1e-2;
    decoupled_weight_decay = true;
  }
};

class Adam : public Optimizer {
 public:
  explicit Adam(NamedTensors params, const AdamOptions& options = {});
  const AdamOptions& options() const { return options_; }

 protected:
  Adam(std::string name, NamedTensors params, const AdamOptions& options);
  std::string options_json() const override;

 private:
  AdamOptions options_;
};

// Adam with decoupled weight decay (the flag is forced on).
class AdamW : public Adam {
 public:
  explicit AdamW(NamedTensors params, const AdamOptions& options = AdamWOptions());
};

}  // namespace cyclone::optim
