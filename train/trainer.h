// Trainer: epochs of training steps with the policy advanced every successful update, evaluation
// every epoch, and what users expect around it — progress, logs, checkpoints and exact resume,
// early stopping, snapshot ensembles, gradient clipping, freezing and unfreezing between phases,
// a clean stop on a non-finite loss or on Ctrl-C.
//
//   Trainer trainer(*model, *optimizer, *policy, train_loader, &test_loader, options);
//   if (!resume_dir.empty()) trainer.resume(resume_dir);
//   FitResult r = trainer.fit();
//
// The clock. `step` counts successful updates and is the policy's argument (schedulers/); a batch
// whose gradients are not finite is skipped without advancing it. Before each update the trainer
// sets the optimizer's base rate to policy.lr(step) and, when the policy schedules it, its
// momentum (Adam's beta1). A metric-driven policy (plateau) is reported the evaluation loss at
// each epoch end (a validation split's, else the training loss: see eval_split).
//
// Exact resume. What a batch holds is a pure function of (loader seed, epoch, batch index), and a
// checkpoint stores the weights, buffers, optimizer state, random streams, epoch, batch and step,
// so a resumed run computes the same losses, bit for bit, as one that never stopped.
//
// Logs (in log_dir, when set): history.csv (one row per epoch), steps.csv (one row every
// log_every_steps updates), TensorBoard event files with the same scalars in tensorboard_logs/.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cyclone/core/generator.h"
#include "cyclone/data/loader.h"
#include "cyclone/kernels/step_guard_math.h"
#include "cyclone/layers/module.h"
#include "cyclone/optim/optimizer.h"
#include "cyclone/schedulers/policy.h"
#include "cyclone/train/metrics.h"

namespace cyclone::train {

// At the start of `epoch` (0-based), parameters whose names start with a prefix in `freeze` stop
// being trained and those in `unfreeze` start again (fast.ai's gradual unfreezing).
struct PhaseChange {
  int64_t epoch = 0;
  std::vector<std::string> freeze = {}, unfreeze = {};
};

struct TrainerOptions {
  int64_t epochs = 1;
  int64_t limit_train_batches = 0;  // > 0: at most this many batches per epoch
  int num_classes = 10;             // top-5 accuracy is reported when > 10
  double clip_grad_norm = 0;        // > 0: clip the global gradient norm
  double label_smoothing = 0;
  // Batches in a row whose gradients are not finite (each skipped without an update) that make
  // the run "diverged": a rate so high every gradient overflows would otherwise skip forever.
  int64_t max_consecutive_skips = 5;
  // float16 models (Module::compute_dtype): the dynamic loss scaling (GradScaler's defaults). Its
  // state is saved in checkpoints and restored on resume.
  kernels::LossScaleConfig loss_scale = {};

  std::string checkpoint_dir = {};  // "": no checkpoints
  // How an interrupted run's message says to go on from checkpoint_dir: the apps set their flag
  // ("--resume": "resume with --resume DIR"); "" names this class's call,
  // "resume with Trainer::resume(\"DIR\")".
  std::string resume_hint = {};
  int64_t checkpoint_every = 0;  // epochs between checkpoints (0: only at the end)
  // > 0: also a checkpoint every this many updates ("step-NNNNNNNN"), for runs that must survive
  // being killed at any moment (the process gone, not just Ctrl-C).
  int64_t checkpoint_every_steps = 0;
  int keep_checkpoints = 2;  // epoch (and step) checkpoints kept, each kind (0: all)

  int64_t early_stop_patience = 0;  // epochs without a better monitored value; 0: off
  double early_stop_min_delta = 0;
  // What early stopping watches (Keras' names): val_accuracy, val_loss (the eval loader's),
  // accuracy, loss (training); mode min / max / auto (max for accuracies, min for losses).
  std::string early_stop_monitor = "val_accuracy";
  std::string early_stop_mode = "auto";

  // What the eval loader holds: "test" (the test set) or "val" (a validation split held out of
  // the training set). It names the logged scores (history.csv's test_loss or val_loss, the
  // TensorBoard tags test/... or val/..., the epoch line). Only a validation split may choose
  // anything: early stopping on val_* and a plateau policy's metric need eval_split "val" (with
  // "test", early stopping on val_* is an Error and a plateau policy watches the training loss),
  // so that the test score stays an unbiased estimate.
  std::string eval_split = "test";

  // Module paths (Module::submodule) kept in eval mode while training: the frozen layers of a
  // fine-tuning phase, whose batch-norm statistics stay fixed and whose dropout is off.
  std::vector<std::string> eval_modules = {};

  // Snapshot ensembles: save the weights just before each warm restart of the policy and at the
  // end, then report the accuracy of the snapshots' averaged probabilities.
  bool snapshot_ensemble = false;

