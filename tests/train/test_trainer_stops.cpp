// How a run ends and what it says about its scores: a signal during the evaluation, a resume that
// does not fit its checkpoint, a divergence beside an older run's checkpoints, and which split the
// logged scores come from.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "common/test_util.h"
#include "cyclone/schedulers/policy.h"
#include "cyclone/train/checkpoint.h"
#include "cyclone/train/interrupt.h"
#include "cyclone/train/trainer.h"
#include "train_fixture.h"

namespace cyclone::train {
namespace {

namespace fs = std::filesystem;

using testing::quiet;

std::string first_line(const std::string& path) {
  std::ifstream in(path);
  std::string l;
  std::getline(in, l);
  return l;
}

// A model that raises the interrupt flag when it runs in eval mode, as a Ctrl-C arriving while
// the trainer scores an epoch would.
class SignalWhileEvaluating : public Module {
 public:
  explicit SignalWhileEvaluating(std::shared_ptr<Module> inner) {
    inner_ = register_module("inner", std::move(inner));
  }
  Tensor forward(const Tensor& x) override {
    if (!is_training()) request_interrupt();
    return (*inner_)(x);
  }
  std::string type_name() const override { return "SignalWhileEvaluating"; }

 private:
  std::shared_ptr<Module> inner_;
};

const char* kConstantRate = R"({"policy": "constant", "lr": 0.05})";

TEST(TrainerStops, ASignalDuringTheEvaluationStopsAtThatEpochsEnd) {
  testing::Problem p;
  SignalWhileEvaluating model(p.model);
  auto policy = schedulers::make_policy(kConstantRate);
  TrainerOptions o = quiet(3);
  o.generators = {p.dropout_gen};
  ::cyclone::testing::TempDir dir;
  o.checkpoint_dir = dir.file("checkpoints");
  const FitResult r = Trainer(model, *p.opt, *policy, *p.train, p.test.get(), o).fit();
  clear_interrupt();
  EXPECT_EQ(r.status, "interrupted");
  EXPECT_EQ(r.epochs_run, 1);
  EXPECT_EQ(r.steps, 8);  // the whole first epoch, not a step of the second
  EXPECT_NE(r.message.find("after epoch 1"), std::string::npos) << r.message;
  // A library run names the call that resumes (the apps set resume_hint to their flag).
  EXPECT_NE(r.message.find("resume with Trainer::resume(\"" + o.checkpoint_dir + "\")"),
            std::string::npos)
      << r.message;
  // The checkpoint is the epoch boundary: a resume starts epoch 2.
  EXPECT_EQ(resolve_checkpoint(o.checkpoint_dir), o.checkpoint_dir + "/epoch-0001");
}

TEST(TrainerStops, ASignalDuringTheLastEvaluationSkipsOnlyTheSnapshotEnsemble) {
  testing::Problem p;
  SignalWhileEvaluating model(p.model);
  auto policy = schedulers::make_policy(kConstantRate);
  TrainerOptions o = quiet(1);
  o.generators = {p.dropout_gen};
  ::cyclone::testing::TempDir dir;
  o.checkpoint_dir = dir.file("checkpoints");
  {
    const FitResult r = Trainer(model, *p.opt, *policy, *p.train, p.test.get(), o).fit();
    clear_interrupt();
    EXPECT_EQ(r.status, "completed");  // nothing was left to do
    // ... but the stop is reported, for a caller with more work after it (the next phase).
    EXPECT_TRUE(r.stop_requested);
    const FitResult quiet_run = Trainer(*p.model, *p.opt, *policy, *p.train, p.test.get(), o).fit();
    EXPECT_EQ(quiet_run.status, "completed");
    EXPECT_FALSE(quiet_run.stop_requested);
  }
  o.snapshot_ensemble = true;
  const FitResult r = Trainer(model, *p.opt, *policy, *p.train, p.test.get(), o).fit();
  clear_interrupt();
  EXPECT_EQ(r.status, "interrupted");
  EXPECT_NE(r.message.find("snapshot ensemble"), std::string::npos) << r.message;
  EXPECT_FALSE(r.ensemble.has_value());
}

TEST(TrainerStops, ResumingWithAnotherNumberOfBatchesPerEpochIsAnError) {
  testing::Problem p;
  auto policy = schedulers::make_policy(kConstantRate);
  TrainerOptions o = quiet(1);
  o.generators = {p.dropout_gen};
  ::cyclone::testing::TempDir dir;
  o.checkpoint_dir = dir.file("checkpoints");
  Trainer(*p.model, *p.opt, *policy, *p.train, nullptr, o).fit();  // 8 batches per epoch

  testing::Problem q;
  TrainerOptions shorter = o;
  shorter.generators = {q.dropout_gen};
  shorter.epochs = 2;
  shorter.limit_train_batches = 4;  // as a larger batch size would
  Trainer t(*q.model, *q.opt, *policy, *q.train, nullptr, shorter);
  ::cyclone::testing::expect_error([&] { t.resume(o.checkpoint_dir); },
                                   {"8 batches per epoch", "this one has 4"});
  // The same settings resume.
  TrainerOptions same = shorter;
  same.limit_train_batches = 0;
  Trainer u(*q.model, *q.opt, *policy, *q.train, nullptr, same);
  EXPECT_NO_THROW(u.resume(o.checkpoint_dir));
}

TEST(TrainerStops, ResumingWithAnotherNumberOfRanksIsAnError) {
  testing::Problem p;
  auto policy = schedulers::make_policy(kConstantRate);
  TrainerOptions o = quiet(1);
  o.generators = {p.dropout_gen};
  ::cyclone::testing::TempDir dir;
  o.checkpoint_dir = dir.file("checkpoints");
  Trainer(*p.model, *p.opt, *policy, *p.train, nullptr, o).fit();
  const std::string state = resolve_checkpoint(o.checkpoint_dir) + "/trainer.json";
  nlohmann::json j = nlohmann::json::parse(std::ifstream(state));
  EXPECT_EQ(j.value("ranks", 0), 1);  // this test is a world of one
  j["ranks"] = 2;                     // as `mpirun -np 2` would have written
  std::ofstream(state) << j.dump();

  testing::Problem q;
  TrainerOptions again = o;
  again.generators = {q.dropout_gen};
  again.epochs = 2;
  Trainer t(*q.model, *q.opt, *policy, *q.train, nullptr, again);
  ::cyclone::testing::expect_error([&] { t.resume(o.checkpoint_dir); },
                                   {"run had 2 rank(s), this one has 1", "mpirun -np 2"});
}

TEST(TrainerStops, ADivergenceNamesOnlyACheckpointOfItsOwnRun) {
  ::cyclone::testing::TempDir dir;
  const std::string ckpt = dir.file("checkpoints");
  {
    testing::Problem p;
    auto policy = schedulers::make_policy(kConstantRate);
    TrainerOptions o = quiet(1);
    o.generators = {p.dropout_gen};
    o.checkpoint_dir = ckpt;
    EXPECT_EQ(Trainer(*p.model, *p.opt, *policy, *p.train, nullptr, o).fit().status, "completed");
  }
  // A new run in the same folder blows up at its first step: the older run's checkpoint is not
  // "the last good" one of this run.
  testing::Problem p;
  auto blow_up = schedulers::make_policy(R"({"policy": "constant", "lr": 1e30})");
  TrainerOptions o = quiet(1);
  o.generators = {p.dropout_gen};
  o.checkpoint_dir = ckpt;
  const FitResult r = Trainer(*p.model, *p.opt, *blow_up, *p.train, nullptr, o).fit();
  EXPECT_EQ(r.status, "diverged");
  EXPECT_EQ(r.last_checkpoint, "");
  EXPECT_EQ(r.message.find("checkpoint"), std::string::npos) << r.message;
}

TEST(TrainerStops, TheLoggedScoresAreNamedAfterTheirSplit) {
  auto policy = schedulers::make_policy(kConstantRate);
  for (const std::string split : {"test", "val"}) {
    testing::Problem p;
    TrainerOptions o = quiet(1);
    o.generators = {p.dropout_gen};
    ::cyclone::testing::TempDir dir;
    o.log_dir = dir.path().string();
    o.eval_split = split;
    Trainer(*p.model, *p.opt, *policy, *p.train, p.test.get(), o).fit();
    const std::string header = first_line(dir.file("history.csv"));
    EXPECT_NE(header.find(split + "_loss," + split + "_accuracy"), std::string::npos) << header;
    EXPECT_EQ(header.find(split == "val" ? "test_" : "val_"), std::string::npos) << header;
  }
}

// Early stopping on a validation score with the test set as the eval loader would choose the
// epoch by the test set: refused.
TEST(TrainerStops, EarlyStoppingOnValScoresNeedsAValidationSplit) {
  testing::Problem p;
  auto policy = schedulers::make_policy(kConstantRate);
  TrainerOptions o = quiet(2);
  o.generators = {p.dropout_gen};
  o.early_stop_patience = 1;
  o.early_stop_monitor = "val_loss";
  ::cyclone::testing::expect_error(
      [&] { Trainer(*p.model, *p.opt, *policy, *p.train, p.test.get(), o); },
      {"val_loss", "validation split"});
  o.eval_split = "val";
  EXPECT_NO_THROW(Trainer(*p.model, *p.opt, *policy, *p.train, p.test.get(), o));
  o.eval_split = "test";
  o.early_stop_monitor = "loss";  // the training loss may be watched
  EXPECT_NO_THROW(Trainer(*p.model, *p.opt, *policy, *p.train, p.test.get(), o));
}

}  // namespace
}  // namespace cyclone::train
