#include "cyclone/train/lr_finder.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>

#include "cyclone/core/file_util.h"
#include "cyclone/core/progress.h"
#include "cyclone/schedulers/policy.h"
#include "cyclone/train/distributed.h"
#include "cyclone/train/interrupt.h"
#include "cyclone/train/metrics.h"
#include "cyclone/train/snapshot.h"
#include "cyclone/train/step.h"
#include "cyclone/train/step_runner.h"

namespace cyclone::train {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void check_options(const LrFinderOptions& o, const data::DataLoader* val) {
  CYCLONE_CHECK(o.start_lr > 0 && std::isfinite(o.start_lr), "lr range test: start_lr ", o.start_lr,
                " must be > 0");
  CYCLONE_CHECK(o.end_lr > o.start_lr && std::isfinite(o.end_lr), "lr range test: end_lr ",
                o.end_lr, " must be > start_lr ", o.start_lr);
  CYCLONE_CHECK(o.num_steps >= 2, "lr range test: num_steps ", o.num_steps, " must be >= 2");
  CYCLONE_CHECK(o.smooth_beta >= 0 && o.smooth_beta < 1, "lr range test: smooth_beta ",
                o.smooth_beta, " must be in [0, 1)");
  CYCLONE_CHECK(o.max_skips >= 1, "lr range test: max_skips ", o.max_skips, " must be >= 1");
  CYCLONE_CHECK(o.val_every <= 0 || val != nullptr,
                "lr range test: val_every > 0 needs a held-out loader");
  CYCLONE_CHECK(o.val_every <= 0 || o.val_batches >= 1, "lr range test: val_batches ",
                o.val_batches, " must be >= 1");
}

// Batches of `loader` epoch after epoch, starting at `first_epoch`.
class BatchStream {
 public:
  BatchStream(data::DataLoader& loader, int64_t first_epoch)
      : loader_(loader), epoch_(first_epoch) {
    loader_.start_epoch(epoch_);
  }
  void next(data::Batch& b) {
    while (!loader_.next(b)) {
      CYCLONE_CHECK(++empty_ < 2, "lr range test: the training loader yields no batch");
      loader_.start_epoch(++epoch_);
    }
    empty_ = 0;
  }

