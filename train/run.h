// A whole run, as ./bin/best_lr and ./bin/train do it: load the data, build the model and the
// optimizer, optionally run the LR range test and fill the rate it finds into the policy, train,
// and leave logs, plots, a summary and optionally the weights in log_dir. Both programs only
// turn their flags or config into a RunSpec and call run_experiment.
//
// Policies in a RunSpec are JSON (schedulers/) with two conveniences for people writing them:
//  - a rate may be the string "finder", "finder*X", "X*finder" or "finder/X": the rate the range
//    test chose, times or divided by X (an error when the run has no range test);
//  - a step count may be given in epochs: "K_epochs": E becomes "K": round(E · batches per
//    epoch), and "total_epochs" becomes "total_steps" (lists too: "milestones_epochs").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cyclone/train/best_lr_options.h"
#include "cyclone/train/lr_finder.h"
#include "cyclone/train/trainer.h"

namespace cyclone::train {

struct FinderSpec {
  bool enabled = false;
  LrFinderOptions options = {};
  double epochs = 0;  // > 0: options.num_steps = round(epochs x batches per epoch) (microDL)
  std::string suggestion = "min_loss";
  int64_t repeats = 1;
  std::vector<double> momentum_test = {}, wd_test = {};
};

// A layer group: the parameters whose names start with one of the prefixes (models/registry.h
// gives each model's default groups, e.g. LeNet-5's conv1 / conv2 / head).
struct LayerGroup {
  std::string name = {};
  std::vector<std::string> prefixes = {};
};

// One phase of a multi-phase run (fast.ai's recipe): run in order on one model, each with a fresh
// optimizer over the parameters it trains and its own policy clock starting at 0.
struct PhaseSpec {
  std::string name = {};   // "phase<i>" by default, for logs
  int64_t epochs = 1;      // training phases
  bool lr_find = false;    // a range test; its suggestion is the "finder" rate of later phases
  FinderSpec finder = {};  // lr_find phases
  std::string policy_json = {};          // training phases; may use "finder" and *_epochs
  std::vector<std::string> freeze = {};  // layer groups kept fixed (no gradient, no state)
  std::vector<std::pair<std::string, double>> lr_mult = {};  // per layer group (default 1)
  bool precompute = false;  // cache the frozen body's outputs once, train the rest on them
  int augment = -1;         // -1: the run's setting, 0 off, 1 on
};

// Keras' ModelCheckpoint: the weights after an epoch whose monitored value improved (or after
// every epoch) to log_dir/best_model.safetensors (model_checkpoint.safetensors).
struct ModelCheckpointSpec {
  bool enabled = false;
  std::string monitor = "val_loss";
  std::string mode = "auto";
  bool save_best_only = true;
};

struct RunSpec {
  // data
  std::string dataset = "mnist";
  std::string data_dir = {};
  bool download = true;                // fetch a missing dataset (data/fetch.h)
  std::string manifest = {};           // dataset sources replacing the built-in ones
  double validation_fraction = 0;      // > 0: evaluate on a split of train; test only at the end
  double train_fraction = 0;           // > 0: train on this fraction of the training files only
  double test_fraction = 0;            // > 0: the test set is carved from the training files too
  std::string source_split = "train";  // the files train/validation (and test) are carved from
  int64_t expect_height = 0, expect_width = 0;  // > 0: checked against the data
  int augment = -1;  // -1: the dataset's standard (CIFAR: crop + flip), 0 off, 1 on
  // > 0: every image zero-padded to pad_to x pad_to, centred (data::pad_images), and the model
  // built for that size: CIFAR-shaped networks on 28x28 images.
  int64_t pad_to = 0;
  int64_t batch_size = 32;
  int64_t eval_batch_size = 256;
  // > 0: only the first limit_eval_batches x eval_batch_size images of the validation and the test
  // set are scored (smoke runs; the same images whatever the number of ranks).
  int64_t limit_eval_batches = 0;
  int workers = -1;
  // model
  std::string model = {};  // "": by dataset
  std::string activation = "relu";
  std::string initializer = "he_normal";
  double dropout = 0;
  std::vector<int64_t> filters = {};  // num_filters_per_block, where the model has that knob
  int batch_norm = -1;                // -1 unset; 0 / 1 checked against the model
  std::vector<LayerGroup> layer_groups = {};  // empty: the model's default groups
  // Weights to start from (safetensors): every tensor whose name and shape match is loaded; a
  // mismatch is an error unless partial. new_head: the last layer group keeps its fresh init.
  std::string model_fname = {};
  bool partial = false;
  bool new_head = false;
  // where and how reproducibly
  std::string device = "auto";
  double gpu_mem_frac = 1;  // < 1: cap the GPU memory pool at this fraction of the device
  uint64_t seed = 0;
  // optimizer: its name and options as JSON (momentum, weight_decay, groups ...); the rate comes
  // from the policy.
  std::string optimizer = "sgd";
  std::string optimizer_json = "{}";
  // policy, and the range test that may fill it in
  std::string policy_json = R"({"policy": "constant", "lr": "finder"})";
  FinderSpec finder = {};
  // The rate "finder" stands for when no range test runs (best_lr --skip_test <lr>).
  std::optional<double> fixed_lr = {};
  // microDL's LearningRateScheduler with lr_find: the range test alone, its plot at finder_plot.
  bool finder_only = false;
  std::string finder_plot = {};
  // data parallelism (mpirun -np N): batch_size is per rank, the global batch N x batch_size.
  // A rate the user gave is scaled for the global batch by lr_scaling: "linear" (x N, Goyal et al.
  // 2017), "sqrt" (x sqrt N) or "none", ramping up over lr_warmup_epochs (< 0: min(5 epochs, a
  // fifth of the run)). A rate from the range test is not scaled: the test ran at the global batch.
  std::string lr_scaling = "linear";
  double lr_warmup_epochs = -1;
  // Synchronized batch norm: training-mode statistics over the global batch (every rank's shard)
  // instead of each rank's own; slower (two small all-reduces per layer per step), for per-rank
  // batches too small for good statistics. No effect with one rank.
  bool sync_batch_norm = false;
  // The math the model computes in: fp32 | tf32 | bf16 (train/precision.h).
  std::string precision = "fp32";
  // NHWC activations in the image layers (layers/layout.h); the weights keep PyTorch's layout.
  bool channels_last = false;
  // training
  TrainerOptions trainer = {};
  std::vector<PhaseSpec> phases = {};  // non-empty: a multi-phase run (the policy above is unused)
  ModelCheckpointSpec model_checkpoint = {};
  std::string loss = "cross_entropy";
  std::vector<std::string> metrics = {"accuracy"};
  // outputs
  std::string log_dir = "./logs";
  bool plots = true;
  bool save_model = false;
  bool training_log = false;  // also write what is printed to log_dir/training.log
  std::string resume = {};    // a checkpoint to continue (the policy is taken from it)
  // trainer.resume: true: `resume` is log_dir/checkpoints, moved with log_dir by --log_dir.
  bool resume_in_log_dir = false;
  bool summary_only = false;
  std::string program = "cyclone";  // for messages
  std::string origin = {};          // the config file (train), for messages; "" from flags
};

struct RunOutcome {
  int exit_code = 0;  // 0 done or interrupted (a checkpoint written), 1 diverged
  std::string summary_json = {};
  double chosen_lr = 0;
};

// Runs it. Bad specs throw UsageError (cli.h) naming the field; runtime failures (data, memory,
// files) throw cyclone::Error. Ctrl-C / SIGTERM during a range test throws Interrupted
// (interrupt.h) once the partial curve and summary.json are written and the stop is printed.
RunOutcome run_experiment(const RunSpec& spec);

// best_lr's flags as a RunSpec (the original demo's semantics: train at lr_max_multiplier · r, or
// with --cycle cycle between lr_min_multiplier · r and lr_max_multiplier · r).
RunSpec run_spec_from(const BestLrOptions& o);

// The policy JSON with "finder" rates and *_epochs counts resolved (see above). Throws UsageError
// naming the field for a placeholder without a chosen rate or a malformed one.
std::string resolve_policy_json(const std::string& policy_json, std::optional<double> chosen_lr,
                                int64_t steps_per_epoch);

}  // namespace cyclone::train
