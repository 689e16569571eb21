#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/test_util.h"
#include "cyclone/core/file_util.h"
#include "cyclone/layers/loss_ops.h"
#include "cyclone/schedulers/policy.h"
#include "cyclone/train/checkpoint.h"
#include "cyclone/train/grad_utils.h"
#include "cyclone/train/interrupt.h"
#include "cyclone/train/lr_finder.h"
#include "cyclone/train/run_state.h"
#include "cyclone/train/step.h"
#include "cyclone/train/step_runner.h"
#include "cyclone/train/trainer.h"
#include "train_fixture.h"

namespace cyclone::train {
namespace {

namespace fs = std::filesystem;

std::string fresh_dir(const std::string& name) {
  const std::string d = ::testing::TempDir() + "/cyclone_trainer_" + name;
  fs::remove_all(d);
  return d;
}

using testing::quiet;

int count_lines(const std::string& path) {
  std::ifstream in(path);
  int n = 0;
  for (std::string l; std::getline(in, l);) ++n;
  return n;
}

std::string trim_copy(std::string s) {
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

const char* kPolicy = R"({"policy": "triangular", "base_lr": 0.01, "max_lr": 0.1, "step_size": 6})";

TEST(TrainerTest, LearnsAndReportsEveryEpoch) {
  testing::Problem p;
  auto policy = schedulers::make_policy(kPolicy);
  TrainerOptions o = quiet(4);
  o.generators = {p.dropout_gen};
  o.log_dir = fresh_dir("learns");
  o.log_every_steps = 4;
  std::vector<int64_t> seen;
  Trainer t(*p.model, *p.opt, *policy, *p.train, p.test.get(), o);
  t.on_epoch_end([&](const EpochStats& e) { seen.push_back(e.epoch); });
  const FitResult r = t.fit();
  EXPECT_EQ(r.status, "completed");
  EXPECT_EQ(r.epochs_run, 4);
  EXPECT_EQ(r.steps, 32);
  EXPECT_EQ(seen, (std::vector<int64_t>{1, 2, 3, 4}));
  ASSERT_EQ(r.history.size(), 4u);
  EXPECT_LT(r.history.back().train_loss, r.history.front().train_loss);
  EXPECT_GT(r.final_accuracy, 0.5);  // 4 separable classes: far above chance (0.25)
  EXPECT_GE(r.best_accuracy, r.final_accuracy);
  EXPECT_GT(r.images_per_second, 0);
  // The policy drove the optimizer: the last step used lr(31).
  EXPECT_DOUBLE_EQ(p.opt->lr(), policy->lr(31));
  EXPECT_EQ(count_lines(o.log_dir + "/history.csv"), 5);
  EXPECT_EQ(count_lines(o.log_dir + "/steps.csv"), 1 + 32 / 4);
  bool has_events = false;
  for (const auto& e : fs::directory_iterator(o.log_dir + "/tensorboard_logs"))
    has_events |= e.path().filename().string().rfind("events.out.tfevents.", 0) == 0;
  EXPECT_TRUE(has_events);
}

// Mistakes a library user can make that would otherwise train nothing, or train wrongly, and
// report success: an optimizer built from another model (or from this one before it was rebuilt),
// a 1cycle shorter than the run (its last steps at 1e-4 of the peak), fit() called twice.
TEST(TrainerTest, RefusesAnOptimizerOfAnotherModelAShortOneCycleAndASecondFit) {
  testing::Problem p, other(2);
  auto policy = schedulers::make_policy(kPolicy);
  ::cyclone::testing::expect_error(
      [&] { Trainer(*p.model, *other.opt, *policy, *p.train, nullptr, quiet(1)); },
      {"trainer", "optimizer's parameter", "not a parameter of the model"});
  LrFinderOptions lo;
  lo.num_steps = 4;
  ::cyclone::testing::expect_error([&] { find_lr(*p.model, *other.opt, *p.train, lo); },
                                   {"lr range test", "not a parameter of the model"});
  // The two lower doors a library user can call directly (they reported 'applied' steps that
  // changed nothing of the model's).
  ::cyclone::testing::expect_error([&] { StepRunner(*p.model, *other.opt, StepRunnerOptions{}); },
                                   {"step runner", "not a parameter of the model"});
  data::Batch batch;
  p.train->start_epoch(0);
  ASSERT_TRUE(p.train->next(batch));
  ::cyclone::testing::expect_error([&] { train_step(*p.model, *other.opt, batch); },
                                   {"train_step", "not a parameter of the model"});
  // 8 steps an epoch, 2 epochs: a cycle of 15 steps is one too short, 16 fits.
  auto short_cycle =
      schedulers::make_policy(R"({"policy": "one_cycle", "max_lr": 0.1, "total_steps": 15})");
  ::cyclone::testing::expect_error(
      [&] { Trainer(*p.model, *p.opt, *short_cycle, *p.train, nullptr, quiet(2)).fit(); },
      {"one_cycle", "total_steps 15", "trains 16 steps", "give the policy total_steps 16"});
  auto cycle =
      schedulers::make_policy(R"({"policy": "one_cycle", "max_lr": 0.1, "total_steps": 16})");
  Trainer t(*p.model, *p.opt, *cycle, *p.train, nullptr, quiet(2));
  EXPECT_EQ(t.fit().steps, 16);
  ::cyclone::testing::expect_error([&] { t.fit(); }, {"fit() has already run"});
}

// Per-group rates are printed once at the start (the logs carry only the base rate).
TEST(TrainerTest, SaysEachParameterGroupsRate) {
  testing::Problem p;
  const std::string first = p.model->named_parameters().front().first;
  const std::string prefix = first.substr(0, first.find('.') + 1);
  auto opt = optim::make_optimizer(
      "sgd", p.model->named_parameters(),
      R"({"lr": 0.05, "momentum": 0.9, "groups": [{"name": "low", "prefixes": [")" + prefix +
          R"("], "lr_mult": 0.1, "weight_decay": 0.01}]})");
  auto policy = schedulers::make_policy(kPolicy);
  TrainerOptions o = quiet(1);
  o.progress_mode = 0;
  o.limit_train_batches = 1;
  ::testing::internal::CaptureStdout();
  Trainer(*p.model, *opt, *policy, *p.train, nullptr, o).fit();
  const std::string out = ::testing::internal::GetCapturedStdout();
  EXPECT_NE(out.find("parameter groups: low (2 tensors) lr x0.1 wd 0.01;"), std::string::npos)
      << out;
  EXPECT_NE(out.find(" default ("), std::string::npos) << out;

  // Every tensor in a named group: the empty default group is not listed ("default (0 tensors)").
  auto all_low = optim::make_optimizer("sgd", p.model->named_parameters(),
                                       R"({"lr": 0.05, "groups": [{"name": "low", "prefixes": [""],
                                           "lr_mult": 0.1}]})");
  ::testing::internal::CaptureStdout();
  Trainer(*p.model, *all_low, *policy, *p.train, nullptr, o).fit();
  const std::string all = ::testing::internal::GetCapturedStdout();
  EXPECT_NE(all.find("parameter groups: low ("), std::string::npos) << all;
  EXPECT_EQ(all.find("default ("), std::string::npos) << all;
}

