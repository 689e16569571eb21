#include "cyclone/train/best_lr_options.h"

#include <cfloat>
#include <cmath>
#include <string>

namespace cyclone::train {

namespace {

using detail::str_cat;

// Upper limits of the integer flags: beyond them a value is a typo that would otherwise surface
// only at run time, after the range test (an allocation of terabytes, a step count that overflows,
// the loader's and the step runner's own limits).
constexpr int64_t kMaxBatchSize = int64_t{1} << 20;  // more images than any dataset here holds
constexpr int64_t kMaxEpochs = 1000000;
constexpr int64_t kMaxFinderSteps = 10000000;
constexpr int64_t kMaxWorkers = 256;                 // data::DataLoader's limit
constexpr int64_t kMaxSyncEvery = int64_t{1} << 20;  // StepRunner's limit

// A rate bound of the range test: positive, finite and normal. A subnormal one has lost its
// precision (and its logarithm, which the exponential ramp interpolates, is off).
void check_rate(std::string_view flag, double v) {
  if (!(std::isfinite(v) && v >= DBL_MIN))
    throw UsageError(str_cat("--", flag,
                             " must be a positive normal number (about 2.2e-308 to 1.8e+308), got ",
                             format_number(v)));
}

constexpr const char* kDescription =
    "Runs the learning-rate range test (Smith 2017) on a model and dataset, picks a rate from\n"
    "its loss curve, then trains at that rate or cycles around it, with plots, logs and a\n"
    "summary. The flags of the original Keras demo (best_lr.py) keep their names and defaults.";

constexpr const char* kEpilog =
    "What it does:\n"
    "  1. Unless --skip_test=LR is given, the range test raises the rate from --lr_min to\n"
    "     --lr_max over --num_learning_batches steps (--lr_finder_mode), recording the smoothed\n"
    "     loss (--smooth_beta) and stopping once it exceeds --diverge_th times the best.\n"
    "     --suggestion picks the chosen rate r from the curve; with --skip_test, r = LR.\n"
    "     --momentum_test / --wd_test run one range test per value, curves on one plot.\n"
    "  2. Training runs --num_epochs epochs: at the constant rate lr_max_multiplier*r, or with\n"
    "     --cycle under --policy between lr_min_multiplier*r and lr_max_multiplier*r, each half\n"
    "     cycle --step_size_epochs epochs long.\n"
    "  Logs, plots and checkpoints go under --log_dir.\n"
    "\n"
    "Exit status: 0 on success, 2 for a bad flag, 1 when the run fails. Ctrl-C or SIGTERM stops\n"
    "cleanly and exits 0: during training a checkpoint is written and its path printed (continue\n"
    "with --resume=<log_dir>/checkpoints); during the range test its partial curve is written\n"
    "(lr_finder.csv, lr_finder.svg) and nothing is trained. A second one ends the program at "
    "once.\n"
    "Example: best_lr --dataset=cifar10 --cycle --lr_min=1e-6";

// Registers every flag on `o`; the values `o` holds now become the defaults help() shows.
ArgParser make_parser(BestLrOptions& o) {
  ArgParser p("best_lr", kDescription);
  // The original demo's flags.
  p.add_choice("dataset", &o.dataset, best_lr_datasets(), "dataset to train and test on");
  p.add_flag("kernel_initializer", &o.kernel_initializer,
             "weight initializer of conv and dense layers", "NAME");
  p.add_flag("activation", &o.activation, "activation of the hidden layers", "NAME");
  p.add_flag("weight_decay", &o.weight_decay, "L2 weight decay");
  p.add_choice("optimizer", &o.optimizer, best_lr_optimizers(), "update rule");
  p.add_flag("momentum", &o.momentum,
             "momentum (sgd, rmsprop) or beta1 (adam, nadam); with --policy=one_cycle the top of "
             "its momentum cycle, down to 0.85 (given, or adam/nadam; else 0.95)");
  p.add_flag(
      "batch_size", &o.batch_size,
      "examples per step, up to 1048576 (a batch larger than the training set is all of it)");
  p.add_flag("num_epochs", &o.num_epochs, "training epochs after the range test, up to 1000000");
  p.add_flag("num_learning_batches", &o.num_learning_batches,
             "steps of the range test, 2 to 10000000 (at most 10 N with --limit_train_batches N)");
  p.add_flag("lr_min", &o.lr_min, "first rate of the range test", "LR");
  p.add_flag("lr_max", &o.lr_max, "last rate of the range test", "LR");
  p.add_flag("lr_max_multiplier", &o.lr_max_multiplier,
             "training rate (or top of the cycle) = this * chosen rate");
  p.add_flag("lr_min_multiplier", &o.lr_min_multiplier,
             "bottom of the cycle = this * chosen rate (with --cycle; one_cycle starts there "
             "and ends 1e4 below it)");
  p.add_flag("cycle", &o.cycle, "cycle the rate under --policy instead of keeping it constant");
  p.add_flag("skip_test", &o.skip_test, "skip the range test and use this rate", "LR");
  p.add_flag("no_plots", &o.no_plots, "write no plots");
  p.add_flag("save_model", &o.save_model, "save the trained weights (safetensors)");
  p.add_flag("log_dir", &o.log_dir, "where logs, plots and checkpoints go", "DIR");
  // Added.
  p.add_flag("model", &o.model,
             "model name (lenet5, wrn-28-10, resnet20, mlp, ...); empty: by dataset", "NAME");
  p.add_flag("data_dir", &o.data_dir, "dataset directory; empty: the library's default", "DIR");
  p.add_flag("device", &o.device, "auto, cpu, cuda or cuda:N", "DEV");
  p.add_flag("seed", &o.seed, "seed of initialization, shuffling and augmentation");
  p.add_choice("policy", &o.policy, best_lr_policies(), "policy --cycle uses");
  p.add_flag("step_size_epochs", &o.step_size_epochs, "half-cycle length in epochs", "EPOCHS");
  p.add_flag("gamma", &o.gamma, "exp_range's decay per step");
  p.add_choice("lr_finder_mode", &o.lr_finder_mode, best_lr_finder_modes(),
               "how the range test ramps the rate");
  p.add_flag("lr_finder_val_every", &o.lr_finder_val_every,
             "> 0: use held-out loss every N steps instead of the training loss");
  p.add_flag("lr_finder_val_batches", &o.lr_finder_val_batches,
             "held-out batches per evaluation of the range test");
  p.add_flag("lr_finder_repeats", &o.lr_finder_repeats,
             "range tests from the same start, other data orders; the median suggestion is used");
  p.add_flag("diverge_th", &o.diverge_th, "stop the range test once loss > this * best loss");
  p.add_flag("smooth_beta", &o.smooth_beta, "loss smoothing of the range test (EMA factor)");
  p.add_choice("suggestion", &o.suggestion, best_lr_suggestions(),
               "which suggestion becomes the chosen rate");
  p.add_flag("momentum_test", &o.momentum_test, "range tests over these momenta (Smith 2018 4.3)");
  p.add_flag("wd_test", &o.wd_test, "range tests over these weight decays (Smith 2018 4.4)");
  p.add_choice("augment", &o.augment, {"auto", "on", "off"},
               "training-image augmentation: auto = on for CIFAR (crop with 4-pixel padding, "
               "flip), off for the MNISTs; on for the MNISTs: crop with 2-pixel padding, and flip "
               "for Fashion-MNIST");
  p.add_flag("pad_to", &o.pad_to,
             "> 0: zero-pad every image to N x N, centred, and build the model for that size "
             "(e.g. 32 for a CIFAR network on the MNISTs' 28 x 28)",
             "N");
  p.add_flag("validation_fraction", &o.validation_fraction,
             "> 0: hold out this fraction of train and evaluate on it (both parts must keep an "
             "image)");
  p.add_flag("checkpoint_every", &o.checkpoint_every, "checkpoint every N epochs; 0: at the end");
  p.add_flag("resume", &o.resume, "resume training from this checkpoint directory", "DIR");
  p.add_flag("early_stop_patience", &o.early_stop_patience,
             "stop after N epochs without better validation accuracy (needs "
             "--validation_fraction); 0: off");
  p.add_flag("clip_grad_norm", &o.clip_grad_norm, "clip the global gradient norm to X; 0: off");
  p.add_choice("lr_scaling", &o.lr_scaling, best_lr_lr_scalings(),
               "data parallel (mpirun -np N): scale a given rate for the global batch: linear "
               "(x N), sqrt, none; a rate from the range test is never scaled");
  p.add_flag("sync_bn", &o.sync_bn,
             "data parallel: batch-norm statistics over the global batch (SyncBatchNorm)");
  p.add_flag("lr_warmup_epochs", &o.lr_warmup_epochs,
             "data parallel: epochs over which a scaled rate ramps up (at most 1e6); < 0: min(5, a "
             "fifth of the run)",
             "E");
  p.add_flag("sync_every", &o.sync_every,
             "read the losses back every N steps (the steps in between never wait for the GPU); "
             "0: 50 on a GPU, 1 on the CPU; at most 1048576",
             "N");
  p.add_flag("no_cuda_graph", &o.no_cuda_graph,
             "on a GPU, launch every step's kernels instead of replaying a captured CUDA graph");
  p.add_flag("precision", &o.precision,
             "fp32 (IEEE), tf32 (TF32 tensor cores on a GPU), bf16 (mixed precision: "
             "convolutions and matrix products in bfloat16, float32 master weights) or fp16 (the "
             "same in float16, with dynamic loss scaling)",
             "P");
  p.add_flag("channels_last", &o.channels_last,
             "NHWC activations (the layout of the GPU's tensor-core convolutions); weights and "
             "results unchanged");
  p.add_flag("workers", &o.workers, "data loader threads, up to 256; -1: the loader's default");
  p.add_flag("limit_train_batches", &o.limit_train_batches,
             "> 0: only N batches per epoch, and a range test of at most 10 N steps (smoke runs)");
  p.add_flag("limit_eval_batches", &o.limit_eval_batches,
             "> 0: score only the first N batches of the validation and test sets (smoke runs)");
  p.add_flag("summary", &o.summary, "print the model summary and exit");
  p.add_flag("no_download", &o.no_download, "never download a missing dataset (fail instead)");
  p.add_flag("manifest", &o.manifest,
             "dataset sources replacing the built-in ones (JSON; also $CYCLONE_DATASET_MANIFEST)",
             "FILE");
  p.set_epilog(kEpilog);
  return p;
}

}  // namespace

const std::vector<std::string>& best_lr_datasets() {
  static const std::vector<std::string> v = {"mnist", "cifar10", "fashion_mnist", "cifar100",
                                             "synthetic"};
  return v;
}
const std::vector<std::string>& best_lr_optimizers() {
  static const std::vector<std::string> v = {"sgd", "adam", "rmsprop", "nadam"};
  return v;
}
const std::vector<std::string>& best_lr_policies() {
  static const std::vector<std::string> v = {"triangular", "triangular2", "exp_range", "one_cycle",
                                             "sgdr"};
  return v;
}
const std::vector<std::string>& best_lr_finder_modes() {
  static const std::vector<std::string> v = {"exponential", "linear"};
  return v;
}
const std::vector<std::string>& best_lr_lr_scalings() {
  static const std::vector<std::string> v = {"linear", "sqrt", "none"};
  return v;
}
const std::vector<std::string>& best_lr_suggestions() {
  static const std::vector<std::string> v = {"min_loss", "steepest", "valley", "min_loss_div10"};
  return v;
}

namespace {
// A flag another flag makes meaningless is refused rather than ignored: the user meant something
// by it. (A flag left at its default, or given its default value, is no trouble.)
void check_no_ignored_flags(const BestLrOptions& o) {
  const BestLrOptions d;
  if (!o.cycle)
    for (const auto& [flag, changed] :
         {std::pair{"policy", o.policy != d.policy},
          std::pair{"step_size_epochs", o.step_size_epochs != d.step_size_epochs},
          std::pair{"gamma", o.gamma != d.gamma},
          std::pair{"lr_min_multiplier", o.lr_min_multiplier != d.lr_min_multiplier}})
      if (changed)
        throw UsageError(str_cat("--", flag,
                                 " shapes the cyclic policy, which only --cycle trains with: add "
                                 "--cycle (without it the rate stays at the chosen one)"));
  // With --cycle, the flags the chosen policy has no use for (run_spec.cpp builds each policy).
  if (o.cycle && o.policy != "exp_range" && o.gamma != d.gamma)
    throw UsageError(str_cat("--gamma is exp_range's decay per step; --policy=", o.policy,
                             " has none: drop --gamma, or use --policy=exp_range"));
  if (o.cycle && o.policy == "one_cycle" && o.step_size_epochs != d.step_size_epochs)
    throw UsageError(
        "--step_size_epochs sets a half cycle of the cyclic policies; --policy=one_cycle is one "
        "cycle over the whole run (--num_epochs): drop --step_size_epochs");
  if (o.skip_test)
    for (const auto& [flag, changed] :
         {std::pair{"num_learning_batches", o.num_learning_batches != d.num_learning_batches},
          std::pair{"lr_min", o.lr_min != d.lr_min}, std::pair{"lr_max", o.lr_max != d.lr_max},
          std::pair{"lr_finder_mode", o.lr_finder_mode != d.lr_finder_mode},
          std::pair{"lr_finder_val_every", o.lr_finder_val_every != d.lr_finder_val_every},
          std::pair{"lr_finder_val_batches", o.lr_finder_val_batches != d.lr_finder_val_batches},
          std::pair{"lr_finder_repeats", o.lr_finder_repeats != d.lr_finder_repeats},
          std::pair{"suggestion", o.suggestion != d.suggestion},
          std::pair{"diverge_th", o.diverge_th != d.diverge_th},
          std::pair{"smooth_beta", o.smooth_beta != d.smooth_beta},
          std::pair{"momentum_test", !o.momentum_test.empty()},
          std::pair{"wd_test", !o.wd_test.empty()}})
      if (changed)
        throw UsageError(str_cat("--", flag, " sets up the range test, which --skip_test=",
                                 format_number(*o.skip_test), " skips: drop one of the two"));
}
}  // namespace

void validate(const BestLrOptions& o) {
  check_choice("dataset", o.dataset, best_lr_datasets());
  check_choice("optimizer", o.optimizer, best_lr_optimizers());
  check_choice("policy", o.policy, best_lr_policies());
  check_choice("lr_finder_mode", o.lr_finder_mode, best_lr_finder_modes());
  check_choice("suggestion", o.suggestion, best_lr_suggestions());

  const Bounds positive = Bounds::greater_than(0);
  const Bounds non_negative = Bounds::at_least(0);
  const Bounds unit = Bounds::closed_open(0, 1);
  check_bounds("weight_decay", o.weight_decay, non_negative);
  check_bounds("momentum", o.momentum, unit);
  check_int_range("batch_size", o.batch_size, 1, kMaxBatchSize);
  check_int_range("num_epochs", o.num_epochs, 1, kMaxEpochs);
  check_int_range("num_learning_batches", o.num_learning_batches, 2, kMaxFinderSteps);
  check_rate("lr_min", o.lr_min);
  check_rate("lr_max", o.lr_max);
  if (!(o.lr_min < o.lr_max))
    throw UsageError(str_cat("--lr_min (", format_number(o.lr_min),
                             ") must be less than --lr_max (", format_number(o.lr_max), ")"));
  check_bounds("lr_max_multiplier", o.lr_max_multiplier, positive);
  check_bounds("lr_min_multiplier", o.lr_min_multiplier, positive);
  if (!(o.lr_min_multiplier <= o.lr_max_multiplier))
    throw UsageError(str_cat("--lr_min_multiplier (", format_number(o.lr_min_multiplier),
                             ") must be <= --lr_max_multiplier (",
                             format_number(o.lr_max_multiplier), ")"));
  if (o.skip_test) {
    check_rate("skip_test", *o.skip_test);
    // r x multiplier is the rate trained at: past a double it became a null in the policy.
    if (!std::isfinite(*o.skip_test * o.lr_max_multiplier))
      throw UsageError(str_cat("--skip_test=", format_number(*o.skip_test),
                               " x --lr_max_multiplier=", format_number(o.lr_max_multiplier),
                               " (the rate trained at) overflows a double: lower one of them"));
  }
  if (o.log_dir.empty()) throw UsageError("--log_dir must not be empty");

  check_bounds("step_size_epochs", o.step_size_epochs,
               Bounds::open_closed(0, static_cast<double>(kMaxEpochs)));
  check_bounds("gamma", o.gamma, Bounds::open_closed(0, 1));
  check_bounds("lr_finder_val_every", static_cast<double>(o.lr_finder_val_every), non_negative);
  check_bounds("lr_finder_val_batches", static_cast<double>(o.lr_finder_val_batches), positive);
  check_bounds("lr_finder_repeats", static_cast<double>(o.lr_finder_repeats), Bounds::at_least(1));
  check_bounds("diverge_th", o.diverge_th, Bounds::greater_than(1));
  check_bounds("smooth_beta", o.smooth_beta, unit);
  for (double m : o.momentum_test) check_bounds("momentum_test", m, unit);
  for (double wd : o.wd_test) check_bounds("wd_test", wd, non_negative);
  check_bounds("validation_fraction", o.validation_fraction, unit);
  check_bounds("checkpoint_every", static_cast<double>(o.checkpoint_every), non_negative);
  check_bounds("early_stop_patience", static_cast<double>(o.early_stop_patience), non_negative);
  check_bounds("clip_grad_norm", o.clip_grad_norm, non_negative);
  check_int_range("workers", o.workers, -1, kMaxWorkers);
  check_bounds("limit_train_batches", static_cast<double>(o.limit_train_batches), non_negative);
  check_bounds("limit_eval_batches", static_cast<double>(o.limit_eval_batches), non_negative);
  check_choice("lr_scaling", o.lr_scaling, best_lr_lr_scalings());
  check_choice("augment", o.augment, {"auto", "on", "off"});
  check_bounds("pad_to", static_cast<double>(o.pad_to), non_negative);
  if (!(o.lr_warmup_epochs < 0))  // < 0: the default
    check_bounds("lr_warmup_epochs", o.lr_warmup_epochs,
                 Bounds::closed(0, static_cast<double>(kMaxEpochs)));
  check_int_range("sync_every", o.sync_every, 0, kMaxSyncEvery);
  check_no_ignored_flags(o);
  if (o.lr_finder_val_every > 0 && o.validation_fraction == 0)
    throw UsageError(
        "--lr_finder_val_every measures a held-out loss, which needs a validation split: set "
        "--validation_fraction (e.g. 0.1)");
}

BestLrOptions parse_best_lr_options(int argc, const char* const* argv) {
  BestLrOptions o;
  ArgParser p = make_parser(o);
  const std::vector<std::string> positional = p.parse(argc, argv);
  if (p.help_requested()) {
    BestLrOptions defaults;
    defaults.help = true;
    return defaults;
  }
  reject_positional("best_lr", positional);
  o.momentum_given = p.was_set("momentum");
  validate(o);
  return o;
}

std::string best_lr_help() {
  BestLrOptions defaults;
  return make_parser(defaults).help();
}

std::string default_model_for(const std::string& dataset) {
  if (dataset == "mnist" || dataset == "fashion_mnist") return "lenet5";
  if (dataset == "cifar10" || dataset == "cifar100") return "wrn-28-10";
  if (dataset == "synthetic") return "mlp";
  throw UsageError(str_cat("--dataset: '", dataset, "' has no default model; pass --model"));
}

}  // namespace cyclone::train
