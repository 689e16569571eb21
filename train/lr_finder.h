// The learning-rate range test (Smith 2017, "Cyclical Learning Rates for Training Neural
// Networks" §3.3; fast.ai's lr_find): train for num_steps batches while the rate ramps from
// start_lr to end_lr (schedulers' range_test policy), record the loss of every step, smooth it
// (suggest.h), stop once the smoothed loss exceeds diverge_th × its minimum, and suggest rates.
//
// What users of other finders complain about, handled here:
//  - Everything is put back afterwards (StateSnapshot: weights, batch-norm statistics, optimizer
//    state, random streams); the data order is a pure function of (seed, epoch, batch), so the
//    training that follows is bit-for-bit the training a run without the test would do.
//  - The clock counts successful updates: a step whose loss or gradient norm is not finite is
//    skipped (no update, the ramp does not advance); max_skips of them in a row end the test as
//    diverged. NaN losses are recorded as NaN and never break a suggestion.
//  - Suggestions vary between runs: repeats > 1 runs the test K times from the same starting
//    state with different data orders and reports each suggestion's median and spread.
//  - Optionally the curve is the loss on held-out batches, evaluated every val_every steps,
//    instead of the noisy training loss.
//  - Ctrl-C / SIGTERM (interrupt.h) ends the test after the step under way, the model and
//    optimizer put back as after a finished test; the result says interrupted and holds the
//    points recorded so far (the range-test functions below install the signal handlers).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cyclone/core/generator.h"
#include "cyclone/data/loader.h"
#include "cyclone/layers/module.h"
#include "cyclone/optim/optimizer.h"
#include "cyclone/train/suggest.h"

namespace cyclone::train {

struct LrFinderOptions {
  double start_lr = 1e-7;
  double end_lr = 10;
  int64_t num_steps = 100;
  bool exponential = true;  // false: linear ramp
  double smooth_beta = 0.98;
  double diverge_th = 4;    // stop when smoothed > diverge_th · min smoothed (<= 0: never)
  int64_t max_skips = 3;    // consecutive non-finite steps that end the test
  int64_t val_every = 0;    // > 0: record the held-out loss every val_every steps
  int64_t val_batches = 8;  // held-out batches per evaluation
  double clip_grad_norm = 0;
  double label_smoothing = 0;
  int64_t first_epoch = 0;  // data epochs used start here (repeats use other epochs)
  bool restore = true;      // put the model, optimizer and RNG back afterwards
  // Random streams to put back besides the default generator and the model's own
  // (Module::random_generators(): its dropout's), which always are.
  std::vector<std::shared_ptr<Generator>> generators = {};
  int progress_mode = -1;  // ProgressBar mode: -1 auto, 0 plain lines, 1 terminal bar, -2 none
  // Steps the host does not wait for (train/step_runner.h, TrainerOptions::sync_every): 0 picks
  // automatically (every 50 steps on a GPU, every step on the CPU). The smoothing and divergence
  // rule then run on the device; not with val_every > 0 nor in a data-parallel job.
  int64_t sync_every = 0;
  bool cuda_graph = true;
  std::string label = "lr range test";
};

struct LrFinderResult {
  // One entry per recorded point (every step, or every val_every steps with held-out loss).
  std::vector<int64_t> steps = {};  // the update index (policy clock) of the point
  std::vector<double> lrs = {};
  std::vector<double> losses = {};    // raw loss (NaN for a skipped step)
  std::vector<double> smoothed = {};  // NaN for a skipped step
  // True for a skipped attempt (non-finite loss or gradient): no update, so its step number is
  // that of the attempt after it, which retries the same rate.
  std::vector<bool> skips = {};
  bool diverged = false;
  bool interrupted = false;  // Ctrl-C / SIGTERM ended it before end_lr or a divergence
  int64_t stopped_at = 0;    // updates done when the test ended
  int64_t skipped = 0;       // non-finite steps skipped
  double seconds = 0;
  Suggestions suggestions = {};
  // How the steps ran when the host did not wait for them (train/step_runner.h): "steps read
  // back every N, CUDA graph on (...)" or "... off (why)"; empty for step-by-step reads. The
  // closing progress line says it, once.
  std::string step_mode = {};
};

// The algorithm alone, on any training step: step(lr) makes one update attempt at rate lr and
// says whether it was applied; eval() returns the held-out loss (needed when val_every > 0).
// find_lr is this around a model, an optimizer and a loader; tests drive it with problems whose
// divergence point is known.
struct RangeTestStep {
  double loss = 0;
  bool applied = false;
  int64_t images = 0;  // for the progress rate
  // Not applied because float16's scaled gradients overflowed while the loss scale was above 1:
  // the scale backed off, and the rate is retried (not a point, not toward max_skips).
  bool scale_overflow = false;
  // A stop was requested (train_step's stop: Ctrl-C, SIGTERM, agreed by every rank of a job):
  // the test ends after this step, interrupted.
  bool stop = false;
};
LrFinderResult run_range_test(const LrFinderOptions& options,
                              const std::function<RangeTestStep(double lr)>& step,
                              const std::function<double()>& eval = nullptr);

// Runs one range test with `model`, `optimizer` (its groups, momentum and weight decay as they
// are; only the base rate is driven) and batches of `train` (from epoch first_epoch on, as many
// epochs as num_steps needs). `val` is needed when val_every > 0.
LrFinderResult find_lr(Module& model, optim::Optimizer& optimizer, data::DataLoader& train,
                       const LrFinderOptions& options, data::DataLoader* val = nullptr);

// K range tests from the same starting state, test k reading data epochs from
// first_epoch + k · 1000 (another order of the same data) so the spread reflects the data order.
// An interrupted test is the last one run.
struct RepeatedLrFinder {
  std::vector<LrFinderResult> runs = {};
  struct Spread {
    double median = 0, min = 0, max = 0;
    double log10_std = 0;  // standard deviation of log10 of the values: decades of disagreement
  };
  Spread min_loss_lr = {}, min_loss_lr_div10 = {}, steepest_lr = {}, valley_lr = {};
  Spread of(const std::string& suggestion) const;
};
RepeatedLrFinder find_lr_repeated(Module& model, optim::Optimizer& optimizer,
                                  data::DataLoader& train, const LrFinderOptions& options,
                                  int64_t repeats, data::DataLoader* val = nullptr);
RepeatedLrFinder::Spread spread_of(std::vector<double> values);

// Range tests over a second hyperparameter (Smith 2018, "A disciplined approach to neural network
// hyper-parameters", §4.3-4.4): one short range test per value of momentum ("momentum") or weight
// decay ("weight_decay"), each from the same starting state, the optimizer's own value put back
// afterwards. Curves to overlay in one plot; an interrupted test is the last one run.
struct SweepCurve {
  double value = 0;
  LrFinderResult result = {};
};
std::vector<SweepCurve> sweep_lr(Module& model, optim::Optimizer& optimizer,
                                 data::DataLoader& train, const LrFinderOptions& options,
                                 const std::string& hyperparameter,
                                 const std::vector<double>& values,
                                 data::DataLoader* val = nullptr);

// lr_finder.csv (atomic write): step, lr, loss, smoothed_loss, skipped. One row per point; a
// skipped attempt (skipped = 1, smoothed_loss nan) shares its step number with the attempt that
// follows it, so the rows with skipped = 0 are the steps the test counts (stopped_at of them).
void write_lr_finder_csv(const LrFinderResult& r, const std::string& path);

}  // namespace cyclone::train