// A policy part that does not schedule momentum (a sequence's constant rate after its 1cycle)
// gives the optimizer its own momentum back, as lr_schedule reports for the same spec.
TEST(TrainerTest, MomentumReturnsToTheOptimizersOwnWhereThePolicyStopsSchedulingIt) {
  testing::Problem p(1, "sgd", R"({"lr": 0.05, "momentum": 0.7})");
  auto policy = schedulers::make_policy(
      R"({"policy": "sequence", "parts": [{"policy": "one_cycle", "max_lr": 0.05,
          "total_steps": 6, "steps": 6}, {"policy": "constant", "lr": 0.01}]})");
  TrainerOptions o = quiet(1);
  o.limit_train_batches = 8;
  o.log_dir = fresh_dir("momentum_back");
  o.log_every_steps = 1;
  Trainer(*p.model, *p.opt, *policy, *p.train, nullptr, o).fit();
  EXPECT_DOUBLE_EQ(p.opt->momentum(), 0.7);
  // steps.csv: the 1cycle's momentum for steps 1-6, the optimizer's 0.7 after.
  std::ifstream in(o.log_dir + "/steps.csv");
  std::string line;
  std::getline(in, line);
  for (int step = 1; std::getline(in, line); ++step) {
    std::vector<std::string> cols;
    std::stringstream ss(line);
    for (std::string c; std::getline(ss, c, ',');) cols.push_back(c);
    ASSERT_GE(cols.size(), 5u) << line;
    const double want = step <= 6 ? *policy->momentum(step - 1) : 0.7;
    EXPECT_NEAR(std::stod(cols[4]), want, 1e-9) << line;
  }
}

