// `./bin/train --config run.yml` (or run.json): a whole run in one file, in microDL's layout
// (dataset / network / trainer), read into a RunSpec (run.h). YAML and JSON give the same tree
// (config_tree.h) and one validator reads it. The README's "Config keys" section lists every key;
// in short (YAML, defaults shown):
//
//   dataset:
//     name: fashion_mnist        # required: mnist, fashion_mnist, cifar10, cifar100, synthetic...
//     data_dir: ""               # "": the dataset's default place (fetched when missing)
//     random_seed: 0             # the split, the shuffles, the init and the dropout masks
//     split_ratio: {train: 1, val: 0, test: 0}   # carved from the training files by the seed
//     height: 28                 # optional: checked against the data
//     width: 28
//     augment: auto              # true / false / auto (CIFAR: crop + flip)
//     pad_to: 0                  # > 0: images zero-padded to pad_to x pad_to (e.g. 32 for a
//                                #   CIFAR network on 28 x 28 images), the model built for it
//   network:
//     class: lenet5              # models/registry.h names
//     activation: relu           # or {type: relu}, as microDL writes it
//     dropout: 0.0
//     num_filters_per_block: [6, 16]   # where the model has that knob
//     batch_norm: false               # checked against the model
//     layer_groups: [{name: head, prefixes: [fc1., fc2., fc3.]}]   # default: the model's
//     model_fname: ""            # weights to start from; partial: true skips mismatches;
//                                # new_head: true keeps the last group's fresh init
//   trainer:
//     model_dir: ./logs          # everything the run writes
//     batch_size: 128
//     max_epochs: 1
//     patience: 0                # EarlyStopping's patience
//     loss: cross_entropy
//     metrics: [accuracy]
//     resume: false              # or a checkpoint path
//     workers: -1
//     optimizer: {name: sgd, lr: 0.01, momentum: 0.9, weight_decay: 5.0e-4}
//     callbacks:
//       LearningRateScheduler: {lr_find: false, base_lr: 0.001, max_lr: 0.006, step_size: 2,
//                               gamma: 1.0, scale_mode: cycle}
//       EarlyStopping: {monitor: val_loss, mode: auto, patience: 5}
//       ModelCheckpoint: {monitor: val_loss, mode: auto, save_best_only: true}
//       TensorBoard: {}
//     phases: [...]              # fast.ai's recipe (run.h PhaseSpec; README "Phases")
//   lr_finder: {...}             # Cyclone's full range test (start_lr, end_lr, num_steps, ...)
//   policy: {...}                # any policy of schedulers/ ("finder" rates, *_epochs counts)
//   device: auto
//
// The other spelling of a renamed key is accepted (config_aliases(): "epochs" for max_epochs,
// "model" for network, "log_dir" for model_dir ...); giving both is an error. Unknown keys, wrong
// types and bad values are UsageErrors naming the file and the key path
// ("run.yml: trainer.callbacks.LearningRateScheduler.max_lr must be a number"); syntax errors
// name the line.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "cyclone/train/run.h"

namespace cyclone::train {

// `origin` names the file in errors and picks the syntax by its extension (config_tree.h).
RunSpec parse_run_config(const std::string& text, const std::string& origin);
// Reads the file (a UsageError naming it when missing, an Error when unreadable) and parses it.
RunSpec load_run_config(const std::string& path);
// (alias, canonical key path) pairs, in the order they are applied.
const std::vector<std::pair<std::string, std::string>>& config_aliases();

}  // namespace cyclone::train
