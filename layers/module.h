// Module: a layer or network with named parameters, buffers and sub-modules (torch.nn.Module's
// contract, kept small).
//
// Names are dotted paths in registration order — "block1.0.conv1.weight" — the same names
// state_dict() and safetensors files use, so weights written by PyTorch with the same layout load
// here. Parameters are leaves with requires_grad; buffers (batch-norm running statistics) are
// saved and moved with the module but get no gradient. Tensors keep their identity for the life of
// the module (to() and load_state_dict() replace their data in place), so an optimizer built from
// parameters() stays valid.
#pragma once

#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cyclone/core/generator.h"
#include "cyclone/core/safetensors.h"
#include "cyclone/core/tensor.h"

namespace cyclone {

// A piece of a model that can run on its own (Module::stages): its name and the top-level
// children it is made of.
struct Stage {
  std::string name = {};
  std::vector<std::string> modules = {};
};

// Named groups of parameter-name prefixes (fast.ai's layer groups): what fine-tuning freezes and
// gives differential learning rates to, first (input side) to last (the head).
using LayerGroups = std::vector<std::pair<std::string, std::vector<std::string>>>;

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  virtual Tensor forward(const Tensor& x) = 0;
  // forward(), plus the bookkeeping of summary() when one is being taken.
  Tensor operator()(const Tensor& x);
  // For a module whose work another module's fused kernel did (layers/conv_modules.h
  // batch_norm_act): summary() lists it as called, with output y. A no-op outside summary().
  void record_call(const Tensor& y);

  // "Conv2d", and the arguments that describe this instance ("3, 16, kernel_size=3").
  virtual std::string type_name() const = 0;
  virtual std::string extra_repr() const { return ""; }

  // ---- structure ----
  // Each tensor once, under its first name in module order (a weight registered twice, or a
  // sub-module added in two places, is one parameter, as in PyTorch's named_parameters): what an
  // optimizer steps. remove_duplicate = false lists every name, as state_dict() does.
  NamedTensors named_parameters(bool trainable_only = false, bool remove_duplicate = true) const;
  std::vector<Tensor> parameters(bool trainable_only = false) const;
  NamedTensors named_buffers(bool remove_duplicate = true) const;
  // Every module below this one (and this one, named ""), depth first, in registration order.
  std::vector<std::pair<std::string, Module*>> named_modules();
  // The sub-module at a dotted path ("block1.0"), or an Error naming the path.
  Module& submodule(const std::string& path);
  // Parameters whose name starts with `prefix` (a per-group learning-rate selection).
  NamedTensors parameters_with_prefix(const std::string& prefix) const;
  int64_t num_parameters(bool trainable_only = false) const;

  // The top-level child called `name` (shared), or an Error naming it.
  std::shared_ptr<Module> child(const std::string& name) const;
  // The random streams this module and those below draw from in forward() (a Dropout's own
  // generator), each once, in module order; not the process default generator. What a checkpoint
  // or a range test must save and put back for a run to go on exactly.
  std::vector<std::shared_ptr<Generator>> random_generators() const;

  // ---- pieces, for fine-tuning ----
  // A model that can run in pieces lists its stages in forward order; forward_stages(x, b, e)
  // runs stages [b, e), so forward(x) equals forward_stages(x, 0, stages().size()) and the
  // output of stages [0, k) is the input of stages [k, n). Empty (the default): not supported.
  virtual std::vector<Stage> stages() const { return {}; }
  virtual Tensor forward_stages(const Tensor& x, size_t begin, size_t end);
  // The default layer groups: one group "all" (every parameter) unless the model says better.
  virtual LayerGroups layer_groups() const { return {{"all", {""}}}; }

  // ---- modes and placement ----
  void train(bool on = true);  // this module and all below
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void to(Device device);  // parameters and buffers, in place (handles stay valid)
  // The dtype this module's convolutions and matrix products compute in when it is called:
  // kBFloat16 or kFloat16 runs forward() under an AutocastScope (layers/autocast.h: mixed
  // precision, 16-bit activations, float32 parameters) and returns the output as float32;
  // kFloat32 (the default) leaves the caller's setting alone. The training steps scale the loss
  // of a kFloat16 model (train/step.h, train/step_runner.h).
  void set_compute_dtype(DType dtype);
  DType compute_dtype() const { return compute_dtype_; }
  // Channels-last (NHWC) activations when it is called (layers/layout.h): operator() opens a
  // ChannelsLastScope around forward(), transposes a rank-4 input to [N, H, W, C] and a rank-4
  // output back to [N, C, H, W]; parameters and state dicts are unchanged. Off by default.
  void set_channels_last(bool on) { channels_last_ = on; }
  bool channels_last() const { return channels_last_; }

  // Fine-tuning: parameters below stop (or start again) requiring gradients.
  void freeze();
  void unfreeze();

  // ---- weights ----
  // Parameters then buffers, by name, every name of a shared tensor included (as in PyTorch).
  NamedTensors state_dict() const;
  // Copies every tensor of `state` into the tensor of the same name (converting the device, and
  // between float dtypes as PyTorch's load_state_dict does: float64 weights into a float32 model).
  // Shapes must match, and an integer tensor's dtype; with strict, names must match exactly both
  // ways. Errors name the tensor and both shapes. With strict = false, returns the names that were
  // skipped (missing on either side or of another shape) instead of failing on them.
  std::vector<std::string> load_state_dict(const NamedTensors& state, bool strict = true);
  void save(const std::string& path) const;  // safetensors, atomic
  // load_state_dict from a safetensors file; its errors are prefixed with the path.
  std::vector<std::string> load(const std::string& path, bool strict = true);

  // Multi-line description: one line per module with its type and extra_repr.
  std::string str() const;

 protected:
  // The generator this module itself draws from in forward(), if any (random_generators()).
  virtual std::shared_ptr<Generator> own_generator() const { return nullptr; }
  // Registers a parameter (marked requires_grad) / buffer / child under `name` (no dots).
  Tensor register_parameter(const std::string& name, Tensor t);
  Tensor register_buffer(const std::string& name, Tensor t);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    add_child(name, m);
    return m;
  }

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> m);
  void check_new_name(const std::string& name) const;
  // Appends the parameters (or buffers) below, skipping tensors already in `seen` when given.
  void collect(const std::string& prefix, bool params, bool trainable_only, NamedTensors& out,
               std::set<const void*>* seen) const;
  bool reaches(const Module* m) const;  // m is this module or one below it

  NamedTensors params_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
  DType compute_dtype_ = DType::kFloat32;
  bool channels_last_ = false;
};

// Stages [begin, end) of `model` as a module of their own: its children are the model's (shared,
// under the same names, so parameter names match the whole model's) and forward() runs
// model.forward_stages(x, begin, end), in the model's compute dtype and layout as they are when it
// is made. The model must outlive it.
class StageSlice : public Module {
 public:
  StageSlice(Module& model, size_t begin, size_t end);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "StageSlice"; }
  std::string extra_repr() const override;

 private:
  Module& model_;
  size_t begin_, end_;
};

// Runs `model` on a zero batch of `input_shape` without recording gradients and returns a table:
// one row per leaf module called (qualified name, type, output shape, parameter count) and the
// totals (parameters, trainable parameters).
std::string summary(Module& model, const Shape& input_shape, Device device = default_device());

}  // namespace cyclone
