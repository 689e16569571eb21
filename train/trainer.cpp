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

namespace cyclone::train {

namespace fs = std::filesystem;

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
  // float16: the loss scale of the host-path steps (the step runner keeps its own on the device;
  // runner_now points at it while fit() runs). Both go into checkpoints.
  LossScaler loss_scaler;
  StepRunner* runner_now = nullptr;

  Impl(Module& m, optim::Optimizer& op, const schedulers::Policy& p, data::DataLoader& t,
       data::DataLoader* e, TrainerOptions opts)
      : model(m),
        opt(op),
        policy(p),
        train(t),
        eval(e),
        o(std::move(opts)),
        loss_scaler(o.loss_scale) {
    CYCLONE_CHECK(o.epochs >= 1, "trainer: epochs ", o.epochs, " must be >= 1");
    CYCLONE_CHECK(o.clip_grad_norm >= 0, "trainer: clip_grad_norm ", o.clip_grad_norm,
                  " must be >= 0");
    CYCLONE_CHECK(!o.snapshot_ensemble || !o.checkpoint_dir.empty() || !o.log_dir.empty(),
                  "trainer: snapshot ensembles need a checkpoint_dir or a log_dir to save to");
    CYCLONE_CHECK(!o.snapshot_ensemble || writer,
                  "trainer: snapshot ensembles are not supported in a data-parallel job yet (run "
                  "them with one rank)");
    CYCLONE_CHECK(o.lr_scale > 0 && std::isfinite(o.lr_scale) && o.lr_scale_warmup_steps >= 0,
                  "trainer: lr_scale ", o.lr_scale, " must be > 0 and lr_scale_warmup_steps ",
                  o.lr_scale_warmup_steps, " >= 0");
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
    return run_state_to_json(st, policy.to_json(), o.epochs);
  }

  void load_state_json(const std::string& text, const std::string& origin) {
    RunState s = run_state_from_json(text, origin);
    const std::string mine = canonical_json(policy.to_json());
    CYCLONE_CHECK(s.policy == mine, origin, ": the checkpoint was trained with policy ", s.policy,
                  " but this run's policy is ", mine, " (resume with the same policy)");
    CYCLONE_CHECK(s.batches_per_epoch == 0 || s.batches_per_epoch == batches_per_epoch(), origin,
                  ": the checkpoint's run had ", s.batches_per_epoch,
                  " batches per epoch, this one has ", batches_per_epoch(),
                  " (another batch size, data split or limit_train_batches): resume with the "
                  "settings it was trained with");
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
      for (auto& [name, t] : model.named_parameters()) {
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
  // skipped batch retries the same step; a resumed run may have taken it); returns its path.
  std::string save_snapshot() {
    const fs::path dir =
        fs::path(o.checkpoint_dir.empty() ? o.log_dir : o.checkpoint_dir) / "snapshots";
    const std::string path =
        (dir / ("snapshot-step-" + std::to_string(st.step) + ".safetensors")).string();
    if (std::find(st.snapshots.begin(), st.snapshots.end(), path) == st.snapshots.end()) {
      fs::create_directories(dir);
      model.save(path);
      st.snapshots.push_back(path);
    }
    return path;
  }

  std::string save(const std::string& name) {
    CYCLONE_CHECK(!o.checkpoint_dir.empty(), "trainer: no checkpoint_dir to save '", name, "' in");
    if (!writer) return "";
    return write_checkpoint(o.checkpoint_dir, name, model, opt, state_json());
  }

  // The policies' values at update `step` (st.step, or ahead of it by the steps a StepRunner has
  // enqueued and not yet reported).
  double lr_at(int64_t step) const {
    const double base = plateau ? st.plateau->lr : policy.lr(step);
    if (o.lr_scale == 1) return base;
    const double ramp = o.lr_scale_warmup_steps > 0
                            ? std::min(1.0, double(step) / double(o.lr_scale_warmup_steps))
                            : 1.0;
    return base * (1 + (o.lr_scale - 1) * ramp);
  }
  void set_hyperparams(int64_t step) {
    opt.set_lr(lr_at(step));
    if (!plateau)
      if (auto m = policy.momentum(step)) opt.set_momentum(*m);
  }
  // Steps the host does not wait for (train/step_runner.h), or null for train_step every batch.
  std::unique_ptr<StepRunner> make_runner() const;

  FitResult fit();
};

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
  const auto wall0 = Clock::now();
  InterruptGuard guard;
  FitResult r;
  const int64_t per_epoch = batches_per_epoch();
  CYCLONE_CHECK(per_epoch > 0, "trainer: the training loader has no batch");
  const int64_t total_steps = per_epoch * o.epochs;

  std::optional<CsvLog> epoch_log, step_log;
  std::optional<TensorBoardWriter> tb;
  if (!o.log_dir.empty()) {
    std::error_code ec;
    fs::create_directories(o.log_dir, ec);
    CYCLONE_CHECK(!ec, "cannot create the log directory '", o.log_dir, "': ", ec.message());
    const CsvMode mode = resumed ? CsvMode::kAppend : CsvMode::kTruncate;
    epoch_log.emplace((fs::path(o.log_dir) / "history.csv").string(), epoch_columns(o.eval_split),
                      mode, resumed ? std::optional<double>(st.epoch) : std::nullopt);
    if (o.log_every_steps > 0)
      step_log.emplace((fs::path(o.log_dir) / "steps.csv").string(), kStepColumns, mode,
                       resumed ? std::optional<double>(st.step - 1) : std::nullopt);
    if (o.tensorboard) tb.emplace((fs::path(o.log_dir) / "tensorboard_logs").string());
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
        if ((ended = process(train_step(model, opt, batch, so), lr, m))) break;
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
        where = "; checkpoint written to " + r.last_checkpoint + " (resume with --resume " +
                o.checkpoint_dir + ")";
      }
      r.message = "interrupted at step " + std::to_string(st.step) + " (epoch " +
                  std::to_string(st.epoch + 1) + ", batch " + std::to_string(st.batch) + ")" +
                  where;
      if (bar) bar->finish(at + " (interrupted)");
      break;
    }

