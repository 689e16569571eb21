// The model registry: a network by name, sized by the dataset (DESIGN.md habit 9: one
// function-local table, no static registration).
//
// Names:
//   lenet5          LeNet-5 (models/lenet.h)
//   mlp             an MLP with hidden layers 512, 256; mlp-H1-H2-... for other sizes
//                   (models/mlp.h)
//   wrn-D-K         Wide ResNet of depth D (6n + 4) and widen factor K (models/wide_resnet.h);
//                   wrn-16-4, wrn-16-8, wrn-28-10, wrn-40-4 are listed by name
//   resnetN         CIFAR ResNet of depth N (6n + 2) (models/resnet_cifar.h); resnet20, 32, 44,
//                   56, 110 are listed by name
// An unknown name is an Error listing the names and the patterns; a pattern with an invalid depth
// is an Error naming the depth.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cyclone/layers/module.h"
#include "cyclone/models/options.h"

namespace cyclone {

std::shared_ptr<Module> make_model(const std::string& name, const ModelOptions& o);
// The names listed above, in that order (the patterns accept more).
std::vector<std::string> model_names();
// "wrn-D-K (D = 6n + 4), resnetN (N = 6n + 2), mlp-H1-H2-...": for help texts and errors.
std::string model_patterns();

}  // namespace cyclone
