#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "common/test_util.h"
#include "cyclone/core/autograd.h"
#include "cyclone/kernels/random.h"
#include "cyclone/layers/linear_ops.h"
#include "cyclone/layers/modules.h"
#include "cyclone/layers/ops.h"
#include "cyclone/layers/reduce_ops.h"
#include "cyclone/optim/sgd.h"
#include "cyclone/schedulers/policy.h"
#include "cyclone/train/lr_finder.h"
#include "cyclone/train/trainer.h"
#include "train_fixture.h"

namespace cyclone::train {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::vector<double> state_values(const Module& m, const optim::Optimizer& o) {
  std::vector<double> v;
  for (const auto& [n, t] : m.state_dict()) {
    const auto x = ::cyclone::testing::values(t);
    v.insert(v.end(), x.begin(), x.end());
  }
  for (const auto& [n, t] : o.state_dict().tensors) {
    const auto x = ::cyclone::testing::values(t);
    v.insert(v.end(), x.begin(), x.end());
  }
  return v;
}

// ---- the algorithm on a problem whose divergence point is known ----
//
// Least squares, L(w) = 1/(2n) ||X w - y||^2, with full-batch plain SGD: the Hessian is
// H = X^T X / n and gradient descent diverges for lr > 2 / lambda_max(H). With an exponential ramp
// the smoothed loss must stay near its minimum below that rate and blow past diverge_th x the
// minimum soon after it.
TEST(LrFinderTest, LeastSquaresDivergesNearTwoOverLambdaMax) {
  const int64_t n = 64, d = 4;
  // Features with scales 1, 2, 3, 4 in orthogonal directions: X = Q diag(s) (Q^T Q = n I), so
  // H = diag(s^2) and lambda_max = 16 exactly.
  std::vector<float> x(n * d, 0.f), y(n);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) {
      // Walsh-like +-1 columns (orthogonal over 64 rows), scaled.
      const int bit = (__builtin_popcountll(static_cast<uint64_t>(i) & (1ull << j)) & 1);
      x[i * d + j] = static_cast<float>((bit ? -1.0 : 1.0) * (j + 1));
    }
    y[i] = static_cast<float>(0.5 * x[i * d] - 0.25 * x[i * d + 3] + 0.1 * (i % 3));
  }
  const double lambda_max = 16.0, critical = 2.0 / lambda_max;
  const Tensor X = Tensor::from_vector(x, {n, d}, Device::cpu());
  const Tensor Y = Tensor::from_vector(y, {n, 1}, Device::cpu());
  Linear model(d, 1, /*bias=*/false, Device::cpu());
  model.weight().zero_();
  optim::Sgd opt(model.named_parameters());
  LrFinderOptions o;
  o.start_lr = 1e-3;
  o.end_lr = 10;
  o.num_steps = 1000;  // 250 steps per decade: the blow-up has time to show
  o.progress_mode = -2;
  auto step = [&](double lr) {
    opt.set_lr(lr);
    opt.zero_grad();
    const Tensor r = model(X) - Y;
    const Tensor loss = mul(sum(square(r)), 0.5 / n);
    const double l = loss.item();
    loss.backward();
    opt.step();
    return RangeTestStep{l, true, n};
  };
  const LrFinderResult r = run_range_test(o, step);
  ASSERT_TRUE(r.diverged);
  const double blowup = r.lrs.back();
  EXPECT_GT(blowup, critical) << "stopped before the critical rate";
  EXPECT_LT(blowup, 1.5 * critical) << "detected divergence far past 2/lambda_max = " << critical;
  // Full-batch descent keeps improving up to the edge, so the minimum sits just below the
  // blow-up, within a factor of 2 of the critical rate.
  EXPECT_GT(r.suggestions.min_loss_lr, critical / 2);
  EXPECT_LT(r.suggestions.min_loss_lr, blowup);
  EXPECT_LT(r.stopped_at, o.num_steps);
}