    // ---- epoch end ----
    EpochStats es;
    es.epoch = st.epoch + 1;
    es.step = st.step;
    es.train_loss = st.epoch_samples ? st.epoch_loss_sum / st.epoch_samples : kNaN;
    es.train_accuracy = st.epoch_samples ? st.epoch_acc_sum / st.epoch_samples : kNaN;
    es.lr = opt.lr();
    es.momentum = opt.momentum();
    es.seconds = st.epoch_train_seconds;
    es.images_per_second = es.seconds > 0 ? st.epoch_samples / es.seconds : 0;
    st.train_seconds += st.epoch_train_seconds;
    st.train_images += st.epoch_samples;
    if (eval) {
      es.eval = evaluate(model, *eval, o.num_classes);
      train_mode();
      r.final_accuracy = es.eval->top1;
    }
    // A signal during the evaluation (after the epoch's last step) stops the run at this epoch's
    // end; the ranks of a job agree on it, as train_step's do.
    std::vector<double> signalled = {interrupt_requested() ? 1.0 : 0.0};
    all_reduce_sum(signalled);
    const bool stop_after_epoch = signalled[0] > 0;
    if (plateau)
      st.plateau = plateau->report(
          *st.plateau, es.eval && o.eval_split == "val" ? es.eval->loss : es.train_loss);
    std::string line = "epoch " + std::to_string(es.epoch) + "/" + std::to_string(o.epochs) +
                       "  train loss " + format_double("%.4f", es.train_loss) + " acc " +
                       format_double("%.2f%%", 100 * es.train_accuracy);
    if (es.eval) {
      line += "  " + o.eval_split + " loss " + format_double("%.4f", es.eval->loss) + " acc " +
              format_double("%.2f%%", 100 * es.eval->top1);
      if (es.eval->top5 >= 0) line += " top5 " + format_double("%.2f%%", 100 * es.eval->top5);
    }
    line += "  lr " + format_double("%.4g", es.lr) + "  " + format_rate(es.images_per_second) +
            " img/s  " + format_duration(es.seconds);
    if (bar) {
      bar->finish(line);
      log_to_file(line);
    } else if (!silent) {
      log_print("%s\n", line.c_str());
    }
    const double wall = st.train_seconds;
    if (epoch_log) {
      const EvalResult ev = es.eval.value_or(EvalResult{kNaN, kNaN, kNaN, 0, 0});
      epoch_log->row({double(es.epoch), double(es.step), es.train_loss, es.train_accuracy, ev.loss,
                      ev.top1, ev.top5 >= 0 ? ev.top5 : kNaN, es.lr, es.momentum,
                      es.images_per_second, es.seconds, wall});
      epoch_log->flush();
    }
    if (step_log) step_log->flush();
    if (tb) {
      std::vector<std::pair<std::string, double>> v = {
          {"epoch/train_loss", es.train_loss},
          {"epoch/train_accuracy", es.train_accuracy},
          {"epoch/lr", es.lr},
          {"epoch/images_per_second", es.images_per_second}};
      if (es.eval) {
        v.push_back({o.eval_split + "/loss", es.eval->loss});
        v.push_back({o.eval_split + "/accuracy", es.eval->top1});
        if (es.eval->top5 >= 0) v.push_back({o.eval_split + "/top5", es.eval->top5});
      }
      tb->add_scalars(es.step, v);
      tb->flush();
    }
    r.history.push_back(es);
    if (on_epoch_end_cb) on_epoch_end_cb(es);