// An uninterrupted run, and the same run stopped after epoch 2 and resumed into a model and
// optimizer built with other weights: the resumed epochs' losses are bit-for-bit the same.
TEST(TrainerTest, ResumeFromAnEpochCheckpointContinuesExactly) {
  auto policy = schedulers::make_policy(kPolicy);
  std::vector<double> full;
  {
    testing::Problem p;
    TrainerOptions o = quiet(3);
    o.generators = {p.dropout_gen};
    o.checkpoint_dir = fresh_dir("resume_full");
    o.checkpoint_every = 1;
    o.keep_checkpoints = 0;
    Trainer t(*p.model, *p.opt, *policy, *p.train, p.test.get(), o);
    t.fit();
    full = t.losses();
    EXPECT_TRUE(fs::exists(o.checkpoint_dir + "/epoch-0002/model.safetensors"));
    EXPECT_TRUE(fs::exists(o.checkpoint_dir + "/epoch-0003/trainer.json"));
  }
  testing::Problem q(/*model_seed=*/99);
  TrainerOptions o = quiet(3);
  o.generators = {q.dropout_gen};
  Trainer t(*q.model, *q.opt, *policy, *q.train, q.test.get(), o);
  t.resume(::testing::TempDir() + "/cyclone_trainer_resume_full/epoch-0002");
  EXPECT_EQ(t.step(), 16);
  const FitResult r = t.fit();
  ASSERT_EQ(full.size(), 24u);
  ASSERT_EQ(t.losses().size(), 8u);
  EXPECT_EQ(t.losses(), std::vector<double>(full.begin() + 16, full.end()));
  EXPECT_EQ(r.steps, 24);
}

// A mid-epoch checkpoint holds the epoch's training time so far (it held 0 until the epoch ended,
// so a run resumed from it under-counted its time).
TEST(TrainerTest, StepCheckpointsHoldTheEpochsTimeSoFar) {
  auto policy = schedulers::make_policy(kPolicy);
  testing::Problem p;
  TrainerOptions o = quiet(2);
  o.checkpoint_dir = fresh_dir("step_time");
  o.checkpoint_every_steps = 3;
  o.keep_checkpoints = 0;
  Trainer(*p.model, *p.opt, *policy, *p.train, nullptr, o).fit();
  // 8 batches an epoch: step 3 is epoch 1's batch 3, step 12 epoch 2's batch 4.
  for (const auto& [name, batch] : {std::pair{"step-00000003", 3}, std::pair{"step-00000012", 4}}) {
    std::ifstream in(o.checkpoint_dir + "/" + name + "/trainer.json");
    ASSERT_TRUE(in) << name;
    std::stringstream text;
    text << in.rdbuf();
    const RunState st = run_state_from_json(text.str(), "trainer.json");
    EXPECT_EQ(st.batch, batch) << name;
    EXPECT_GT(st.epoch_train_seconds, 0.0) << name;
  }
}