TEST(LrFinderTest, SkippedStepsDoNotAdvanceTheRampAndEndTheTestAfterMaxSkips) {
  LrFinderOptions o;
  o.start_lr = 1e-3;
  o.end_lr = 1;
  o.num_steps = 10;
  o.max_skips = 3;
  o.progress_mode = -2;
  std::vector<double> seen;
  int call = 0;
  auto step = [&](double lr) {
    seen.push_back(lr);
    ++call;
    // The 3rd and 4th attempts have non-finite gradients; from the 8th on everything is NaN.
    const bool bad = call == 3 || call == 4 || call >= 8;
    return RangeTestStep{bad ? kNaN : 1.0 / call, !bad, 1};
  };
  const LrFinderResult r = run_range_test(o, step);
  ASSERT_GE(seen.size(), 5u);
  EXPECT_EQ(seen[2], seen[3]) << "a skipped step advanced the ramp";
  EXPECT_EQ(seen[3], seen[4]);
  EXPECT_GT(seen[4], seen[1]);
  EXPECT_EQ(r.skipped, 5);
  EXPECT_TRUE(r.diverged);
  EXPECT_EQ(r.stopped_at, 5);  // calls 1, 2, 5, 6, 7 were applied
  // Every attempt is a point; the skipped ones are marked and share the next one's step number,
  // so the unmarked points are the steps counted.
  ASSERT_EQ(r.skips.size(), r.lrs.size());
  EXPECT_EQ(std::count(r.skips.begin(), r.skips.end(), false), r.stopped_at);
  EXPECT_TRUE(r.skips[2] && r.skips[3] && !r.skips[4]);
  EXPECT_EQ(r.steps[2], r.steps[4]);
  // NaN points are recorded but never break the suggestions.
  EXPECT_TRUE(std::isnan(r.losses[2]));
  EXPECT_TRUE(r.suggestions.valid);
  EXPECT_TRUE(std::isfinite(r.suggestions.min_loss_lr));
}

TEST(LrFinderTest, HeldOutModeRecordsEveryKSteps) {
  LrFinderOptions o;
  o.num_steps = 20;
  o.val_every = 5;
  o.diverge_th = 0;
  o.progress_mode = -2;
  int evals = 0;
  const LrFinderResult r = run_range_test(
      o,
      [](double) {
        return RangeTestStep{1.0, true, 1};
      },
      [&] { return 2.0 - 0.1 * ++evals; });
  EXPECT_EQ(evals, 4);
  ASSERT_EQ(r.lrs.size(), 4u);
  EXPECT_EQ(r.steps[0], 4);
  EXPECT_DOUBLE_EQ(r.losses[3], 1.6);
  EXPECT_DOUBLE_EQ(r.smoothed[3], 1.6);  // held-out losses are not smoothed again
}

// ---- suggestions ----

TEST(SuggestTest, MinimumSteepestAndValleyOnAKnownCurve) {
  // loss(log10 lr) = (u - 1)^2 + 1 for u in [-4, 1.5] : minimum at lr = 10, steepest descent at
  // the left end, the valley is the decreasing part.
  std::vector<double> lrs, loss;
  for (int i = 0; i <= 110; ++i) {
    const double u = -4 + 5.5 * i / 110;
    lrs.push_back(std::pow(10, u));
    loss.push_back((u - 1) * (u - 1) + 1);
  }
  const Suggestions s = suggest_lr(lrs, loss);
  ASSERT_TRUE(s.valid);
  EXPECT_NEAR(std::log10(s.min_loss_lr), 1.0, 0.03);
  EXPECT_NEAR(s.min_loss_lr_div10, s.min_loss_lr / 10, 1e-12);
  // fast.ai skips the first 10%: the steepest point is the first of the window.
  EXPECT_NEAR(std::log10(s.steepest_lr), -4 + 5.5 * 11 / 110, 1e-9);
  // The longest decreasing run is [window start, minimum]; valley = start + (1/3 + 1/6) of it.
  EXPECT_GT(s.valley_lr, s.steepest_lr);
  EXPECT_LT(s.valley_lr, s.min_loss_lr);
}

TEST(SuggestTest, NonFinitePointsAreIgnored) {
  std::vector<double> lrs = {1e-3, 1e-2, 1e-1, 1, 10}, loss = {2, kNaN, 1, INFINITY, 3};
  const Suggestions s = suggest_lr(lrs, loss);
  ASSERT_TRUE(s.valid);
  EXPECT_DOUBLE_EQ(s.min_loss_lr, 1e-1);
  EXPECT_FALSE(suggest_lr({1, 2}, {kNaN, kNaN}).valid);
  EXPECT_EQ(pick_suggestion(s, "min_loss_div10"), s.min_loss_lr_div10);
  ::cyclone::testing::expect_error([&] { pick_suggestion(s, "best"); }, {"best", "valley"});
}

TEST(SuggestTest, SmoothedLossIsBiasCorrected) {
  SmoothedLoss sm(0.98);
  EXPECT_DOUBLE_EQ(sm.add(3.0), 3.0);  // the first value exactly, not 0.02 * 3
  EXPECT_NEAR(sm.add(1.0), (0.98 * 0.02 * 3 + 0.02 * 1) / (1 - 0.98 * 0.98), 1e-12);
  EXPECT_TRUE(std::isnan(sm.add(kNaN)));
  EXPECT_EQ(sm.count(), 2);
}

