#include "cyclone/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <set>

#include "cyclone/core/autograd.h"
#include "cyclone/core/progress.h"
#include "cyclone/schedulers/plateau.h"
#include "cyclone/train/checkpoint.h"
#include "cyclone/train/csv_log.h"
#include "cyclone/train/distributed.h"
#include "cyclone/train/interrupt.h"
#include "cyclone/train/log.h"
#include "cyclone/train/run_state.h"
#include "cyclone/train/snapshot.h"
#include "cyclone/train/step.h"
#include "cyclone/train/step_runner.h"
#include "cyclone/train/tensorboard.h"
#include "cyclone/train/trainer_detail.h"

namespace cyclone::train {

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// history.csv's columns; `split` ("test" or "val") names the eval loader's three.
std::vector<std::string> epoch_columns(const std::string& split) {
  return {"epoch",         "step",
          "train_loss",    "train_accuracy",
          split + "_loss", split + "_accuracy",
          split + "_top5", "lr",
          "momentum",      "images_per_second",
          "epoch_seconds", "wall_seconds"};
}
const std::vector<std::string> kStepColumns = {"step",     "epoch",     "loss",        "lr",
                                               "momentum", "grad_norm", "wall_seconds"};

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

}  // namespace

Trainer::Trainer(Module& model, optim::Optimizer& optimizer, const schedulers::Policy& policy,
                 data::DataLoader& train, data::DataLoader* eval, TrainerOptions options)
    : impl_(std::make_unique<Impl>(model, optimizer, policy, train, eval, std::move(options))) {}
Trainer::~Trainer() = default;

void Trainer::resume(const std::string& checkpoint) {
  const std::string dir = resolve_checkpoint(checkpoint);
  const std::string text = read_checkpoint(dir, impl_->model, impl_->opt);
  impl_->load_state_json(text, (fs::path(dir) / "trainer.json").string());
  impl_->resumed = true;
  impl_->resumed_from = dir;
}

std::string Trainer::save_checkpoint(const std::string& name) { return impl_->save(name); }
namespace {
const std::vector<std::string> kMonitors = {"val_loss", "val_accuracy", "val_acc",
                                            "loss",     "accuracy",     "acc"};
}  // namespace

void check_monitor(const std::string& monitor, const std::string& mode) {
  if (std::find(kMonitors.begin(), kMonitors.end(), monitor) == kMonitors.end())
    throw Error("monitor '" + monitor +
                "' is not one of val_loss, val_accuracy (val_acc), loss, accuracy (acc)");
  if (mode != "auto" && mode != "min" && mode != "max")
    throw Error("mode '" + mode + "' is not one of auto, min, max");
}

double scaled_lr(const TrainerOptions& o, double base, int64_t step) {
  if (o.lr_scale == 1) return base;
  const double ramp = o.lr_scale_warmup_steps > 0
                          ? std::min(1.0, double(step) / double(o.lr_scale_warmup_steps))
                          : 1.0;
  return base * (1 + (o.lr_scale - 1) * ramp);
}

bool watches_validation(const std::string& monitor) { return monitor.rfind("val_", 0) == 0; }

double monitored_value(const EpochStats& es, const std::string& monitor) {
  check_monitor(monitor, "auto");
  if (monitor == "loss") return es.train_loss;
  if (monitor == "accuracy" || monitor == "acc") return es.train_accuracy;
  if (!es.eval) return kNaN;
  return monitor == "val_loss" ? es.eval->loss : es.eval->top1;
}

bool monitor_maximizes(const std::string& monitor, const std::string& mode) {
  check_monitor(monitor, mode);
  if (mode != "auto") return mode == "max";
  return monitor.find("acc") != std::string::npos;
}

void Trainer::on_epoch_end(std::function<void(const EpochStats&)> callback) {
  impl_->on_epoch_end_cb = std::move(callback);
}
int64_t Trainer::step() const { return impl_->st.step; }
const std::vector<double>& Trainer::losses() const { return impl_->losses; }

FitResult Trainer::fit() { return impl_->fit(); }

std::unique_ptr<StepRunner> Trainer::Impl::make_runner() const {
  const int64_t every = runner_sync_every(opt, o.sync_every, o.cuda_graph);
  if (every == 0) return nullptr;
  StepRunnerOptions ro;
  ro.sync_every = every;
  ro.cuda_graph = o.cuda_graph;
  ro.clip_grad_norm = o.clip_grad_norm;
  ro.label_smoothing = o.label_smoothing;
  ro.accuracy = true;
  ro.halt_on_nonfinite_loss = true;
  ro.max_skips = o.max_consecutive_skips;
  ro.loss_scale = o.loss_scale;
  return std::make_unique<StepRunner>(model, opt, ro);
}

