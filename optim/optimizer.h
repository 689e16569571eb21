// Optimizer: the base of SGD, Adam(W), RMSprop and NAdam (torch.optim.Optimizer's contract, kept
// small).
//
// Parameters arrive as named tensors (Module::named_parameters(): "block1.0.conv1.weight"), each a
// leaf that requires a gradient. A step updates, in place, every parameter whose .grad is defined
// (one with no gradient this step is skipped and its own step count does not advance, as in
// PyTorch). The update math is kernels/optim_math.h; on a GPU one fused kernel launch updates all
// parameters of one dtype (kernels/optim_update.h).
//
// Parameter groups. Each ParamGroupSpec takes the parameters whose name starts with one of its
// prefixes (the first spec that matches wins; the rest go to the group "default"), with its own
// learning-rate multiplier, weight decay and momentum. Differential learning rates (fast.ai's
// 1e-4 / 1e-3 / 1e-2 for early / middle / last layers) are groups with lr_mult 0.01 / 0.1 / 1 on
// one base rate, so one policy drives them all. With no_decay_bn_bias, batch-norm and bias
// parameters (rank <= 1, or a name ending in ".bias" or containing "bn") of any group move to a
// twin of that group named "<group>.no_decay" with the same multiplier and weight decay 0.
//
// Hyperparameters. The base learning rate and momentum (SGD / RMSprop momentum, Adam's and NAdam's
// beta1, as PyTorch's OneCycleLR cycles beta1 for Adam) change per step: the trainer calls
// set_lr() / set_momentum() with its policies' values, then step(). A group whose spec sets
// momentum keeps that value. On CUDA these scalars live in a device buffer the fused kernel reads,
// so a training step captured in a CUDA graph replays with new values: call prepare_step() (host
// bookkeeping and an asynchronous upload of the scalars) outside the graph and launch_step() inside
// it. step() is the two in a row.
//
// Gradient storage should outlive a step: zero_grad() zeroes in place by default, so the cached
// launch table stays valid (a new gradient tensor makes the next step rebuild it, which waits for
// one small host-to-device copy).
//
// State. state_dict() holds the state tensors as "state.<param name>.<slot>" (PyTorch's slot
// names: momentum_buffer, exp_avg, exp_avg_sq, max_exp_avg_sq, square_avg, grad_avg, and NAdam's
// scalar mu_product as a float64 0-d tensor) and, in the metadata key "cyclone.optimizer", JSON
// with the optimizer's name, options, step counts (global and per parameter), current lr /
// momentum / beta2 and the groups. save() writes it as one safetensors file, atomically; load()
// validates names, shapes and dtypes (errors name what does not match) and resumes exactly
// (optimizer_state.cpp).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cyclone/core/safetensors.h"
#include "cyclone/core/tensor.h"
#include "cyclone/kernels/optim_math.h"

namespace cyclone::kernels {
class OptimPlan;
class OptimScalarsBuffer;
}  // namespace cyclone::kernels

namespace cyclone::optim {

struct ParamGroupSpec {
  std::string name = {};                   // "" -> "group<i>"
  std::vector<std::string> prefixes = {};  // name prefixes that select the group's parameters
  double lr_mult = 1;
  std::optional<double> weight_decay = {};  // default: the optimizer's
  std::optional<double> momentum = {};      // default: the optimizer's (follows set_momentum)
};

// Options every optimizer takes.
struct CommonOptions {
  double lr = 1e-3;
  double weight_decay = 0;
  std::vector<ParamGroupSpec> groups = {};
  bool no_decay_bn_bias = false;
};

// A resolved group: the spec's values and the names of its parameters.
struct ParamGroup {
  std::string name = {};
  std::vector<std::string> prefixes = {};
  double lr_mult = 1;
  double weight_decay = 0;
  std::optional<double> momentum = {};
  std::vector<std::string> params = {};
};

struct OptimizerState {
  NamedTensors tensors = {};
  std::map<std::string, std::string> metadata = {};
};

// True for the parameters no_decay_bn_bias exempts from weight decay.
bool is_bn_or_bias(const std::string& name, const Tensor& param);

class Optimizer {
 public:
  virtual ~Optimizer();
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // "sgd", "adam", "adamw", "rmsprop", "nadam"
  const std::string& name() const { return name_; }