TEST(SuggestTest, SpreadOfRepeatedSuggestions) {
  const auto s = spread_of({1e-2, 1e-1, 1e0});
  EXPECT_DOUBLE_EQ(s.median, 1e-1);
  EXPECT_DOUBLE_EQ(s.min, 1e-2);
  EXPECT_DOUBLE_EQ(s.max, 1.0);
  EXPECT_NEAR(s.log10_std, std::sqrt(2.0 / 3), 1e-12);
}

// ---- on a real model: everything is put back ----

TEST(LrFinderTest, RestoresWeightsOptimizerStateAndRandomStreams) {
  testing::Problem p;
  // Take a few real steps first so the optimizer has non-trivial state to restore.
  auto policy = schedulers::make_policy(R"({"policy": "constant", "lr": 0.05})");
  TrainerOptions to;
  to.epochs = 1;
  to.progress_mode = -2;
  to.limit_train_batches = 3;
  to.generators = {p.dropout_gen};
  Trainer(*p.model, *p.opt, *policy, *p.train, nullptr, to).fit();
  const std::vector<double> before = state_values(*p.model, *p.opt);
  const uint64_t drop_offset = p.dropout_gen->offset(), def_offset = default_generator().offset();
  const int64_t steps = p.opt->step_count();
  LrFinderOptions o;
  o.num_steps = 30;
  o.end_lr = 100;
  o.progress_mode = -2;
  o.generators = {p.dropout_gen};
  const LrFinderResult r = find_lr(*p.model, *p.opt, *p.train, o);
  EXPECT_GT(r.stopped_at, 5);
  EXPECT_NE(p.dropout_gen->offset(), drop_offset - 1);  // (sanity: the stream is live)
  EXPECT_EQ(state_values(*p.model, *p.opt), before);
  EXPECT_EQ(p.dropout_gen->offset(), drop_offset);
  EXPECT_EQ(default_generator().offset(), def_offset);
  EXPECT_EQ(p.opt->step_count(), steps);
  EXPECT_DOUBLE_EQ(p.opt->lr(), 0.05);
}

TEST(LrFinderTest, TrainingAfterTheTestEqualsTrainingWithoutIt) {
  auto run = [](bool with_test) {
    testing::Problem p;
    if (with_test) {
      LrFinderOptions o;
      o.num_steps = 20;
      o.progress_mode = -2;
      o.generators = {p.dropout_gen};
      find_lr(*p.model, *p.opt, *p.train, o);
    }
    auto policy = schedulers::make_policy(R"({"policy": "constant", "lr": 0.05})");
    TrainerOptions to;
    to.epochs = 2;
    to.progress_mode = -2;
    to.generators = {p.dropout_gen};
    Trainer t(*p.model, *p.opt, *policy, *p.train, nullptr, to);
    t.fit();
    return t.losses();
  };
  manual_seed(5);
  const auto a = run(false);
  manual_seed(5);
  const auto b = run(true);
  ASSERT_EQ(a.size(), 16u);
  EXPECT_EQ(a, b) << "the range test changed what training does afterwards";
}

TEST(LrFinderTest, RepeatsUseOtherDataOrdersAndReportASpread) {
  testing::Problem p;
  LrFinderOptions o;
  o.num_steps = 24;
  o.progress_mode = -2;
  o.diverge_th = 0;
  const std::vector<double> before = state_values(*p.model, *p.opt);
  const RepeatedLrFinder rep = find_lr_repeated(*p.model, *p.opt, *p.train, o, 3);
  ASSERT_EQ(rep.runs.size(), 3u);
  EXPECT_NE(rep.runs[0].losses, rep.runs[1].losses);
  EXPECT_GE(rep.min_loss_lr.median, rep.min_loss_lr.min);
  EXPECT_LE(rep.min_loss_lr.median, rep.min_loss_lr.max);
  EXPECT_GE(rep.min_loss_lr.log10_std, 0);
  EXPECT_EQ(state_values(*p.model, *p.opt), before);
}