// float16 with dynamic loss scaling, on the host path (every step) and the step runner's (read
// back every 4): a start at 2^20 overflows and backs off, 5 good steps grow the scale again, so
// the scale moves all along. The checkpoint records it and a resumed run goes on with it: its
// epochs' losses are the uninterrupted run's, bit for bit.
TEST(TrainerTest, Float16ResumeGoesOnWithTheLossScale) {
  auto policy = schedulers::make_policy(kPolicy);
  for (const int64_t sync_every : {1, 4}) {
    SCOPED_TRACE("sync_every " + std::to_string(sync_every));
    const std::string dir = fresh_dir("fp16_resume_" + std::to_string(sync_every));
    auto options = [&](testing::Problem& p) {
      TrainerOptions o = quiet(3);
      o.generators = {p.dropout_gen};
      o.sync_every = sync_every;
      o.loss_scale.init_scale = 0x1p20;
      o.loss_scale.growth_interval = 5;
      o.max_consecutive_skips = 3;  // overflows above scale 1 must not count
      return o;
    };
    std::vector<double> full;
    {
      testing::Problem p;
      p.model->set_compute_dtype(DType::kFloat16);
      TrainerOptions o = options(p);
      o.checkpoint_dir = dir;
      o.checkpoint_every = 1;
      o.keep_checkpoints = 0;
      Trainer t(*p.model, *p.opt, *policy, *p.train, p.test.get(), o);
      EXPECT_EQ(t.fit().status, "completed");
      full = t.losses();
    }
    std::ifstream in(dir + "/epoch-0002/trainer.json");
    std::stringstream text;
    text << in.rdbuf();
    const RunState st = run_state_from_json(text.str(), "trainer.json");
    EXPECT_GT(st.loss_scale, 0);
    EXPECT_LT(st.loss_scale, 0x1p20) << "the 2^20 start must have backed off";
    testing::Problem q(/*model_seed=*/99);
    q.model->set_compute_dtype(DType::kFloat16);
    Trainer t(*q.model, *q.opt, *policy, *q.train, q.test.get(), options(q));
    t.resume(dir + "/epoch-0002");
    t.fit();
    ASSERT_EQ(full.size(), 24u);
    EXPECT_EQ(t.losses(), std::vector<double>(full.begin() + 16, full.end()));
  }
}

TEST(TrainerTest, InterruptWritesAMidEpochCheckpointThatResumesExactly) {
  auto policy = schedulers::make_policy(kPolicy);
  std::vector<double> full;
  {
    testing::Problem p;
    TrainerOptions o = quiet(2);
    o.generators = {p.dropout_gen};
    Trainer t(*p.model, *p.opt, *policy, *p.train, nullptr, o);
    t.fit();
    full = t.losses();
  }
  const std::string dir = fresh_dir("interrupt");
  {
    testing::Problem p;
    TrainerOptions o = quiet(2);
    o.generators = {p.dropout_gen};
    o.checkpoint_dir = dir;
    o.resume_hint = "--resume";  // as the apps set it
    Trainer t(*p.model, *p.opt, *policy, *p.train, nullptr, o);
    // As a Ctrl-C during epoch 2 would: the flag is seen after the next step.
    t.on_epoch_end([](const EpochStats&) { request_interrupt(); });
    const FitResult r = t.fit();
    EXPECT_EQ(r.status, "interrupted");
    EXPECT_NE(r.message.find("(resume with --resume " + dir + ")"), std::string::npos) << r.message;
    EXPECT_EQ(t.step(), 9);
    EXPECT_EQ(resolve_checkpoint(dir), dir + "/interrupted");
  }
  clear_interrupt();
  testing::Problem q(/*model_seed=*/7);
  TrainerOptions o = quiet(2);
  o.generators = {q.dropout_gen};
  o.checkpoint_dir = dir;
  Trainer t(*q.model, *q.opt, *policy, *q.train, nullptr, o);
  t.resume(dir);
  const FitResult r = t.fit();
  EXPECT_EQ(r.status, "completed");
  EXPECT_EQ(t.losses(), std::vector<double>(full.begin() + 9, full.end()));
  // The resumed run's epoch checkpoint supersedes the interrupt's, which is removed (a whole
  // model and optimizer state kept for good otherwise).
  EXPECT_EQ(resolve_checkpoint(dir), dir + "/epoch-0002");
  EXPECT_FALSE(fs::exists(dir + "/interrupted"));
}