 private:
  data::DataLoader& loader_;
  int64_t epoch_;
  int empty_ = 0;
};

// The end of a range test: suggestions, time, the bar's last line.
void finish(const LrFinderOptions& o, LrFinderResult& r, int64_t updates,
            std::chrono::steady_clock::time_point t0, std::optional<ProgressBar>& bar) {
  r.stopped_at = updates;
  r.suggestions = suggest_lr(r.lrs, r.smoothed);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (bar) {
    std::string line = o.label + ": " + count_noun(updates, "step") + " in " +
                       format_duration(r.seconds) +
                       (r.diverged      ? ", stopped at divergence"
                        : r.interrupted ? ", interrupted"
                                        : ", reached end_lr");
    if (r.suggestions.valid && !r.interrupted)
      line += format_double(", min loss at lr %.3g", r.suggestions.min_loss_lr) +
              format_double(", steepest %.3g", r.suggestions.steepest_lr) +
              format_double(", valley %.3g", r.suggestions.valley_lr);
    if (!r.step_mode.empty()) line += "; " + r.step_mode;
    bar->finish(line);
  }
}

std::optional<ProgressBar> make_bar(const LrFinderOptions& o) {
  std::optional<ProgressBar> bar;
  if (o.progress_mode != -2) {
    ProgressOptions po;
    po.mode = o.progress_mode;
    bar.emplace(o.label, o.num_steps, "img", po);
  }
  return bar;
}

std::unique_ptr<schedulers::Policy> make_ramp(const LrFinderOptions& o) {
  schedulers::Params spec;
  spec.set_text("policy", "range_test")
      .set_number("start_lr", o.start_lr)
      .set_number("end_lr", o.end_lr)
      .set_integer("num_steps", o.num_steps)
      .set_text("mode", o.exponential ? "exp" : "linear");
  return schedulers::make_policy(spec);
}

// The range test with steps the host does not wait for (train/step_runner.h): the smoothing and
// the divergence rule run on the device, the records come back every `every` steps. The curve is
// the one run_range_test draws, except after a skipped step: the rates of the rest of that window
// were chosen one ramp step ahead.
LrFinderResult run_deferred(const LrFinderOptions& o, int64_t every, Module& model,
                            optim::Optimizer& opt, BatchStream& stream) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto ramp = make_ramp(o);
  std::optional<ProgressBar> bar = make_bar(o);
  StepRunnerOptions ro;
  ro.sync_every = every;
  ro.cuda_graph = o.cuda_graph;
  ro.clip_grad_norm = o.clip_grad_norm;
  ro.label_smoothing = o.label_smoothing;
  ro.accuracy = false;
  ro.halt_on_nonfinite_loss = false;  // a skip, as run_range_test counts it
  ro.max_skips = o.max_skips;
  ro.smooth_beta = o.smooth_beta;
  ro.diverge_th = o.diverge_th;
  StepRunner runner(model, opt, ro);
  LrFinderResult r;
  int64_t updates = 0, images = 0;
  data::Batch batch;
  bool done = false;
  while (!done && updates + runner.pending() < o.num_steps) {
    const double lr = ramp->lr(updates + runner.pending());
    opt.set_lr(lr);
    stream.next(batch);
    runner.enqueue(batch);
    // Read first: the steps drained below all ran, and the test stops after the last of them.
    const bool interrupted = interrupt_requested();
    if (!runner.due() && !interrupted && updates + runner.pending() < o.num_steps) continue;
    double last_smoothed = kNaN, last_loss = kNaN;
    for (const StepRecord& rec : runner.drain()) {
      if (rec.halted && rec.halt_reason == 0) break;  // gated off after the halt
      images += rec.samples;
      // float16's scaled gradients overflowed (the scale backed off): not a point of the curve.
      if (!rec.applied && std::isfinite(rec.loss) && rec.loss_scale > 1) {
        ++r.skipped;
        continue;
      }
      r.lrs.push_back(rec.lr);
      r.losses.push_back(rec.loss);
      last_loss = rec.loss;
      if (!rec.applied) {
        ++r.skipped;
        r.steps.push_back(updates);
        r.skips.push_back(true);
        r.smoothed.push_back(kNaN);
      } else {
        r.skips.push_back(false);
        r.steps.push_back(updates++);
        r.smoothed.push_back(rec.smoothed);
        last_smoothed = rec.smoothed;
      }
      if (rec.halt_reason != 0) {
        r.diverged = true;
        done = true;
        break;
      }
    }
    if (bar)
      bar->update(updates, images,
                  {{"lr", format_double("%.3g", lr)},
                   {"loss", format_double("%.4f", last_loss)},
                   {"smoothed", format_double("%.4f", last_smoothed)}});
    if (interrupted && !done) {
      r.interrupted = true;
      done = true;
    }
  }
  r.step_mode = "steps read back every " + std::to_string(runner.sync_every()) + ", CUDA graph " +
                runner.graph_status();
  finish(o, r, updates, t0, bar);
  return r;
}

}  // namespace

LrFinderResult run_range_test(const LrFinderOptions& o,
                              const std::function<RangeTestStep(double lr)>& step,
                              const std::function<double()>& eval) {
  CYCLONE_CHECK(o.val_every <= 0 || eval != nullptr,
                "lr range test: val_every > 0 needs a held-out evaluation");
  const auto t0 = std::chrono::steady_clock::now();
  const auto ramp = make_ramp(o);
  std::optional<ProgressBar> bar = make_bar(o);

  LrFinderResult r;
  SmoothedLoss smooth(o.smooth_beta);
  double best = std::numeric_limits<double>::infinity();
  int64_t updates = 0, consecutive_skips = 0, images = 0;
  while (updates < o.num_steps) {
    const double lr = ramp->lr(updates);
    const RangeTestStep s = step(lr);
    images += s.images;
    if (!s.applied && s.scale_overflow) {
      ++r.skipped;
      if (s.stop) {
        r.interrupted = true;
        break;
      }
      continue;
    }
    if (!s.applied) {
      ++r.skipped;
      if (o.val_every <= 0) {
        r.steps.push_back(updates);
        r.skips.push_back(true);
        r.lrs.push_back(lr);
        r.losses.push_back(s.loss);
        r.smoothed.push_back(kNaN);
      }
      if (++consecutive_skips >= o.max_skips) {
        r.diverged = true;
        break;
      }
      if (s.stop) {
        r.interrupted = true;
        break;
      }
      continue;
    }
    consecutive_skips = 0;
    ++updates;
    double point = s.loss;
    bool record = o.val_every <= 0;
    if (o.val_every > 0 && (updates % o.val_every == 0 || updates == o.num_steps)) {
      point = eval();
      record = true;
    }
    if (record) {
      const double sm = o.val_every > 0 ? point : smooth.add(point);
      r.steps.push_back(updates - 1);
      r.skips.push_back(false);
      r.lrs.push_back(lr);
      r.losses.push_back(point);
      r.smoothed.push_back(sm);
      if (std::isfinite(sm)) {
        best = std::min(best, sm);
        if (o.diverge_th > 0 && sm > o.diverge_th * best) r.diverged = true;
      } else {
        r.diverged = true;  // a non-finite held-out loss: the weights blew up
      }
    }
    if (bar)
      bar->update(updates, images,
                  {{"lr", format_double("%.3g", lr)},
                   {"loss", format_double("%.4f", s.loss)},
                   {"smoothed", format_double("%.4f", smooth.value())}});
    if (r.diverged) break;
    if (s.stop && updates < o.num_steps) {
      r.interrupted = true;
      break;
    }
  }
  finish(o, r, updates, t0, bar);
  return r;
}

