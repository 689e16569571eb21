// Internal to trainer.cpp and trainer_epoch.cpp (not installed): the trainer's state and the
// steps of fit() that the two files share.
#pragma once

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cyclone/core/file_util.h"
#include "cyclone/core/progress.h"
#include "cyclone/schedulers/plateau.h"
#include "cyclone/train/checkpoint.h"
#include "cyclone/train/csv_log.h"
#include "cyclone/train/distributed.h"
#include "cyclone/train/run_state.h"
#include "cyclone/train/snapshot.h"
#include "cyclone/train/step.h"
#include "cyclone/train/step_runner.h"
#include "cyclone/train/tensorboard.h"
#include "cyclone/train/trainer.h"

namespace cyclone::train {

namespace fs = std::filesystem;

struct Trainer::Impl {
  Module& model;
  optim::Optimizer& opt;
  const schedulers::Policy& policy;
  data::DataLoader& train;
  data::DataLoader* eval;
  TrainerOptions o;
  RunState st;
  std::vector<double> losses;
  bool resumed = false;
  std::string resumed_from;  // the checkpoint resume() read
  const schedulers::PlateauPolicy* plateau = nullptr;
  std::function<void(const EpochStats&)> on_epoch_end_cb;
  bool writer = writes_files();  // rank 0 (or a world of one) writes logs and checkpoints
  fs::path snapshot_dir;         // where save_snapshot() puts a snapshot ensemble's members
  // float16: the loss scale of the host-path steps (the step runner keeps its own on the device;
  // runner_now points at it while fit() runs). Both go into checkpoints.
  LossScaler loss_scaler;
  StepRunner* runner_now = nullptr;
  // The optimizer's own momentum (beta1), restored at steps whose policy part does not schedule
  // it (a sequence whose 1cycle part is followed by a constant rate), as lr_schedule reports.
  double base_momentum = 0;
  bool fitted = false;  // fit() runs once per Trainer

  Impl(Module& m, optim::Optimizer& op, const schedulers::Policy& p, data::DataLoader& t,
       data::DataLoader* e, TrainerOptions opts)
      : model(m),
        opt(op),
        policy(p),
        train(t),
        eval(e),
        o(std::move(opts)),
        loss_scaler(o.loss_scale),
        base_momentum(op.momentum()) {
    CYCLONE_CHECK(o.epochs >= 1, "trainer: epochs ", o.epochs, " must be >= 1");
    check_optimizer_fits_model(model, opt, "trainer");
    // A prefix that matches nothing would freeze nothing and the run would report success.
    // Every name of a shared tensor: a prefix may aim at any place the tensor is used.
    const NamedTensors params = model.named_parameters(false, /*remove_duplicate=*/false);
    for (size_t i = 0; i < o.phases.size(); ++i)
      for (const auto* list : {&o.phases[i].freeze, &o.phases[i].unfreeze})
        for (const std::string& pre : *list)
          CYCLONE_CHECK(std::any_of(params.begin(), params.end(),
                                    [&](const auto& p) { return p.first.rfind(pre, 0) == 0; }),
                        "trainer: phases[", i, "] (epoch ", o.phases[i].epoch, ") ",
                        list == &o.phases[i].freeze ? "freeze" : "unfreeze", "s prefix '", pre,
                        "', which matches no parameter of the model (the first is '",
                        params.empty() ? std::string() : params.front().first, "')");
    CYCLONE_CHECK(o.clip_grad_norm >= 0, "trainer: clip_grad_norm ", o.clip_grad_norm,
                  " must be >= 0");
    CYCLONE_CHECK(!o.snapshot_ensemble || !o.checkpoint_dir.empty() || !o.log_dir.empty(),
                  "trainer: snapshot ensembles need a checkpoint_dir or a log_dir to save to");
    CYCLONE_CHECK(o.lr_scale > 0 && std::isfinite(o.lr_scale) && o.lr_scale_warmup_steps >= 0,
                  "trainer: lr_scale ", o.lr_scale, " must be > 0 and lr_scale_warmup_steps ",
                  o.lr_scale_warmup_steps, " >= 0");
    snapshot_dir = fs::path(o.checkpoint_dir.empty() ? o.log_dir : o.checkpoint_dir) / "snapshots";
    if (!writer) {  // another rank of a data-parallel job: rank 0 speaks for it
      o.log_dir.clear();
      o.progress_mode = -2;
    }
    CYCLONE_CHECK(o.eval_split == "test" || o.eval_split == "val", "trainer: eval_split '",
                  o.eval_split, "' is not one of test, val");
    if (o.early_stop_patience > 0 && watches_validation(o.early_stop_monitor))
      CYCLONE_CHECK(eval != nullptr && o.eval_split == "val", "trainer: early stopping watches '",
                    o.early_stop_monitor,
                    "', a validation score, but there is no validation split (set "
                    "validation_fraction, e.g. 0.1, or watch the training 'loss'): the test set "
                    "is never used to choose when to stop");
    if (policy.metric_driven()) {
      plateau = dynamic_cast<const schedulers::PlateauPolicy*>(&policy);
      CYCLONE_CHECK(plateau != nullptr, "trainer: metric-driven policy '", policy.name(),
                    "' is not supported");
      // The trainer reports a loss (the validation loss with a validation split, else the
      // training loss): "max" would cut the rate while the loss improves.
      CYCLONE_CHECK(!plateau->config().maximize,
                    "trainer: the plateau policy's mode is \"max\", but the trainer reports a loss "
                    "to it (the validation loss with a validation split, else the training loss), "
                    "which should go down: use mode \"min\" (the default)");
      st.plateau = plateau->initial_state();
    }
  }