  // ---- stepping ----
  void step() {
    prepare_step();
    launch_step();
  }
  // Host side of a step: advances the step counts of the parameters that have a gradient, rebuilds
  // the launch tables if that set or their storage changed, uploads the scalars (asynchronously).
  void prepare_step();
  // The update itself: one launch per (device, dtype) on CUDA; capturable in a CUDA graph. With a
  // `gate` (one float32 element on the parameters' device) the update happens only when the gate
  // is positive when it runs (kernels/optim_update.h): how a step is skipped on the device.
  void launch_step(const Tensor& gate = Tensor());
  // Takes back the step counts of `n` prepared steps whose update the gate turned off (the host
  // learns it later, train/step_runner.h): the global count and that of every parameter that has
  // a gradient now go back by n, so the next step's bias corrections are those of an optimizer
  // that never saw the skipped steps.
  void unstep(int64_t n);
  // Changes whenever prepare_step() rebuilds the launch tables (new device memory): a CUDA graph
  // that captured launch_step() must be captured again after it changes.
  uint64_t plan_generation() const { return plan_generation_; }
  // Gradients to zero, in place (set_to_none=false keeps the launch tables valid) or released.
  void zero_grad(bool set_to_none = false);

  // ---- hyperparameters (base values; groups apply their multipliers) ----
  void set_lr(double lr);
  double lr() const;
  // SGD / RMSprop momentum, Adam / NAdam beta1.
  void set_momentum(double momentum);
  double momentum() const;
  void set_hyperparams(double lr, double momentum) {
    set_lr(lr);
    set_momentum(momentum);
  }
  int64_t step_count() const { return step_; }

  // ---- parameters and groups ----
  const NamedTensors& params() const { return params_; }
  const std::vector<ParamGroup>& groups() const { return groups_; }
  const ParamGroup& group_of(const std::string& param_name) const;
  // Changes a group's multiplier or weight decay (a layer-wise schedule, unfreezing stages).
  void set_group_lr_mult(const std::string& group, double lr_mult);
  void set_group_weight_decay(const std::string& group, double weight_decay);
  int64_t param_step_count(const std::string& param_name) const;

  // ---- state ----
  // The state tensor of a parameter and slot ("exp_avg"), or an Error naming both. NAdam's
  // "mu_product" comes back as a float64 0-d tensor on the CPU (a copy).
  Tensor state(const std::string& param_name, const std::string& slot) const;
  OptimizerState state_dict() const;
  void load_state_dict(const OptimizerState& state);
  void save(const std::string& path) const;
  void load(const std::string& path);

 protected:
  // `slots`: the state names of kernel slots 0..2 ("" for a slot unused under `config`).
  Optimizer(std::string name, NamedTensors params, const CommonOptions& options,
            const kernels::OptimConfig& config, std::vector<std::string> slots, double momentum,
            double beta2);
  // The algorithm's options as JSON (validated on load: a file from another configuration of the
  // same optimizer is an error naming the option).
  virtual std::string options_json() const = 0;
  const kernels::OptimConfig& config() const { return config_; }
  double beta2() const;

 private:
  struct Plan;
  static constexpr const char* kMuProductSlot = "mu_product";
  Tensor mu_product(size_t param) const;  // NAdam's P at the parameter's step count, 0-d, CPU
  void build_groups(const CommonOptions& options);
  void mark_tables_dirty() { tables_dirty_ = true; }
  std::vector<kernels::OptimGroupParams> group_params() const;
  size_t param_index(const std::string& param_name) const;
  size_t group_index(const std::string& group) const;

  std::string name_;
  NamedTensors params_;
  kernels::OptimConfig config_;
  std::vector<std::string> slots_;
  std::vector<ParamGroup> groups_;
  std::vector<int32_t> param_group_;        // group index of each parameter
  std::vector<std::vector<Tensor>> state_;  // [param][slot]; undefined where unused
  // [param]: NAdam's mu product pair (kernels/optim_math.h); undefined for other algorithms.
  std::vector<Tensor> mu_product_;
  std::vector<int64_t> param_steps_;
  int64_t step_ = 0;
  uint64_t plan_generation_ = 0;
  std::unique_ptr<kernels::OptimScalarsBuffer> scalars_;
  std::vector<Plan> plans_;  // one per (device, dtype) of the parameters with a gradient
  bool tables_dirty_ = true;
};

// The registry (DESIGN.md habit 9): "sgd", "adam", "adamw", "rmsprop", "nadam" (in any case:
// "SGD" is "sgd"). `options_json` is an object of the optimizer's options, e.g. {"lr": 0.1,
// "momentum": 0.9, "nesterov": true, "weight_decay": 5e-4, "no_decay_bn_bias": true, "groups":
// [{"name": "head", "prefixes": ["fc."], "lr_mult": 10}]}. Unknown names and keys are Errors
// listing the valid ones.
std::unique_ptr<Optimizer> make_optimizer(const std::string& name, NamedTensors params,
                                          const std::string& options_json = "{}");
std::vector<std::string> optimizer_names();

}  // namespace cyclone::optim
