// Everything ./bin/best_lr takes: the flags of the original Keras demo (best_lr.py) with the same
// names and defaults, plus the ones this engine adds (model choice, policies, range-test variants,
// validation, checkpoints, smoke-run limits).
//
//   BestLrOptions o = parse_best_lr_options(argc, argv);  // throws UsageError
//   if (o.help) { std::cout << best_lr_help(); return 0; }
//   const std::string model = o.model.empty() ? default_model_for(o.dataset) : o.model;
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cyclone/train/cli.h"

namespace cyclone::train {

struct BestLrOptions {
  // The original demo's flags.
  std::string dataset = "mnist";  // mnist | cifar10 | fashion_mnist | cifar100 | synthetic
  std::string kernel_initializer = "he_normal";
  std::string activation = "relu";
  double weight_decay = 0.0005;
  std::string optimizer = "sgd";  // sgd | adam | rmsprop | nadam
  double momentum = 0.9;
  bool momentum_given = false;  // --momentum on the command line (1cycle's top momentum then)
  int64_t batch_size = 32;
  int64_t num_epochs = 55;
  int64_t num_learning_batches = 4000;  // range-test length in steps
  double lr_min = 1e-4;                 // range-test bounds
  double lr_max = 10;
  double lr_max_multiplier = 1;
  double lr_min_multiplier = 0.1;
  bool cycle = false;
  std::optional<double> skip_test = {};  // --skip_test <lr>: no range test, use this rate
  bool no_plots = false;
  bool save_model = false;
  std::string log_dir = "./logs";

  // Added.
  std::string model = {};  // "": by dataset (default_model_for)
  std::string data_dir = {};
  std::string device = "auto";  // auto | cpu | cuda[:N], checked by the app
  uint64_t seed = 0;
  std::string policy = "triangular";  // what --cycle uses: triangular | triangular2 | exp_range |
                                      // one_cycle | sgdr
  double step_size_epochs = 4;        // half-cycle length in epochs
  double gamma = 0.99994;             // exp_range's per-step decay
  std::string lr_finder_mode = "exponential";  // exponential | linear ramp
  int64_t lr_finder_val_every = 0;  // > 0: held-out loss every k steps instead of training loss
  int64_t lr_finder_val_batches = 8;
  int64_t lr_finder_repeats = 1;
  double diverge_th = 4;  // stop the range test once loss > diverge_th * best loss
  double smooth_beta = 0.98;
  std::string suggestion = "min_loss";     // min_loss | steepest | valley | min_loss_div10
  std::vector<double> momentum_test = {};  // one range test per momentum (Smith 2018, 4.3)
  std::vector<double> wd_test = {};        // one range test per weight decay (Smith 2018, 4.4)
  double validation_fraction = 0;          // > 0: carve a validation split from train
  int64_t checkpoint_every = 0;            // epochs; 0: only at the end
  std::string resume = {};                 // checkpoint dir to resume from
  int64_t early_stop_patience = 0;         // epochs without better test accuracy; 0: off
  double clip_grad_norm = 0;               // 0: off
  std::string lr_scaling = "linear";       // mpirun -np N: linear | sqrt | none (run.h)
  std::string augment = "auto";     // auto (CIFAR: crop + flip) | on | off (RunSpec::augment)
  int64_t pad_to = 0;               // > 0: images zero-padded to this size (RunSpec::pad_to)
  double lr_warmup_epochs = -1;     // < 0: min(5 epochs, a fifth of the run)
  bool sync_bn = false;             // mpirun -np N: batch norm over the global batch
  int64_t sync_every = 0;           // read losses back every N steps; 0: auto (trainer.h)
  bool no_cuda_graph = false;       // eager launches on a GPU instead of a replayed graph
  std::string precision = "fp32";   // fp32 | tf32 | bf16 (train/precision.h)
  bool channels_last = false;       // NHWC activations (layers/layout.h)
  int64_t workers = -1;             // loader threads; -1: the loader's default
  int64_t limit_train_batches = 0;  // > 0: only this many batches per epoch (smoke runs)
  int64_t limit_eval_batches = 0;   // > 0: score only this many validation / test batches
  bool summary = false;             // print the model summary and exit
  bool no_download = false;         // never fetch a missing dataset (data/fetch.h)
  std::string manifest = {};        // dataset sources replacing the built-in manifest
  bool help = false;                // -h/--help: print best_lr_help() and exit 0
};

// The accepted values of the choice flags.
const std::vector<std::string>& best_lr_datasets();
const std::vector<std::string>& best_lr_optimizers();
const std::vector<std::string>& best_lr_policies();
const std::vector<std::string>& best_lr_finder_modes();
const std::vector<std::string>& best_lr_suggestions();
const std::vector<std::string>& best_lr_lr_scalings();

// Parses argv (argv[0] is the program) into options and validates them. Throws UsageError with a
// one-line message naming the flag and the value. With -h/--help returns defaults and help = true,
// unvalidated. Positional arguments are rejected.
BestLrOptions parse_best_lr_options(int argc, const char* const* argv);

// Throws UsageError for the first option out of its range or choice list, and for lr_min >= lr_max
// or lr_min_multiplier > lr_max_multiplier. For options built in code as well as parsed ones.
void validate(const BestLrOptions& options);

// The --help text: every flag with its default and a one-line description, then what the program
// does with them.
std::string best_lr_help();

// The model a dataset trains by default: mnist, fashion_mnist -> lenet5; cifar10, cifar100 ->
// wrn-28-10; synthetic -> mlp. Throws UsageError for another dataset.
std::string default_model_for(const std::string& dataset);

}  // namespace cyclone::train