FitResult Trainer::Impl::fit() {
  CYCLONE_CHECK(!fitted,
                "trainer: fit() has already run on this Trainer (a new Trainer trains again; "
                "resume() from a checkpoint goes on with a run)");
  fitted = true;
  const auto wall0 = Clock::now();
  InterruptGuard guard;
  FitResult r;
  const int64_t per_epoch = batches_per_epoch();
  CYCLONE_CHECK(per_epoch > 0, "trainer: the training loader has no batch");
  const int64_t total_steps = per_epoch * o.epochs;
  // 1cycle is defined over its total_steps (PyTorch's OneCycleLR raises past them): a run longer
  // than that would spend its last steps at the final rate, 1e-4 of the peak, for nothing.
  if (policy.name() == "one_cycle") {
    const int64_t cycle = policy.params().integer("total_steps");
    CYCLONE_CHECK(cycle >= total_steps, "trainer: policy one_cycle has total_steps ", cycle,
                  " but the run trains ", total_steps, " steps (", o.epochs, " epochs x ",
                  per_epoch, "): give the policy total_steps ", total_steps,
                  " or train fewer epochs");
  }

  Logs logs;
  std::optional<CsvLog>& step_log = logs.step;
  std::optional<TensorBoardWriter>& tb = logs.tb;
  if (!o.log_dir.empty()) {
    std::error_code ec;
    fs::create_directories(o.log_dir, ec);
    CYCLONE_CHECK(!ec, "cannot create the log directory '", o.log_dir, "': ", ec.message());
    const CsvMode mode = resumed ? CsvMode::kAppend : CsvMode::kTruncate;
    logs.epoch.emplace((fs::path(o.log_dir) / "history.csv").string(), epoch_columns(o.eval_split),
                       mode, resumed ? std::optional<double>(st.epoch) : std::nullopt);
    if (o.log_every_steps > 0)
      step_log.emplace((fs::path(o.log_dir) / "steps.csv").string(), kStepColumns, mode,
                       resumed ? std::optional<double>(st.step) : std::nullopt);
    if (o.tensorboard) {
      tb.emplace((fs::path(o.log_dir) / "tensorboard_logs").string());
      // Like the CSV logs' cut: what the earlier files hold past the checkpoint is redone now.
      if (resumed) tb->purge_from(st.step + 1);
    }
  }

  std::set<int64_t> restarts;
  if (o.snapshot_ensemble)
    for (int64_t s : policy.restarts(total_steps))
      if (s > 0) restarts.insert(s);

  apply_phases_through(st.epoch);
  train_mode();
  sync_from_root(model);  // every rank starts from rank 0's weights (a no-op alone)
  const std::unique_ptr<StepRunner> runner = make_runner();
  runner_now = runner.get();
  struct Forget {  // runner dies with fit(): state_json() must not reach it after
    StepRunner*& p;
    ~Forget() { p = nullptr; }
  } forget{runner_now};
  if (st.loss_scale > 0) {  // a resumed float16 run goes on with its scale
    loss_scaler.restore(st.loss_scale, st.loss_scale_good_steps);
    if (runner) runner->set_loss_scale_state(st.loss_scale, st.loss_scale_good_steps);
  }
  std::string graph_reported;  // the graph status last printed: a later change prints again
  r.status = "completed";
  const bool silent = o.progress_mode == -2;
  // Per-group rates appear nowhere else (the logs carry the base rate): say them once.
  if (!silent && (opt.groups().size() > 1 || opt.groups().front().lr_mult != 1)) {
    std::string line = "trainer: parameter groups:";
    for (const optim::ParamGroup& g : opt.groups()) {
      if (g.params.empty()) continue;  // the default group when every tensor is in a named one
      line += " " + g.name + " (" + std::to_string(g.params.size()) + " tensors) lr x" +
              format_double("%g", g.lr_mult) + format_double(" wd %g", g.weight_decay) +
              (g.momentum ? format_double(" momentum %g", *g.momentum) : "") + ";";
    }
    line.back() = '\n';
    log_print("%s", line.c_str());
  }

  int64_t consecutive_skips = 0;
  // float16 (Module::compute_dtype): loss_scaler (a member) lives across epochs.
  const bool scale_loss = model.compute_dtype() == DType::kFloat16;
  bool stop = false;  // an interrupt, agreed by every rank through train_step
  for (; st.epoch < o.epochs; ++st.epoch) {
    for (const PhaseChange& ph : o.phases)
      if (ph.epoch == st.epoch && st.batch == 0) apply_phases_through(st.epoch);
    train.start_epoch(st.epoch);
    data::Batch batch;
    for (int64_t b = 0; b < st.batch; ++b)  // a mid-epoch resume: skip what was trained
      CYCLONE_CHECK(train.next(batch), "trainer: resume position batch ", st.batch,
                    " is past the end of epoch ", st.epoch + 1);
    std::optional<ProgressBar> bar;
    if (!silent) {
      ProgressOptions po;
      po.mode = o.progress_mode;
      bar.emplace("epoch " + std::to_string(st.epoch + 1) + "/" + std::to_string(o.epochs),
                  per_epoch, "img", po);
    }
    StepOptions so;
    so.clip_grad_norm = o.clip_grad_norm;
    so.label_smoothing = o.label_smoothing;
    so.accuracy = true;
    so.loss_scaler = scale_loss ? &loss_scaler : nullptr;
    auto t_epoch = Clock::now();
    // One finished step's bookkeeping; true when the epoch loop must end (divergence, a stop).
    auto process = [&](const StepResult& s, double lr, double m) -> bool {
      ++st.batch;
      losses.push_back(s.loss);
      stop = stop || s.stop;
      // An overflow of float16's scaled gradients while the scale is above 1 is the scale's doing
      // (it backs off), not a sign of divergence, as in the device guard.
      const bool scale_overflow = !s.applied && std::isfinite(s.loss) && s.loss_scale > 1;
      consecutive_skips = s.applied ? 0 : consecutive_skips + (scale_overflow ? 0 : 1);
      const bool blown =
          o.max_consecutive_skips > 0 && consecutive_skips >= o.max_consecutive_skips;
      if (!std::isfinite(s.loss) || blown) {
        r.status = "diverged";
        r.message = (blown ? "the gradients were not finite for " +
                                 std::to_string(consecutive_skips) + " batches in a row"
                           : "the training loss became " + format_double("%g", s.loss)) +
                    " at step " + std::to_string(st.step) + " (epoch " +
                    std::to_string(st.epoch + 1) + ", batch " + std::to_string(st.batch) +
                    ") with lr " + format_double("%.4g", lr) +
                    "; training stopped. Lower the learning rate (or clip gradients)";
        // Only a checkpoint of this run: an older run's in the same folder would mislead.
        if (r.last_checkpoint.empty()) r.last_checkpoint = resumed_from;
        if (!r.last_checkpoint.empty())
          r.message += "; the last good checkpoint is " + r.last_checkpoint;
        return true;
      }
      if (!s.applied) {
        ++st.skipped;
        return stop;
      }
      ++st.step;
      ++st.epoch_updates;
      st.epoch_loss_sum += s.loss * s.samples;
      st.epoch_acc_sum += s.accuracy * s.samples;
      st.epoch_samples += s.samples;
      if (step_log && o.log_every_steps > 0 && st.step % o.log_every_steps == 0) {
        const double wall = st.train_seconds + st.epoch_train_seconds + since(t_epoch);
        step_log->row({double(st.step), double(st.epoch + 1), s.loss, lr, m, s.grad_norm, wall});
        if (tb)
          tb->add_scalars(st.step, {{"train/loss", s.loss},
                                    {"train/lr", lr},
                                    {"train/momentum", m},
                                    {"train/grad_norm", s.grad_norm}});
      }
      if (o.checkpoint_every_steps > 0 && !o.checkpoint_dir.empty() &&
          st.step % o.checkpoint_every_steps == 0 && st.batch < per_epoch) {
        // The checkpoint holds the epoch's time so far: a resumed run adds to it.
        st.epoch_train_seconds += since(t_epoch);
        t_epoch = Clock::now();
        char name[32];
        std::snprintf(name, sizeof name, "step-%08lld", static_cast<long long>(st.step));
        r.last_checkpoint = save(name);
        if (writer) prune_checkpoints(o.checkpoint_dir, "step-", o.keep_checkpoints);
      }
      if (bar)
        bar->update(st.batch, st.epoch_samples,
                    {{"loss", format_double("%.4f", st.epoch_loss_sum / st.epoch_samples)},
                     {"lr", format_double("%.3g", lr)}});
      return stop;
    };
    // Deferred steps: read the runner's records back and process them in order. An interrupt
    // seen now stops after the last of them (every one of them changed the weights).
    auto drain = [&]() -> bool {
      const bool interrupted = interrupt_requested();
      const std::vector<StepRecord> recs = runner->drain();
      for (size_t i = 0; i < recs.size(); ++i) {
        const StepRecord& rec = recs[i];
        if (rec.halted && rec.halt_reason == 0) break;  // gated off after the halt: not steps
        StepResult s;
        s.loss = rec.loss;
        s.samples = rec.samples;
        s.grad_norm = rec.grad_norm;
        s.accuracy = rec.accuracy;
        s.applied = rec.applied;
        s.loss_scale = rec.loss_scale;
        s.stop = interrupted && i + 1 == recs.size();
        if (process(s, rec.lr, rec.momentum)) return true;
      }
      return false;
    };
    int64_t enqueued = st.batch;  // batches of this epoch handed to a step
    bool ended = false;
    while (enqueued < per_epoch && train.next(batch)) {
      ++enqueued;
      if (!runner) {
        if (restarts.count(st.step)) save_snapshot();
        set_hyperparams(st.step);
        const double lr = opt.lr(), m = opt.momentum();
        if ((ended = process(detail::train_step_prechecked(model, opt, batch, so), lr, m))) break;
        continue;
      }
      // The policy clock of this step, if every pending one turns out applied.
      if (runner->pending() > 0 && restarts.count(st.step + runner->pending()) && (ended = drain()))
        break;
      if (runner->pending() == 0 && restarts.count(st.step)) save_snapshot();
      set_hyperparams(st.step + runner->pending());
      runner->enqueue(batch);
      const int64_t ahead = st.step + runner->pending();
      const bool checkpoint_due =
          o.checkpoint_every_steps > 0 && ahead % o.checkpoint_every_steps == 0;
      if ((runner->due() || enqueued >= per_epoch || checkpoint_due || interrupt_requested()) &&
          (ended = drain()))
        break;
    }
    if (runner && !ended && runner->pending() > 0) drain();  // the loader ended early
    if (runner && runner->graph_status() != graph_reported && !runner->graph_status().empty() &&
        !silent) {
      const std::string line = "steps: read back every " + std::to_string(runner->sync_every()) +
                               ", CUDA graph " + runner->graph_status();
      if (bar)
        log_to_file(line);
      else
        log_print("%s\n", line.c_str());
      graph_reported = runner->graph_status();
    }
    st.epoch_train_seconds += since(t_epoch);
    // The bar ends with a short line: the caller reports r.message (apps print it once).
    const std::string at = "epoch " + std::to_string(st.epoch + 1) + "/" +
                           std::to_string(o.epochs) + ": stopped at step " +
                           std::to_string(st.step);
    if (r.status == "diverged") {
      if (bar) bar->finish(at + " (diverged)");
      break;
    }
    if (stop) {
      r.status = "interrupted";
      std::string where;
      if (!o.checkpoint_dir.empty()) {
        r.last_checkpoint = save("interrupted");
        where = resume_note(r.last_checkpoint);
      }
      r.message = "interrupted at step " + std::to_string(st.step) + " (epoch " +
                  std::to_string(st.epoch + 1) + ", batch " + std::to_string(st.batch) + ")" +
                  where;
      if (bar) bar->finish(at + " (interrupted)");
      break;
    }

    if (finish_epoch(r, logs, bar)) break;
  }
  if (r.status == "completed" || r.status == "early_stopped") r.epochs_run = st.epoch;

  // Snapshot ensemble: the final weights are the last member.
  if (o.snapshot_ensemble && (r.status == "completed" || r.status == "early_stopped"))
    score_snapshot_ensemble(r);
  r.snapshots = st.snapshots;
  r.steps = st.step;
  r.skipped_steps = st.skipped;
  r.images_per_second = st.train_seconds > 0 ? st.train_images / st.train_seconds : 0;
  r.wall_seconds = since(wall0);
  if (tb) tb->flush();
  std::fflush(stdout);
  return r;
}

}  // namespace cyclone::train
