// A multilayer perceptron on flattened images: Flatten, then for each hidden size h
// Linear(., h), act, [Dropout], then Linear(., num_classes). Built as a Sequential, so its names
// are those of the same torch.nn.Sequential ("1.weight", "1.bias", "3.weight", ...; a Dropout,
// when o.dropout > 0, takes an index after each activation as it would in PyTorch).
#pragma once

#include <memory>
#include <vector>

#include "cyclone/layers/modules.h"
#include "cyclone/models/options.h"

namespace cyclone {

// hidden: at least one positive size (the registry's "mlp" is {512, 256}).
std::shared_ptr<Sequential> make_mlp(const std::vector<int64_t>& hidden, const ModelOptions& o);

}  // namespace cyclone