TEST(TrainerTest, ResumeWithAnotherPolicyIsAnErrorNamingIt) {
  testing::Problem p;
  auto policy = schedulers::make_policy(kPolicy);
  TrainerOptions o = quiet(1);
  o.generators = {p.dropout_gen};
  o.checkpoint_dir = fresh_dir("policy_mismatch");
  Trainer(*p.model, *p.opt, *policy, *p.train, nullptr, o).fit();
  auto other = schedulers::make_policy(R"({"policy": "constant", "lr": 0.1})");
  Trainer t(*p.model, *p.opt, *other, *p.train, nullptr, o);
  ::cyclone::testing::expect_error([&] { t.resume(o.checkpoint_dir); }, {"policy", "constant"});
  ::cyclone::testing::expect_error([&] { t.resume(fresh_dir("nothing_here")); },
                                   {"nothing_here", "does not exist"});
}

TEST(TrainerTest, NonFiniteLossStopsAndKeepsTheLastGoodCheckpoint) {
  testing::Problem p;
  // A sane first epoch, then a rate that blows the weights up.
  auto policy = schedulers::make_policy(
      R"({"policy": "sequence", "parts": [{"policy": "constant", "lr": 0.05, "steps": 8},
                                          {"policy": "constant", "lr": 1e12}]})");
  TrainerOptions o = quiet(5);
  o.generators = {p.dropout_gen};
  o.checkpoint_dir = fresh_dir("nan");
  o.checkpoint_every = 1;
  const FitResult r = Trainer(*p.model, *p.opt, *policy, *p.train, nullptr, o).fit();
  EXPECT_EQ(r.status, "diverged");
  EXPECT_NE(r.message.find("lr 1e+12"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("step"), std::string::npos);
  EXPECT_EQ(r.last_checkpoint, o.checkpoint_dir + "/epoch-0001");
  EXPECT_NE(r.message.find("epoch-0001"), std::string::npos);
  // The kept checkpoint loads and holds finite weights.
  testing::Problem q;
  read_checkpoint(r.last_checkpoint, *q.model, *q.opt);
  for (const auto& [n, t] : q.model->named_parameters())
    for (double v : ::cyclone::testing::values(t)) ASSERT_TRUE(std::isfinite(v)) << n;
}

// Reading the losses back every 5 steps (train/step_runner.h) instead of every step trains the
// same model: same per-epoch losses and accuracies, same step log, same final weights.
TEST(TrainerTest, DeferredReadBackTrainsAsEveryStep) {
  auto run = [](int64_t sync_every, const std::string& dir) {
    auto p = std::make_unique<testing::Problem>();
    auto policy = schedulers::make_policy(kPolicy);
    TrainerOptions o = quiet(3);
    o.generators = {p->dropout_gen};
    o.sync_every = sync_every;
    o.clip_grad_norm = 1.0;
    o.log_dir = fresh_dir(dir);
    o.log_every_steps = 3;
    const FitResult r = Trainer(*p->model, *p->opt, *policy, *p->train, p->test.get(), o).fit();
    return std::make_pair(r, std::move(p));
  };
  const auto [a, pa] = run(1, "sync1");
  const auto [b, pb] = run(5, "sync5");
  EXPECT_EQ(b.status, "completed");
  EXPECT_EQ(b.steps, a.steps);
  ASSERT_EQ(b.history.size(), a.history.size());
  for (size_t e = 0; e < a.history.size(); ++e) {
    EXPECT_NEAR(b.history[e].train_loss, a.history[e].train_loss, 1e-6) << "epoch " << e;
    EXPECT_DOUBLE_EQ(b.history[e].train_accuracy, a.history[e].train_accuracy);
    EXPECT_NEAR(b.history[e].eval->loss, a.history[e].eval->loss, 1e-6);
    EXPECT_DOUBLE_EQ(b.history[e].lr, a.history[e].lr);
  }
  const std::string dir = ::testing::TempDir() + "/cyclone_trainer_";
  EXPECT_EQ(count_lines(dir + "sync5/steps.csv"), 1 + a.steps / 3);
  EXPECT_EQ(count_lines(dir + "sync1/steps.csv"), 1 + a.steps / 3);
  const NamedTensors wa = pa->model->state_dict(), wb = pb->model->state_dict();
  for (size_t i = 0; i < wa.size(); ++i)
    EXPECT_TRUE(::cyclone::testing::all_close(wb[i].second, wa[i].second, 1e-5, 1e-6))
        << wa[i].first;
}