LrFinderResult find_lr(Module& model, optim::Optimizer& optimizer, data::DataLoader& train,
                       const LrFinderOptions& o, data::DataLoader* val) {
  check_options(o, val);
  check_optimizer_fits_model(model, optimizer, "lr range test");
  InterruptGuard interrupts;  // Ctrl-C ends the test cleanly (after the step under way)
  std::optional<StateSnapshot> snapshot;
  if (o.restore) snapshot.emplace(model, optimizer, o.generators);
  const bool was_training = model.is_training();
  const double saved_lr = optimizer.lr();
  BatchStream stream(train, o.first_epoch);
  data::Batch batch;
  StepOptions so;
  so.clip_grad_norm = o.clip_grad_norm;
  so.label_smoothing = o.label_smoothing;
  LossScaler loss_scaler;  // float16: the backward's scale, across the test's steps
  if (model.compute_dtype() == DType::kFloat16) so.loss_scaler = &loss_scaler;
  model.train();
  auto step = [&](double lr) {
    optimizer.set_lr(lr);
    stream.next(batch);
    const StepResult s = detail::train_step_prechecked(model, optimizer, batch, so);
    return RangeTestStep{s.loss, s.applied, batch.size(),
                         !s.applied && std::isfinite(s.loss) && s.loss_scale > 1, s.stop};
  };
  auto eval = [&]() {
    const double loss = evaluate(model, *val, 0, o.val_batches).loss;
    model.train();
    return loss;
  };
  LrFinderResult r;
  try {
    const int64_t every =
        o.val_every > 0 ? 0 : runner_sync_every(optimizer, o.sync_every, o.cuda_graph);
    if (every > 0)
      r = run_deferred(o, every, model, optimizer, stream);
    else
      r = run_range_test(o, step, val ? std::function<double()>(eval) : nullptr);
  } catch (...) {
    if (snapshot) snapshot->restore(model, optimizer);
    model.train(was_training);
    throw;
  }
  if (snapshot) {
    snapshot->restore(model, optimizer);
  } else {
    optimizer.set_lr(saved_lr);
  }
  model.train(was_training);
  return r;
}

RepeatedLrFinder::Spread spread_of(std::vector<double> v) {
  RepeatedLrFinder::Spread s;
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !(x > 0); }), v.end());
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  s.median = n % 2 ? v[n / 2] : std::sqrt(v[n / 2 - 1] * v[n / 2]);  // geometric mid of the two
  s.min = v.front();
  s.max = v.back();
  double mean = 0, sq = 0;
  for (double x : v) mean += std::log10(x);
  mean /= n;
  for (double x : v) sq += (std::log10(x) - mean) * (std::log10(x) - mean);
  s.log10_std = std::sqrt(sq / n);
  return s;
}

RepeatedLrFinder::Spread RepeatedLrFinder::of(const std::string& suggestion) const {
  if (suggestion == "min_loss") return min_loss_lr;
  if (suggestion == "min_loss_div10") return min_loss_lr_div10;
  if (suggestion == "steepest") return steepest_lr;
  if (suggestion == "valley") return valley_lr;
  CYCLONE_THROW("unknown suggestion '", suggestion,
                "' (known: min_loss, min_loss_div10, steepest, valley)");
}

