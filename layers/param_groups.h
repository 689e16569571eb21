// Which parameters should not be weight-decayed: the convention of PyTorch training recipes
// (timm's param_groups_weight_decay, torchvision's --norm-weight-decay) that exempts batch-norm
// scales/shifts and every bias, recognised by their rank: rank <= 1 parameters are exactly those
// (BN weight/bias [C], conv/linear bias [out]), while conv and linear weights have rank >= 2.
// Weight decay on a BN scale only changes the effective learning rate of the layer it follows
// and on a bias it pulls an offset toward zero for no regularising benefit.
//
// The optimizers (optim/) take parameter groups; these helpers only say which names go where, so
// train/ builds a decay group and a no-decay group from them.
#pragma once

#include <string>
#include <vector>

#include "cyclone/layers/module.h"

namespace cyclone {

// True for a parameter that the convention exempts from weight decay (rank <= 1).
bool is_no_weight_decay(const Tensor& param);
// The exempt parameters of `model` / the rest, by name, in named_parameters() order (trainable
// ones only when trainable_only). Together they partition named_parameters().
NamedTensors no_weight_decay_params(const Module& model, bool trainable_only = false);
NamedTensors weight_decay_params(const Module& model, bool trainable_only = false);
std::vector<std::string> no_weight_decay_names(const Module& model);

}  // namespace cyclone