// The divergence of a deferred run is found when the records come back, at the same step, with
// the same message, and the weights are those of the last good step.
TEST(TrainerTest, DeferredReadBackStopsAtTheSameDivergentStep) {
  auto run = [](int64_t sync_every) {
    testing::Problem p;
    auto policy = schedulers::make_policy(
        R"({"policy": "sequence", "parts": [{"policy": "constant", "lr": 0.05, "steps": 11},
                                            {"policy": "constant", "lr": 1e12}]})");
    TrainerOptions o = quiet(5);
    o.generators = {p.dropout_gen};
    o.sync_every = sync_every;
    return Trainer(*p.model, *p.opt, *policy, *p.train, nullptr, o).fit();
  };
  const FitResult a = run(1), b = run(8);
  EXPECT_EQ(a.status, "diverged");
  EXPECT_EQ(b.status, a.status);
  EXPECT_EQ(b.message, a.message);
  EXPECT_EQ(b.steps, a.steps);
}

TEST(TrainerTest, EarlyStoppingAfterPatienceEpochsWithoutImprovement) {
  testing::Problem p;
  // lr 0: nothing changes, so the accuracy never improves after epoch 1.
  auto policy = schedulers::make_policy(R"({"policy": "constant", "lr": 0})");
  TrainerOptions o = quiet(10);
  o.generators = {p.dropout_gen};
  o.early_stop_patience = 2;
  o.eval_split = "val";  // p.test stands for a validation split here
  const FitResult r = Trainer(*p.model, *p.opt, *policy, *p.train, p.test.get(), o).fit();
  EXPECT_EQ(r.status, "early_stopped");
  EXPECT_EQ(r.epochs_run, 3);
}

TEST(TrainerTest, SnapshotEnsembleSavesAtEachRestartAndScoresTheAverage) {
  testing::Problem p;
  auto policy =
      schedulers::make_policy(R"({"policy": "sgdr", "lr": 0.1, "min_lr": 0.001, "cycle_len": 8})");
  TrainerOptions o = quiet(3);
  o.generators = {p.dropout_gen};
  o.snapshot_ensemble = true;
  o.log_dir = fresh_dir("snapshots");
  o.tensorboard = false;
  const FitResult r = Trainer(*p.model, *p.opt, *policy, *p.train, p.test.get(), o).fit();
  ASSERT_EQ(r.snapshots.size(), 3u);  // before the restarts at steps 8 and 16, and the end
  for (const auto& s : r.snapshots) EXPECT_TRUE(fs::exists(s)) << s;
  ASSERT_TRUE(r.ensemble.has_value());
  EXPECT_EQ(r.ensemble->samples, 64);
  EXPECT_GT(r.ensemble->top1, 0.25);
}

TEST(TrainerTest, PhasesFreezeAndUnfreezeParameterGroups) {
  testing::Problem p;
  auto policy = schedulers::make_policy(R"({"policy": "constant", "lr": 0.05})");
  TrainerOptions o = quiet(3);
  o.generators = {p.dropout_gen};
  const std::string first = p.model->named_parameters().front().first;
  const std::string prefix = first.substr(0, first.find('.') + 1);
  o.phases = {{0, {prefix}, {}}, {2, {}, {prefix}}};
  std::vector<std::vector<double>> snap;
  Trainer t(*p.model, *p.opt, *policy, *p.train, nullptr, o);
  auto weights = [&] {
    return ::cyclone::testing::values(p.model->named_parameters().front().second);
  };
  snap.push_back(weights());
  t.on_epoch_end([&](const EpochStats&) { snap.push_back(weights()); });
  t.fit();
  EXPECT_EQ(snap[0], snap[1]);  // frozen in epoch 1
  EXPECT_EQ(snap[1], snap[2]);  // and 2
  EXPECT_NE(snap[2], snap[3]);  // trained again in epoch 3
  // A prefix that matches nothing froze nothing, and the run reported success.
  o.phases = {{1, {"nonexistent."}, {}}};
  ::cyclone::testing::expect_error(
      [&] { Trainer(*p.model, *p.opt, *policy, *p.train, nullptr, o); },
      {"phases[0] (epoch 1) freezes prefix 'nonexistent.'", "matches no parameter",
       "the first is '" + first + "'"});
}

