// StateSnapshot: an in-memory copy of everything a short experiment on a model changes, so it can
// be undone: parameters and buffers (batch-norm statistics), the optimizer's state, step counts,
// rate and momentum, and the random streams. The LR range test takes one before it starts and
// restores it after, so that training after the test is bit-for-bit the training without it.
#pragma once

#include <memory>
#include <vector>

#include "cyclone/core/generator.h"
#include "cyclone/layers/module.h"
#include "cyclone/optim/optimizer.h"

namespace cyclone::train {

// `generators` (non-null, each once) followed by the model's own random streams not among them.
std::vector<std::shared_ptr<Generator>> with_model_generators(
    const Module& model, std::vector<std::shared_ptr<Generator>> generators);

class StateSnapshot {
 public:
  // Deep copies (on the tensors' own devices). `generators` are random streams to put back
  // besides the model's own (Module::random_generators(): its dropout) and the process-wide
  // default generator, which are always included.
  StateSnapshot(const Module& model, const optim::Optimizer& optimizer,
                std::vector<std::shared_ptr<Generator>> generators = {});
  // Puts every captured value back in place (tensors keep their identity). Gradients are released.
  void restore(Module& model, optim::Optimizer& optimizer) const;

 private:
  NamedTensors model_;
  optim::OptimizerState optimizer_;
  struct Rng {
    std::shared_ptr<Generator> gen;  // null: the default generator
    uint64_t seed, offset;
  };
  std::vector<Rng> rngs_;
};

}  // namespace cyclone::train
