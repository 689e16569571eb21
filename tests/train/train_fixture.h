// A small, fast training problem for the trainer and range-test tests: an MLP (with dropout, so
// the random streams matter) on a synthetic 4-class 1x8x8 dataset, with SGD + momentum.
#pragma once

#include <memory>
#include <string>

#include "cyclone/data/loader.h"
#include "cyclone/data/synthetic.h"
#include "cyclone/models/registry.h"
#include "cyclone/optim/optimizer.h"
#include "cyclone/train/trainer.h"

namespace cyclone::train::testing {

struct Problem {
  data::Dataset train_set, test_set;
  std::shared_ptr<Generator> dropout_gen;
  std::shared_ptr<Module> model;
  std::unique_ptr<optim::Optimizer> opt;
  std::unique_ptr<data::DataLoader> train, test;

  // `model_seed` changes the initial weights (a resumed run must not depend on them).
  explicit Problem(uint64_t model_seed = 1, const std::string& optimizer = "sgd",
                   const std::string& opt_json = R"({"lr": 0.05, "momentum": 0.9,
                                                     "weight_decay": 1e-4})",
                   int64_t train_size = 256, Device device = Device::cpu()) {
    data::SyntheticOptions so;
    so.channels = 1;
    so.height = so.width = 8;
    so.num_classes = 4;
    so.train_size = train_size;
    so.test_size = 64;
    so.seed = 3;
    train_set = data::make_synthetic(so, "train");
    test_set = data::make_synthetic(so, "test");
    ModelOptions mo;
    mo.in_channels = 1;
    mo.height = mo.width = 8;
    mo.num_classes = 4;
    mo.dropout = 0.2;
    mo.seed = model_seed;
    dropout_gen = std::make_shared<Generator>(dropout_seed(model_seed));
    mo.dropout_generator = dropout_gen;
    mo.device = device;
    model = make_model("mlp-32-16", mo);
    opt = optim::make_optimizer(optimizer, model->named_parameters(), opt_json);
    data::LoaderOptions lo;
    lo.batch_size = 32;
    lo.seed = 11;
    lo.workers = 0;
    lo.device = device;
    train = std::make_unique<data::DataLoader>(train_set, lo);
    lo.shuffle = false;
    lo.batch_size = 64;
    test = std::make_unique<data::DataLoader>(test_set, lo);
  }
};

// Trainer options for the Problem: `epochs`, no progress output, its 4 classes.
inline TrainerOptions quiet(int64_t epochs) {
  TrainerOptions o;
  o.epochs = epochs;
  o.progress_mode = -2;
  o.num_classes = 4;
  return o;
}

}  // namespace cyclone::train::testing
