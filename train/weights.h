// Starting from weights: `./bin/train --model_fname W [--partial]` and network.model_fname.
//
// The file is safetensors, ours (Module::save) or PyTorch's (safetensors.torch.save_file of a
// state_dict with the same names: "conv1.weight", "fc3.bias", "layer1.0.bn1.running_mean" — the
// dotted module paths of the model, README "Starting from weights"). Every model tensor whose
// name and shape match is loaded (float64 is narrowed to float32). Anything else — a shape
// that differs, a model tensor the file lacks, a file tensor the model lacks — is an Error
// naming them all, unless `partial`: then they are skipped and listed (the usual case: a new
// head with another number of classes). Tensors under `keep_prefixes` keep the model's values
// (a head replaced on purpose); they are listed too. A file of which no tensor loads is an Error
// even when `partial`, naming the first tensors of the file and of the model.
#pragma once

#include <string>
#include <vector>

#include "cyclone/layers/module.h"

namespace cyclone::train {

struct WeightsReport {
  std::vector<std::string> loaded = {};
  std::vector<std::string> kept = {};        // under keep_prefixes
  std::vector<std::string> mismatched = {};  // "name: [a, b] in the file, [c, d] in the model"
  std::vector<std::string> missing = {};     // in the model, not in the file
  std::vector<std::string> unused = {};      // in the file, not in the model
  // "loaded 10 of 10 tensors" plus what was skipped, one line.
  std::string summary() const;
};

WeightsReport load_weights(Module& model, const std::string& path, bool partial,
                           const std::vector<std::string>& keep_prefixes = {});

// Whether the parameter `name` starts with one of `prefixes` (a layer group's selection).
bool name_under(const std::string& name, const std::vector<std::string>& prefixes);

}  // namespace cyclone::train