RepeatedLrFinder find_lr_repeated(Module& model, optim::Optimizer& optimizer,
                                  data::DataLoader& train, const LrFinderOptions& options,
                                  int64_t repeats, data::DataLoader* val) {
  CYCLONE_CHECK(repeats >= 1, "lr range test: repeats ", repeats, " must be >= 1");
  RepeatedLrFinder out;
  InterruptGuard interrupts;  // also between the runs
  // One snapshot around all runs: every run starts from it, and it is what is left at the end.
  StateSnapshot start(model, optimizer, options.generators);
  std::vector<double> a, b, c, d;
  for (int64_t k = 0; k < repeats; ++k) {
    LrFinderOptions o = options;
    o.first_epoch = options.first_epoch + k * 1000;
    o.restore = false;
    if (repeats > 1)
      o.label = options.label + " " + std::to_string(k + 1) + "/" + std::to_string(repeats);
    // Each run also draws other dropout masks: advance the model's streams by a run-specific
    // offset (the default generator included).
    start.restore(model, optimizer);
    for (auto& g : with_model_generators(model, options.generators))
      g->set_state(g->seed(), g->offset() + static_cast<uint64_t>(k) * (1ull << 40));
    out.runs.push_back(find_lr(model, optimizer, train, o, val));
    if (out.runs.back().interrupted) break;
    const Suggestions& s = out.runs.back().suggestions;
    if (!s.valid) continue;
    a.push_back(s.min_loss_lr);
    b.push_back(s.min_loss_lr_div10);
    c.push_back(s.steepest_lr);
    d.push_back(s.valley_lr);
  }
  if (options.restore) start.restore(model, optimizer);
  out.min_loss_lr = spread_of(a);
  out.min_loss_lr_div10 = spread_of(b);
  out.steepest_lr = spread_of(c);
  out.valley_lr = spread_of(d);
  return out;
}

std::vector<SweepCurve> sweep_lr(Module& model, optim::Optimizer& optimizer,
                                 data::DataLoader& train, const LrFinderOptions& options,
                                 const std::string& hyperparameter,
                                 const std::vector<double>& values, data::DataLoader* val) {
  CYCLONE_CHECK(hyperparameter == "momentum" || hyperparameter == "weight_decay",
                "sweep_lr: unknown hyperparameter '", hyperparameter,
                "' (known: momentum, weight_decay)");
  InterruptGuard interrupts;  // also between the tests
  StateSnapshot start(model, optimizer, options.generators);
  std::vector<SweepCurve> out;
  for (double v : values) {
    start.restore(model, optimizer);
    if (hyperparameter == "momentum") {
      CYCLONE_CHECK(v >= 0 && v < 1, "sweep_lr: momentum ", v, " outside [0, 1)");
      optimizer.set_momentum(v);
    } else {
      CYCLONE_CHECK(v >= 0 && std::isfinite(v), "sweep_lr: weight decay ", v, " must be >= 0");
      for (const auto& g : optimizer.groups())
        if (g.name.size() < 9 || g.name.compare(g.name.size() - 9, 9, ".no_decay") != 0)
          optimizer.set_group_weight_decay(g.name, v);
    }
    LrFinderOptions o = options;
    o.restore = false;
    o.label = options.label + " (" + hyperparameter + " " + format_double("%g", v) + ")";
    out.push_back({v, find_lr(model, optimizer, train, o, val)});
    if (out.back().result.interrupted) break;
  }
  // The snapshot holds the optimizer's own momentum / weight decay (its state JSON has both).
  if (options.restore) start.restore(model, optimizer);
  return out;
}

void write_lr_finder_csv(const LrFinderResult& r, const std::string& path) {
  if (!writes_files()) return;
  std::string s = "step,lr,loss,smoothed_loss,skipped\n";
  char line[192];
  // One spelling of NaN ("-nan" and "nan" are the same missing value to a reader).
  auto num = [](double v, char* buf, size_t n) -> const char* {
    if (std::isnan(v)) return "nan";
    std::snprintf(buf, n, "%.9g", v);
    return buf;
  };
  for (size_t i = 0; i < r.lrs.size(); ++i) {
    char a[40], b[40], c[40];
    const bool skipped = i < r.skips.size() && r.skips[i];
    std::snprintf(line, sizeof line, "%lld,%s,%s,%s,%d\n", static_cast<long long>(r.steps[i]),
                  num(r.lrs[i], a, sizeof a), num(r.losses[i], b, sizeof b),
                  num(r.smoothed[i], c, sizeof c), skipped ? 1 : 0);
    s += line;
  }
  write_file_atomic(path, s);
}

}  // namespace cyclone::train
