// StateSnapshot: an in-memory copy of everything a short experiment on a model changes, so it can
// be undone: parameters and buffers (batch-norm statistics), the optimizer's state, step counts,
// rate and momentum, and the random streams. The LR range test takes one before it starts and
// restores it after, so that training after the test is bit-for-bit the training without it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cyclone/core/generator.h"
#include "cyclone/layers/module.h"
#include "cyclone/optim/optimizer.h"

namespace cyclone::train {

// `generators` (non-null, each once) followed by the model's own random streams not among them.
std::vector<std::shared_ptr<Generator>> with_model_generators(
    const Module& model, std::vector<std::shared_ptr<Generator>> generators);

// The (seed, offset) of the default generator, then of with_model_generators(model, generators):
// what a finished phase records (phase_done.json) so that a resumed run that skips it goes on
// drawing the dropout masks the run would have drawn without the stop.
std::vector<std::pair<uint64_t, uint64_t>> random_stream_states(
    const Module& model, std::vector<std::shared_ptr<Generator>> generators);
// Puts states from random_stream_states back, in the same order; an Error naming `origin` when
// their number differs (another model or another version wrote them).
void set_random_stream_states(const Module& model,
                              std::vector<std::shared_ptr<Generator>> generators,
                              const std::vector<std::pair<uint64_t, uint64_t>>& states,
                              const std::string& origin);

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
