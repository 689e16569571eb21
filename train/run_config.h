// `./bin/train --config run.json`: a whole run described in one JSON file (the original microDL
// style: dataset, model, optimizer, policy, trainer), read into a RunSpec (run.h).
//
//   {
//     "dataset":   {"name": "fashion_mnist", "data_dir": "", "download": true, "manifest": "",
//                   "batch_size": 128,
//                   "eval_batch_size": 256, "validation_fraction": 0, "augment": "auto",
//                   "workers": -1},
//     "model":     {"name": "lenet5", "activation": "relu", "initializer": "he_normal",
//                   "dropout": 0},
//     "optimizer": {"name": "sgd", "momentum": 0.9, "weight_decay": 5e-4,
//                   "groups": [{"name": "head", "prefixes": ["fc"], "lr_mult": 10}]},
//     "lr_finder": {"start_lr": 1e-5, "end_lr": 10, "num_steps": 400, "mode": "exponential",
//                   "suggestion": "min_loss", "repeats": 1, "smooth_beta": 0.98,
//                   "diverge_th": 4, "val_every": 0, "val_batches": 8,
//                   "momentum_test": [], "wd_test": []},
//     "policy":    {"policy": "triangular", "base_lr": "finder/10", "max_lr": "finder",
//                   "step_size_epochs": 2},
//     "trainer":   {"epochs": 5, "limit_train_batches": 0, "clip_grad_norm": 0,
//                   "label_smoothing": 0, "checkpoint_every": 1, "keep_checkpoints": 2,
//                   "early_stop_patience": 0, "snapshot_ensemble": false, "log_every_steps": 50,
//                   "tensorboard": true, "phases": [{"epoch": 2, "unfreeze": ["features"]}]},
//     "log_dir": "./logs/run", "device": "auto", "seed": 0, "plots": true, "save_model": false
//   }
// Only "dataset.name" is required; everything else has the default shown (optimizer options go
// to optim::make_optimizer, which checks them; the policy to schedulers::make_policy). The policy
// may use "finder" rates and *_epochs counts (run.h). Unknown keys and bad values are UsageErrors
// naming the key ("trainer.epohcs").
#pragma once

#include <string>

#include "cyclone/train/run.h"

namespace cyclone::train {

RunSpec parse_run_config(const std::string& json_text, const std::string& origin);
// Reads the file (an Error naming it when missing or unreadable) and parses it.
RunSpec load_run_config(const std::string& path);

}  // namespace cyclone::train