TEST(LrFinderTest, MomentumSweepGivesOneCurvePerValueAndRestoresMomentum) {
  testing::Problem p;
  LrFinderOptions o;
  o.num_steps = 12;
  o.progress_mode = -2;
  const auto curves = sweep_lr(*p.model, *p.opt, *p.train, o, "momentum", {0.8, 0.95});
  ASSERT_EQ(curves.size(), 2u);
  EXPECT_EQ(curves[1].value, 0.95);
  EXPECT_NE(curves[0].result.losses, curves[1].result.losses);
  EXPECT_DOUBLE_EQ(p.opt->momentum(), 0.9);
  const auto wd = sweep_lr(*p.model, *p.opt, *p.train, o, "weight_decay", {0.0, 0.1});
  EXPECT_EQ(wd.size(), 2u);
  ::cyclone::testing::expect_error(
      [&] { sweep_lr(*p.model, *p.opt, *p.train, o, "dropout", {0.1}); }, {"dropout"});
}

TEST(LrFinderTest, CsvHasOneRowPerPointAndMarksSkippedOnes) {
  LrFinderResult r;
  r.steps = {0, 1, 1};
  r.lrs = {1e-3, 2e-3, 2e-3};
  r.losses = {2.5, -kNaN, 2.4};
  r.smoothed = {2.5, kNaN, 2.45};
  r.skips = {false, true, false};
  const std::string path = ::testing::TempDir() + "/lr_finder_test.csv";
  write_lr_finder_csv(r, path);
  std::ifstream in(path);
  std::string header, l1, l2, l3;
  std::getline(in, header);
  std::getline(in, l1);
  std::getline(in, l2);
  std::getline(in, l3);
  EXPECT_EQ(header, "step,lr,loss,smoothed_loss,skipped");
  EXPECT_EQ(l1, "0,0.001,2.5,2.5,0");
  EXPECT_EQ(l2, "1,0.002,nan,nan,1");  // the skipped attempt at step 1, retried below
  EXPECT_EQ(l3, "1,0.002,2.4,2.45,0");
}

// The deferred range test (losses read back every 7 steps, smoothing and divergence decided on
// the device) draws the same curve, stops at the same step and suggests the same rates as the
// step-by-step one, and still puts everything back.
TEST(LrFinderTest, DeferredReadBackGivesTheSameCurveAndStop) {
  auto run = [](int64_t sync_every) {
    testing::Problem p;
    LrFinderOptions o;
    o.num_steps = 60;
    o.end_lr = 1e4;  // diverges well before the end
    o.progress_mode = -2;
    o.sync_every = sync_every;
    o.generators = {p.dropout_gen};
    const std::vector<double> before = state_values(*p.model, *p.opt);
    LrFinderResult r = find_lr(*p.model, *p.opt, *p.train, o);
    EXPECT_EQ(state_values(*p.model, *p.opt), before) << "sync_every " << sync_every;
    return r;
  };
  const LrFinderResult a = run(1), b = run(7);
  ASSERT_TRUE(a.diverged);
  EXPECT_TRUE(b.diverged);
  EXPECT_LT(a.stopped_at, 60);
  EXPECT_EQ(b.stopped_at, a.stopped_at);
  ASSERT_EQ(b.lrs.size(), a.lrs.size());
  for (size_t i = 0; i < a.lrs.size(); ++i) {
    EXPECT_EQ(b.steps[i], a.steps[i]);
    EXPECT_DOUBLE_EQ(b.lrs[i], a.lrs[i]);
    EXPECT_NEAR(b.losses[i], a.losses[i], 1e-5 * std::max(1.0, std::abs(a.losses[i]))) << i;
    EXPECT_NEAR(b.smoothed[i], a.smoothed[i], 1e-5 * std::max(1.0, std::abs(a.smoothed[i]))) << i;
  }
  EXPECT_DOUBLE_EQ(b.suggestions.min_loss_lr, a.suggestions.min_loss_lr);
  EXPECT_DOUBLE_EQ(b.suggestions.valley_lr, a.suggestions.valley_lr);
  // The deferred test says how its steps ran (and why there was no CUDA graph), once.
  EXPECT_EQ(a.step_mode, "");
  EXPECT_EQ(b.step_mode, "steps read back every 7, CUDA graph off (cpu: CUDA graphs need a GPU)");
}

TEST(LrFinderTest, BadOptionsAreErrors) {
  testing::Problem p;
  LrFinderOptions o;
  o.progress_mode = -2;
  o.start_lr = 1;
  o.end_lr = 0.1;
  ::cyclone::testing::expect_error([&] { find_lr(*p.model, *p.opt, *p.train, o); }, {"end_lr"});
  o = LrFinderOptions{};
  o.val_every = 5;
  ::cyclone::testing::expect_error([&] { find_lr(*p.model, *p.opt, *p.train, o); }, {"held-out"});
}

}  // namespace
}  // namespace cyclone::train
