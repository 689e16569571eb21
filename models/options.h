// ModelOptions: what every model of the registry is built from. The input size and the class
// count come from the dataset (data/), the rest from the run's config or flags.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cyclone/core/device.h"
#include "cyclone/core/generator.h"
#include "cyclone/layers/init.h"
#include "cyclone/layers/modules.h"
#include "cyclone/layers/residual.h"

namespace cyclone {

struct ModelOptions {
  int in_channels = 3;
  int height = 32;
  int width = 32;
  int num_classes = 10;
  std::string activation = "relu";         // layers/activation_ops.h names
  std::string initializer = kDefaultInit;  // conv and linear weights (layers/init.h names)
  double dropout = 0;                      // where the architecture has a place for it
  // Channels per block (microDL's num_filters_per_block), for the models with that knob: LeNet-5
  // (2 values), the CIFAR ResNets (3: the stages' widths). Empty: the paper's.
  std::vector<int64_t> filters = {};
  // Weight init draws from a Generator seeded with `seed` alone, in construction order, so the
  // same options give the same weights on every device and in every process.
  uint64_t seed = Generator::kDefaultSeed;
  Device device = default_device();
  // The generator of the dropout masks, shared by every Dropout of the model. When null the model
  // makes one seeded with dropout_seed(seed); a training loop that checkpoints its RNG state
  // passes its own.
  std::shared_ptr<Generator> dropout_generator = {};
};

// The dropout stream's seed: a different Philox key from the init stream's, so masks and weights
// are independent draws.
inline uint64_t dropout_seed(uint64_t seed) { return seed ^ 0x9E3779B97F4A7C15ull; }

// Checks the input geometry and class count, naming `model` and the offending value.
void check_model_options(const char* model, const ModelOptions& o);

// The BlockOptions of layers/residual.h for `o`, drawing init from `gen`, with the model's dropout
// generator (made here if o has none).
BlockOptions block_options(const ModelOptions& o, Generator& gen);

// A Linear whose weight is initialised by o.initializer from `gen` and whose bias starts at 0
// (Keras' Dense defaults, and what the reference WRN does to its classifier's bias).
std::shared_ptr<Linear> make_linear(int64_t in, int64_t out, const ModelOptions& o, Generator& gen);

}  // namespace cyclone