  int64_t batches_per_epoch() const {
    const int64_t n = train.num_batches();
    return o.limit_train_batches > 0 ? std::min(n, o.limit_train_batches) : n;
  }

  // The default generator, o.generators and the model's own streams (its dropout), each once.
  std::vector<Generator*> generators() const {
    std::vector<Generator*> g = {&default_generator()};
    for (const auto& p : with_model_generators(model, o.generators)) g.push_back(p.get());
    return g;
  }

  std::string state_json() {
    if (model.compute_dtype() == DType::kFloat16) {
      const auto [scale, good] = runner_now
                                     ? runner_now->loss_scale_state()
                                     : std::pair{loss_scaler.scale(), loss_scaler.good_steps()};
      st.loss_scale = scale;
      st.loss_scale_good_steps = good;
    }
    st.rngs.clear();
    for (Generator* g : generators()) st.rngs.emplace_back(g->seed(), g->offset());
    st.batches_per_epoch = batches_per_epoch();
    st.ranks = num_ranks();
    st.settings = o.settings;
    return run_state_to_json(st, policy.to_json(), o.epochs);
  }

  void load_state_json(const std::string& text, const std::string& origin) {
    RunState s = run_state_from_json(text, origin);
    const std::string mine = canonical_json(policy.to_json());
    CYCLONE_CHECK(s.policy == mine, origin, ": the checkpoint was trained with policy ", s.policy,
                  " but this run's policy is ", mine, " (resume with the same policy)");
    CYCLONE_CHECK(s.ranks == 0 || s.ranks == num_ranks(), origin, ": the checkpoint's run had ",
                  s.ranks, " rank(s), this one has ", num_ranks(),
                  " (its global batch, data shards and rate scaling depend on them): resume with "
                  "mpirun -np ",
                  s.ranks, s.ranks == 1 ? " (or without mpirun)" : "");
    CYCLONE_CHECK(s.batches_per_epoch == 0 || s.batches_per_epoch == batches_per_epoch(), origin,
                  ": the checkpoint's run had ", s.batches_per_epoch,
                  " batches per epoch, this one has ", batches_per_epoch(),
                  " (another batch size, number of ranks, data split or limit_train_batches): "
                  "resume with the settings it was trained with");
    const auto gens = generators();
    CYCLONE_CHECK(s.rngs.size() == gens.size(), origin, ": the checkpoint holds ", s.rngs.size(),
                  " random streams, this run has ", gens.size());
    CYCLONE_CHECK(plateau == nullptr || s.plateau.has_value(), origin,
                  ": the checkpoint has no plateau state for policy 'plateau'");
    for (size_t i = 0; i < gens.size(); ++i) gens[i]->set_state(s.rngs[i].first, s.rngs[i].second);
    st = std::move(s);
  }