    // Early stopping on the monitored value (signed so that larger is better).
    const double metric = (monitor_maximizes(o.early_stop_monitor, o.early_stop_mode) ? 1 : -1) *
                          monitored_value(es, o.early_stop_monitor);
    bool stop_early = false;
    if (std::isnan(st.best_accuracy) || metric > st.best_accuracy + o.early_stop_min_delta) {
      if (!std::isnan(metric))
        st.best_accuracy =
            std::isnan(st.best_accuracy) ? metric : std::max(st.best_accuracy, metric);
      st.bad_epochs = 0;
    } else if (o.early_stop_patience > 0 && ++st.bad_epochs >= o.early_stop_patience) {
      stop_early = true;
    }
    if (es.eval) r.best_accuracy = std::max(r.best_accuracy, es.eval->top1);

    // The next epoch starts clean; the checkpoint written now resumes there.
    st.batch = 0;
    st.epoch_loss_sum = st.epoch_acc_sum = 0;
    st.epoch_samples = st.epoch_updates = 0;
    st.epoch_train_seconds = 0;
    const bool last = st.epoch + 1 == o.epochs || stop_early;
    if (!o.checkpoint_dir.empty() &&
        (last || stop_after_epoch ||
         (o.checkpoint_every > 0 && (st.epoch + 1) % o.checkpoint_every == 0))) {
      ++st.epoch;  // the state to resume from is "at the start of the next epoch"
      char name[32];
      std::snprintf(name, sizeof name, "epoch-%04lld", static_cast<long long>(st.epoch));
      r.last_checkpoint = save(name);
      if (writer) prune_checkpoints(o.checkpoint_dir, "epoch-", o.keep_checkpoints);
      --st.epoch;
    }
    r.epochs_run = es.epoch;
    // Interrupted after the last epoch, only a snapshot ensemble's scoring is left to skip.
    if (stop_after_epoch && !stop_early && (!last || o.snapshot_ensemble)) {
      r.status = "interrupted";
      r.message =
          "interrupted after epoch " + std::to_string(es.epoch) + " (step " +
          std::to_string(st.step) + ")" +
          (last ? ", before the snapshot ensemble was scored" : "") +
          (r.last_checkpoint.empty() ? std::string()
                                     : "; checkpoint written to " + r.last_checkpoint +
                                           " (resume with --resume " + o.checkpoint_dir + ")");
      ++st.epoch;
      break;
    }
    if (stop_early) {
      r.status = "early_stopped";
      r.message = "no better " + o.early_stop_monitor + " for " +
                  std::to_string(o.early_stop_patience) + " epochs; stopped after epoch " +
                  std::to_string(es.epoch);
      ++st.epoch;
      break;
    }
  }
  if (r.status == "completed" || r.status == "early_stopped") r.epochs_run = st.epoch;

  // Snapshot ensemble: the final weights are the last member.
  if (o.snapshot_ensemble && (r.status == "completed" || r.status == "early_stopped")) {
    const std::string final_path = save_snapshot();
    if (eval) {
      Tensor sum;
      for (const std::string& p : st.snapshots) {
        model.load(p);
        const Tensor probs = predict_probabilities(model, *eval);
        if (!sum.defined()) {
          sum = probs.clone();
        } else {
          float* a = sum.data<float>();
          const float* q = probs.data<float>();
          for (int64_t i = 0; i < sum.numel(); ++i) a[i] += q[i];
        }
      }
      float* a = sum.data<float>();
      for (int64_t i = 0; i < sum.numel(); ++i) a[i] /= st.snapshots.size();
      r.ensemble = score_probabilities(sum, loader_labels(*eval), o.num_classes);
      model.load(final_path);  // leave the final weights in place
      if (!silent)
        log_print("snapshot ensemble of %zu: %s loss %.4f acc %.2f%%\n", st.snapshots.size(),
                  o.eval_split.c_str(), r.ensemble->loss, 100 * r.ensemble->top1);
    }
  }
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
