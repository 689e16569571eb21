// The basic modules: Linear, Sequential, Flatten, and a named activation. Convolution, batch
// norm, pooling and dropout modules sit beside them in layers/conv_modules.h etc.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cyclone/layers/module.h"

namespace cyclone {

class Generator;

// y = x W^T + b, W [out, in] (torch.nn.Linear). Initialised as PyTorch does by default:
// W, b ~ U(-1/sqrt(in), 1/sqrt(in)) from `gen` (the process default generator when null).
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true,
         Device device = default_device(), Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Linear"; }
  std::string extra_repr() const override;
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }

 private:
  int64_t in_, out_;
  Tensor weight_, bias_;
};

// Runs its children in order; they are named "0", "1", ... (torch.nn.Sequential).
class Sequential : public Module {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<std::shared_ptr<Module>> layers);
  Sequential& add(std::shared_ptr<Module> layer);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Sequential"; }
  size_t size() const { return layers_.size(); }
  Module& operator[](size_t i) const { return *layers_.at(i); }
  // One stage per layer ("0", "1", ...).
  std::vector<Stage> stages() const override;
  Tensor forward_stages(const Tensor& x, size_t begin, size_t end) override;

 private:
  std::vector<std::shared_ptr<Module>> layers_;
};

// [N, d1, d2, ...] -> [N, d1*d2*...].
class Flatten : public Module {
 public:
  // A rank-4 input in a channels-last scope (layers/layout.h) goes back to NCHW first, so the
  // features come in PyTorch's order.
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Flatten"; }
};

// An elementwise activation by name: relu, tanh, sigmoid (and, with layers/activation_ops.h,
// every name activation_names() lists). An unknown name is an Error listing the known ones.
class Activation : public Module {
 public:
  explicit Activation(std::string name);
  Tensor forward(const Tensor& x) override { return fn_(x); }
  std::string type_name() const override { return "Activation"; }
  std::string extra_repr() const override { return name_; }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::function<Tensor(const Tensor&)> fn_;
};

}  // namespace cyclone