  // Training mode, except the modules kept fixed (frozen layers: running statistics unchanged,
  // dropout off).
  void train_mode() {
    model.train();
    for (const std::string& path : o.eval_modules) model.submodule(path).eval();
  }

  void apply_phases_through(int64_t epoch) {
    for (const PhaseChange& ph : o.phases) {
      if (ph.epoch > epoch) continue;
      for (auto& [name, t] : model.named_parameters(false, /*remove_duplicate=*/false)) {
        for (const auto& pre : ph.freeze)
          if (name.rfind(pre, 0) == 0) {
            t.set_requires_grad(false);
            t.zero_grad(/*set_to_none=*/true);
          }
        for (const auto& pre : ph.unfreeze)
          if (name.rfind(pre, 0) == 0) t.set_requires_grad(true);
      }
    }
  }

  // Saves the weights as the snapshot of `st.step` unless that snapshot was already taken (a
  // skipped batch retries the same step; a resumed run may have taken it); returns its path. In a
  // data-parallel job rank 0 saves it (the ranks hold the same weights) and every rank records it.
  std::string save_snapshot() {
    const std::string path =
        (snapshot_dir / ("snapshot-step-" + std::to_string(st.step) + ".safetensors")).string();
    if (std::find(st.snapshots.begin(), st.snapshots.end(), path) == st.snapshots.end()) {
      if (writer) {
        fs::create_directories(snapshot_dir);
        model.save(path);
      }
      st.snapshots.push_back(path);
    }
    return path;
  }

  // The end of an interrupted run's message: where its checkpoint is and how to go on from it.
  std::string resume_note(const std::string& checkpoint) const {
    const std::string how = o.resume_hint.empty()
                                ? "Trainer::resume(\"" + o.checkpoint_dir + "\")"
                                : o.resume_hint + " " + shell_quote(o.checkpoint_dir);
    return "; checkpoint written to " + checkpoint + " (resume with " + how + ")";
  }

  std::string save(const std::string& name) {
    CYCLONE_CHECK(!o.checkpoint_dir.empty(), "trainer: no checkpoint_dir to save '", name, "' in");
    if (!writer) return "";
    return write_checkpoint(o.checkpoint_dir, name, model, opt, state_json());
  }

  // The policies' values at update `step` (st.step, or ahead of it by the steps a StepRunner has
  // enqueued and not yet reported).
  double lr_at(int64_t step) const {
    return scaled_lr(o, plateau ? st.plateau->lr : policy.lr(step), step);
  }
  void set_hyperparams(int64_t step) {
    opt.set_lr(lr_at(step));
    if (plateau) return;
    const std::optional<double> m = policy.momentum(step);
    const double want = m ? *m : base_momentum;
    if (opt.momentum() != want) opt.set_momentum(want);
  }
  // Steps the host does not wait for (train/step_runner.h), or null for train_step every batch.
  std::unique_ptr<StepRunner> make_runner() const;

  // fit()'s files, open while it runs (none without a log_dir, and on ranks other than 0).
  struct Logs {
    std::optional<CsvLog> epoch, step;
    std::optional<TensorBoardWriter> tb;
  };
  FitResult fit();
  // trainer_epoch.cpp: an epoch's end (its scores, line, logs, checkpoint, early stopping);
  // true when the run ends after it. `bar` is the epoch's bar, if one is shown.
  bool finish_epoch(FitResult& r, Logs& logs, std::optional<ProgressBar>& bar);
  // The snapshot ensemble's score on the eval loader; the final weights stay in place.
  void score_snapshot_ensemble(FitResult& r);
};

}  // namespace cyclone::train