TEST(TrainerTest, GradientClippingBoundsTheGlobalNorm) {
  testing::Problem p;
  data::Batch b;
  p.train->start_epoch(0);
  ASSERT_TRUE(p.train->next(b));
  p.opt->zero_grad();
  cross_entropy((*p.model)(b.images), b.labels).backward();
  const double norm = grad_norm(p.opt->params());
  ASSERT_GT(norm, 0.01);
  const double scale = clip_grad_norm(p.opt->params(), norm, norm / 4);
  EXPECT_NEAR(scale, 0.25, 1e-4);
  EXPECT_NEAR(grad_norm(p.opt->params()), norm / 4, 1e-4 * norm);
  EXPECT_EQ(clip_grad_norm(p.opt->params(), norm / 4, norm), 1.0);
}

TEST(TrainerTest, PlateauPolicyIsReportedTheEvalLoss) {
  testing::Problem p;
  // A rate too small to halve the loss in an epoch: every report after the first is "no better"
  // (threshold 0.5, relative), so with patience 0 the rate halves after epoch 2.
  auto policy = schedulers::make_policy(
      R"({"policy": "plateau", "lr": 1e-4, "patience": 0, "factor": 0.5, "threshold": 0.5})");
  TrainerOptions o = quiet(3);
  o.generators = {p.dropout_gen};
  const FitResult r = Trainer(*p.model, *p.opt, *policy, *p.train, p.test.get(), o).fit();
  ASSERT_EQ(r.history.size(), 3u);
  EXPECT_DOUBLE_EQ(r.history[0].lr, 1e-4);
  EXPECT_DOUBLE_EQ(r.history[1].lr, 1e-4);
  EXPECT_DOUBLE_EQ(r.history[2].lr, 0.5e-4);
}

// The trainer reports a loss: mode "max" would halve the rate each time the loss improved (an
// exploratory run: 0.01, 0.01, 0.005, 0.0025 while val_loss fell). Refused, naming the fix.
TEST(TrainerTest, PlateauModeMaxIsRefusedSinceALossIsReported) {
  testing::Problem p;
  auto policy = schedulers::make_policy(R"({"policy": "plateau", "lr": 0.01, "mode": "max"})");
  TrainerOptions o = quiet(1);
  o.generators = {p.dropout_gen};
  ::cyclone::testing::expect_error(
      [&] { Trainer(*p.model, *p.opt, *policy, *p.train, p.test.get(), o); },
      {"plateau policy's mode is \"max\"", "reports a loss", "use mode \"min\""});
}

TEST(CheckpointTest, AtomicDirectoryAndLatestPointer) {
  testing::Problem p;
  const std::string dir = fresh_dir("ckpt");
  const std::string a = write_checkpoint(dir, "epoch-0001", *p.model, *p.opt, R"({"x": 1})");
  const std::string b = write_checkpoint(dir, "epoch-0002", *p.model, *p.opt, R"({"x": 2})");
  EXPECT_EQ(resolve_checkpoint(dir), b);
  EXPECT_EQ(trim_copy(read_file(dir + "/latest")), "epoch-0002");
  // Rewriting one of the same name replaces it whole.
  write_checkpoint(dir, "epoch-0002", *p.model, *p.opt, R"({"x": 3})");
  EXPECT_EQ(read_file(b + "/trainer.json"), R"({"x": 3})");
  for (const auto& e : fs::directory_iterator(dir))
    EXPECT_NE(e.path().filename().string()[0], '.') << "a temporary was left behind";
  prune_checkpoints(dir, "epoch-", 1);
  EXPECT_FALSE(fs::exists(a));
  EXPECT_TRUE(fs::exists(b));
  // A truncated weights file is an error naming it, and the model is left as it was.
  const std::string w = b + "/model.safetensors";
  const std::string bytes = read_file(w);
  write_file_atomic(w, bytes.substr(0, bytes.size() / 2));
  ::cyclone::testing::expect_error([&] { read_checkpoint(dir, *p.model, *p.opt); },
                                   {"model.safetensors"});
}

}  // namespace
}  // namespace cyclone::train
