// Define-by-run reverse-mode autodiff (a tape of backward closures, as Flashlight's Variable).
//
// An op computes its output with kernels, then calls record() with the inputs and a closure that
// maps the output's gradient to the inputs' gradients. backward() walks the graph from a scalar in
// reverse topological order, sums the gradients reaching each tensor, calls each closure once, and
// accumulates into the .grad of leaves that require a gradient. Closures run with grad mode off.
//
// A closure must not capture its own output (that would be a reference cycle): the engine hands
// the output to it as an argument.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cyclone/core/tensor.h"

namespace cyclone::autograd {

// Gradients of the inputs, in the order of record()'s inputs; an undefined Tensor for an input
// that needs none.
using BackwardFn =
    std::function<std::vector<Tensor>(const Tensor& grad_output, const Tensor& output)>;

class Node {
 public:
  // Notes each input's version: apply() refuses to run when one has changed in place since (its
  // closure would compute with the new values, a wrong gradient without a word).
  Node(std::string name, std::vector<Tensor> inputs, BackwardFn fn);
  const std::string& name() const { return name_; }
  const std::vector<Tensor>& inputs() const { return inputs_; }
  bool released() const { return !fn_; }
  std::vector<Tensor> apply(const Tensor& grad_output, const Tensor& output) const;
  // Frees the saved tensors (the closure and the input handles).
  void release() {
    fn_ = nullptr;
    inputs_.clear();
    versions_.clear();
  }

 private:
  std::string name_;
  std::vector<Tensor> inputs_;
  std::vector<uint64_t> versions_;
  BackwardFn fn_;
};

// Whether ops record history (thread-local; on by default).
bool grad_enabled();
void set_grad_enabled(bool on);

// Disables recording for its scope (evaluation, optimizer updates, inside backward).
class NoGradGuard {
 public:
  NoGradGuard() : prev_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

// True when recording is on and some input requires a gradient.
bool needs_grad(std::initializer_list<const Tensor*> inputs);
bool needs_grad(const std::vector<Tensor>& inputs);

// Attaches history to `output` when needs_grad(inputs); returns output either way.
Tensor record(Tensor output, std::string name, std::vector<Tensor> inputs, BackwardFn fn);

// While one is alive on a thread, backward() on that thread calls `fn(leaf)` for each leaf whose
// .grad the pass has finished accumulating (no later node of the pass adds to it), in the order the
// pass reaches them. Data-parallel training uses it to start all-reducing a bucket of gradients
// while the rest of the backward pass runs (dist/grad_reducer.h). Scopes nest.
class GradReadyHook {
 public:
  explicit GradReadyHook(std::function<void(const Tensor& leaf)> fn);
  ~GradReadyHook();
  GradReadyHook(const GradReadyHook&) = delete;
  GradReadyHook& operator=(const GradReadyHook&) = delete;

 private:
  std::function<void(const Tensor&)> fn_;
  const std::function<void(const Tensor&)>* prev_;
};

// The engine behind Tensor::backward().
void backward(const Tensor& root, const Tensor& grad_root, bool retain_graph);

// dst += src, elementwise, same shape/dtype/device (float32 or float64). The engine's only kernel:
// it lives here rather than in kernels/ because core may not use the folders above it.
void accumulate(const Tensor& dst, const Tensor& src);

}  // namespace cyclone::autograd