  std::vector<PhaseChange> phases = {};

  std::string log_dir = {};  // "": no CSV / TensorBoard files
  int64_t log_every_steps = 50;
  bool tensorboard = true;
  int progress_mode = -1;  // -1 auto, 0 plain lines, 1 terminal bar, -2 silent

  // Data parallelism (train/distributed.h): the rate the policy gives is multiplied by lr_scale
  // (the scaling rule's factor for the global batch, e.g. the number of ranks for the linear
  // rule), ramping linearly from 1 to lr_scale over the first lr_scale_warmup_steps updates
  // (Goyal et al. 2017, "Accurate, Large Minibatch SGD": gradual warmup).
  double lr_scale = 1;
  int64_t lr_scale_warmup_steps = 0;

  // Steps the host does not wait for (train/step_runner.h): the losses are read back every
  // sync_every steps (0: automatic, kSyncEveryCuda (step_runner.h) on a GPU, every step on the
  // CPU), and on a GPU the step is replayed from a CUDA graph when cuda_graph is on and the model
  // allows it. Not in a data-parallel job (its collectives run every step). Per-step logs and
  // checkpoints are the same; what changes is when the host learns a step's loss (and see
  // step_runner.h on skips).
  int64_t sync_every = 0;
  bool cuda_graph = true;

  // Random streams checkpointed besides the default generator and the model's own
  // (Module::random_generators(): its dropout's), which are always included.
  std::vector<std::shared_ptr<Generator>> generators = {};

  // What the run was started with, as a JSON object (the apps put their settings here), written
  // into every checkpoint's trainer.json ("settings") for a resume to be checked against; the
  // trainer does not read it. "": none.
  std::string settings = {};
};

// The rate of update `step` for the policy's rate `base`: base times options.lr_scale, reached
// over options.lr_scale_warmup_steps.
double scaled_lr(const TrainerOptions& options, double base, int64_t step);

struct EpochStats {
  int64_t epoch = 0;  // 1-based, as printed
  int64_t step = 0;   // updates done at its end
  double train_loss = 0, train_accuracy = 0;
  std::optional<EvalResult> eval = {};
  double lr = 0, momentum = 0;
  double images_per_second = 0;
  double seconds = 0;
};

struct FitResult {
  // "completed", "early_stopped", "interrupted" (Ctrl-C; a checkpoint was written) or
  // "diverged" (a non-finite loss; the last good checkpoint was kept).
  std::string status = "completed";
  std::string message = {};  // one line explaining a status other than completed
  int64_t epochs_run = 0;
  int64_t steps = 0;
  int64_t skipped_steps = 0;
  std::vector<EpochStats> history = {};
  double final_accuracy = -1, best_accuracy = -1;  // eval top-1; -1 without an eval loader
  double images_per_second = 0;                    // training images over training time
  double wall_seconds = 0;
  std::string last_checkpoint = {};  // "" if none was written
  // A signal came during the last epoch's evaluation (all ranks agree): the run still completed,
  // but a caller with more work after it (the next phase of a run) should stop there.
  bool stop_requested = false;
  std::vector<std::string> snapshots = {};
  std::optional<EvalResult> ensemble = {};
};

// Keras' monitor names for early stopping and ModelCheckpoint: val_loss, val_accuracy (val_acc),
// loss, accuracy (acc); the value in `es` (NaN when the epoch has no such value, e.g. val_* without
// an eval loader). An unknown name is an Error listing the names.
double monitored_value(const EpochStats& es, const std::string& monitor);
void check_monitor(const std::string& monitor, const std::string& mode);
// True for the monitors that read the eval loader's scores (val_loss, val_accuracy, val_acc):
// choosing by them needs a validation split (TrainerOptions::eval_split "val").
bool watches_validation(const std::string& monitor);
// Whether larger is better: mode "max" / "min", or "auto" (accuracies up, losses down).
bool monitor_maximizes(const std::string& monitor, const std::string& mode);

class Trainer {
 public:
  Trainer(Module& model, optim::Optimizer& optimizer, const schedulers::Policy& policy,
          data::DataLoader& train, data::DataLoader* eval, TrainerOptions options);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // Loads a checkpoint (a checkpoint directory or a parent with `latest`); fit() then continues
  // from its epoch, batch and step.
  void resume(const std::string& checkpoint);
  FitResult fit();

  // Writes a checkpoint of the current state now; returns its path.
  std::string save_checkpoint(const std::string& name);

  int64_t step() const;
  // The training loss of every batch trained so far in this process (skipped ones as NaN).
  const std::vector<double>& losses() const;

  // A user callback, called after every epoch's evaluation and logs (before its checkpoint).
  void on_epoch_end(std::function<void(const EpochStats&)> callback);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cyclone::train
