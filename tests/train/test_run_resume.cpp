// --resume checked before the data is read (a missing checkpoint; for a multi-phase run, a folder
// other than its own model_dir, or one holding none of its phases), and the summary of a resumed
// run carried over from the one the interrupted run wrote.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "common/test_util.h"
#include "cyclone/core/safetensors.h"
#include "cyclone/data/registry.h"
#include "cyclone/train/cli.h"
#include "cyclone/train/run_detail.h"
#include "cyclone/train/run_state.h"

namespace cyclone::train {
namespace {

namespace fs = std::filesystem;

std::string resume_refusal(const RunSpec& s) {
  try {
    (void)detail::check_resume_target(s);
  } catch (const UsageError& e) {
    return e.message();
  }
  return "";
}

RunSpec phased_run(const fs::path& log_dir) {
  RunSpec s;
  s.program = "train";
  s.log_dir = log_dir.string();
  PhaseSpec a, b;
  a.name = "head";
  b.name = "all";
  s.phases = {a, b};
  return s;
}

// A corrupt checkpoint's trainer.json nested 400000 deep (its policy, which the loader dumps)
// crashed --resume (SIGSEGV) in the tree's recursion: now one error naming the file.
TEST(RunStateJson, DeepNestingIsAnErrorNotACrash) {
  std::string text = run_state_to_json(RunState{}, R"("placeholder")", 2);
  const size_t at = text.find(R"("placeholder")");
  ASSERT_NE(at, std::string::npos) << text;
  text.replace(at, 13, std::string(400000, '[') + std::string(400000, ']'));
  cyclone::testing::expect_error([&] { run_state_from_json(text, "epoch-0001/trainer.json"); },
                                 {"epoch-0001/trainer.json is nested deeper than 64 levels"});
}

// A checkpoint folder as the trainer writes it (the weights files hold no tensor: only their
// presence and headers are checked before the data is read).
fs::path write_checkpoint_files(
    const fs::path& run, const RunState& st,
    const std::string& policy = R"({"policy": "constant", "lr": 0.1})") {
  const fs::path ckpt = run / "checkpoints" / "epoch-0001";
  fs::create_directories(ckpt);
  std::ofstream(ckpt / "trainer.json") << run_state_to_json(st, policy, 2);
  save_safetensors((ckpt / "model.safetensors").string(), {});
  save_safetensors((ckpt / "optimizer.safetensors").string(), {});
  return ckpt;
}

RunSpec best_lr_run(const fs::path& log_dir, int64_t epochs) {
  RunSpec s;
  s.program = "best_lr";
  s.log_dir = log_dir.string();
  s.trainer.epochs = epochs;
  return s;
}

// `first` resumed from a checkpoint of it (written in `dir`) at state `st`.
RunSpec resuming(const RunSpec& first, RunState st, const fs::path& dir) {
  st.settings = detail::resume_settings(first);
  RunSpec again = first;
  again.resume = write_checkpoint_files(dir, st).string();
  return again;
}

// check_resume_target's answer and what it printed.
std::pair<bool, std::string> check_resume_printing(const RunSpec& spec) {
  ::testing::internal::CaptureStdout();
  const bool go_on = detail::check_resume_target(spec);
  std::fflush(stdout);
  return {go_on, ::testing::internal::GetCapturedStdout()};
}

// Resuming a finished run printed "training N steps" and "done" and trained nothing; a smaller
// --num_epochs than the checkpoint's epoch cannot be what was meant.
TEST(RunResume, ACheckpointAtOrPastTheLastEpochIsSaidBeforeAnyWork) {
  const cyclone::testing::TempDir dir;
  RunState st;
  st.epoch = 4;
  RunSpec again = resuming(best_lr_run(dir.path(), 4), st, dir.path());
  const auto [go_on, out] = check_resume_printing(again);
  EXPECT_FALSE(go_on);
  EXPECT_NE(out.find("is at epoch 4 of 4: nothing to train (give a larger --num_epochs"),
            std::string::npos)
      << out;
  again.trainer.epochs = 1;
  const std::string m = resume_refusal(again);
  EXPECT_NE(m.find("is at epoch 4, past --num_epochs 1: give --num_epochs 5 or more to train on"),
            std::string::npos)
      << m;
  again.trainer.epochs = 6;
  EXPECT_TRUE(detail::check_resume_target(again));
}

// A checkpoint written by early stopping (epochs without improvement = the patience) is finished:
// resuming it trained on and stopped again a patience later, replacing the weights and logs at
// every resume. A larger patience goes on, as a larger epoch count does after the last epoch.
TEST(RunResume, AnEarlyStoppedRunHasNothingToTrainUnlessThePatienceGrows) {
  const cyclone::testing::TempDir dir;
  RunSpec first = best_lr_run(dir.path(), 10);
  first.trainer.early_stop_patience = 2;
  first.trainer.early_stop_monitor = "loss";
  RunState st;
  st.epoch = 4;
  st.bad_epochs = 2;
  RunSpec again = resuming(first, st, dir.path());
  const auto [go_on, out] = check_resume_printing(again);
  EXPECT_FALSE(go_on);
  EXPECT_NE(out.find("the run stopped early at epoch 4 (no better loss for 2 epochs): nothing to "
                     "train (give a larger --early_stop_patience"),
            std::string::npos)
      << out;
  again.trainer.early_stop_patience = 3;
  EXPECT_TRUE(detail::check_resume_target(again));
  again.trainer.early_stop_patience = 0;  // early stopping off: trains on to the last epoch
  EXPECT_TRUE(detail::check_resume_target(again));
}

// The default warmup of the scaled rate is a fifth of the run (at most 5 epochs): a data-parallel
// run resumed with more epochs recomputed it (90 -> 300 steps), so the rate fell back down the
// ramp mid-run (0.04 -> 0.029 at step 130). A resume keeps the warmup its run started with.
TEST(RunResume, TheDefaultWarmupIsTheOneTheRunStartedWith) {
  using nlohmann::json;
  RunSpec spec;
  spec.program = "train";
  spec.lr_scaling = "linear";
  const data::DatasetInfo info = data::dataset_info("synthetic");
  detail::RunContext c{spec, Device::cpu(), info};
  TrainerOptions to;
  to.epochs = 3;
  json record = json::object();
  ::testing::internal::CaptureStdout();
  detail::apply_lr_scaling(c, to, 2, false, 150, record);
  EXPECT_EQ(to.lr_scale, 2);
  EXPECT_EQ(to.lr_scale_warmup_steps, 90);  // 450 / 5
  const json first = record;
  to.epochs = 10;  // resumed for longer
  detail::apply_lr_scaling(c, to, 2, false, 150, record, &first);
  EXPECT_EQ(to.lr_scale_warmup_steps, 90);
  detail::apply_lr_scaling(c, to, 2, false, 150, record);  // a new run of 10 epochs
  EXPECT_EQ(to.lr_scale_warmup_steps, 300);
  spec.lr_warmup_epochs = 1;  // asked for: as asked, resumed or not
  detail::apply_lr_scaling(c, to, 2, false, 150, record, &first);
  EXPECT_EQ(to.lr_scale_warmup_steps, 150);
  ::testing::internal::GetCapturedStdout();
}

// A checkpoint missing its weights got past the check and failed after "training N steps"; a key
// missing from trainer.json was reported in nlohmann's words.
TEST(RunResume, ADamagedCheckpointNamesTheFileOrKeyBeforeAnyWork) {
  const cyclone::testing::TempDir dir;
  RunSpec s = best_lr_run(dir.path(), 2);
  RunState st;
  st.settings = detail::resume_settings(s);
  const fs::path ckpt = write_checkpoint_files(dir.path(), st);
  s.resume = ckpt.string();
  fs::remove(ckpt / "model.safetensors");
  cyclone::testing::expect_error(
      [&] { (void)detail::check_resume_target(s); },
      {(ckpt / "model.safetensors").string(), "is missing", "resume from another checkpoint"});
  // Truncated (a copy cut short): found from the header and the file's size, before the data
  // load, where it was found only when the weights were read after it.
  const std::string model = (ckpt / "model.safetensors").string();
  save_safetensors(model, {{"fc.weight", Tensor::zeros(Shape({4, 8}))}});
  fs::resize_file(model, fs::file_size(model) - 16);
  cyclone::testing::expect_error([&] { (void)detail::check_resume_target(s); },
                                 {"checkpoint " + ckpt.string() + " is damaged", model,
                                  "'fc.weight'", "outside", "resume from another checkpoint"});
  save_safetensors(model, {});
  const std::string policy = R"({"policy": "constant", "lr": 0.1})";
  std::string text = run_state_to_json(st, policy, 2);
  text.replace(text.find("\"step\""), 6, "\"stpe\"");
  std::ofstream(ckpt / "trainer.json") << text;
  cyclone::testing::expect_error([&] { (void)detail::check_resume_target(s); },
                                 {(ckpt / "trainer.json").string(), "the key 'step' is missing"});
  // A position past the epoch it records (an edited file) was found by the trainer after the
  // data load, naming no file.
  RunState past = st;
  past.batches_per_epoch = 30;
  past.batch = 999;
  std::ofstream(ckpt / "trainer.json", std::ios::trunc) << run_state_to_json(past, policy, 2);
  cyclone::testing::expect_error(
      [&] { (void)detail::check_resume_target(s); },
      {(ckpt / "trainer.json").string(), "batch 999 is past the epoch's 30 batches",
       "resume from another checkpoint"});
}

// Resuming a 1cycle run with another --num_epochs named policy.total_epochs and said in the same
// line that the epochs may change.
TEST(RunResume, Best_lrsRefusalNamesItsFlags) {
  const cyclone::testing::TempDir dir;
  RunSpec first = best_lr_run(dir.path(), 5);
  first.policy_json = R"({"policy": "one_cycle", "max_lr": "finder*1", "total_epochs": 5})";
  first.fixed_lr = 0.01;
  RunState st;
  st.settings = detail::resume_settings(first);
  RunSpec again = first;
  again.resume = write_checkpoint_files(dir.path(), st, first.policy_json).string();
  again.trainer.epochs = 8;
  again.policy_json = R"({"policy": "one_cycle", "max_lr": "finder*1", "total_epochs": 8})";
  again.fixed_lr = 0.02;
  const std::string m = resume_refusal(again);
  EXPECT_NE(m.find("--num_epochs 5 (now 8)"), std::string::npos) << m;
  EXPECT_NE(m.find("--skip_test 0.01 (now 0.02)"), std::string::npos) << m;
  EXPECT_NE(m.find("one_cycle's cycle spans the whole run: its --num_epochs cannot change"),
            std::string::npos)
      << m;
  EXPECT_EQ(m.find("policy.total_epochs"), std::string::npos) << m;
  EXPECT_EQ(m.find("fixed_lr"), std::string::npos) << m;
}

TEST(RunResume, TotalWallSecondsAddsTheEarlierRuns) {
  using nlohmann::json;
  json now = {{"wall_seconds", 2.0}};
  detail::add_total_wall_seconds(now, json{{"wall_seconds", 3.0}});
  EXPECT_EQ(now["total_wall_seconds"], 5.0);
  json third = {{"wall_seconds", 1.0}};
  detail::add_total_wall_seconds(third, now);  // a second resume: the total so far
  EXPECT_EQ(third["total_wall_seconds"], 6.0);
  json fresh = {{"wall_seconds", 1.0}};
  detail::add_total_wall_seconds(fresh, nullptr);
  EXPECT_FALSE(fresh.contains("total_wall_seconds"));
}

TEST(RunResume, MissingCheckpointIsAUsageErrorNamingTheFlag) {
  const cyclone::testing::TempDir dir;
  RunSpec s;
  s.program = "best_lr";
  s.log_dir = dir.path().string();
  s.resume = (dir.path() / "nothing_here").string();
  const std::string m = resume_refusal(s);
  EXPECT_NE(m.find("--resume"), std::string::npos) << m;
  EXPECT_NE(m.find("nothing_here"), std::string::npos) << m;
  EXPECT_NE(m.find("does not exist"), std::string::npos) << m;
}

TEST(RunResume, PhasesResumeOnlyFromTheirOwnModelDir) {
  const cyclone::testing::TempDir dir;
  const fs::path run = dir.path() / "run";
  RunSpec s = phased_run(run);
  fs::create_directories(run / "head");
  std::ofstream(run / "head" / "phase_done.json") << "{}";

  // Another run's folder (or a typo) used to be ignored: the run trained from scratch.
  s.resume = (dir.path() / "other").string();
  std::string m = resume_refusal(s);
  EXPECT_NE(m.find("its own model_dir"), std::string::npos) << m;
  EXPECT_NE(m.find(run.string()), std::string::npos) << m;

  // The run's folder, its checkpoints folder (trainer.resume: true) or a phase's are fine.
  for (const fs::path& p : {run, run / "checkpoints", run / "head" / "checkpoints"}) {
    s.resume = p.string();
    EXPECT_EQ(resume_refusal(s), "") << p;
  }

  // A model_dir with nothing of this run's phases in it.
  const fs::path empty = dir.path() / "empty";
  fs::create_directories(empty);
  RunSpec fresh = phased_run(empty);
  fresh.resume = empty.string();
  m = resume_refusal(fresh);
  EXPECT_NE(m.find("holds no phase of this run"), std::string::npos) << m;
}

TEST(RunResume, ACheckpointOfOtherSettingsIsRefusedNamingThem) {
  const cyclone::testing::TempDir dir;
  RunSpec first;
  first.program = "train";
  first.log_dir = dir.path().string();
  first.optimizer = "sgd";
  first.optimizer_json = R"({"momentum": 0.9, "weight_decay": 0.0005})";
  first.policy_json = R"({"policy": "constant", "lr": 0.1})";
  first.trainer.epochs = 2;
  // What the trainer writes into each checkpoint's trainer.json.
  RunState st;
  st.settings = detail::resume_settings(first);
  const fs::path ckpt = write_checkpoint_files(dir.path(), st);
  EXPECT_EQ(run_state_from_json(run_state_to_json(st, "{}", 2), "t").settings, st.settings);

  RunSpec again = first;
  again.resume = ckpt.string();
  // Longer, elsewhere, in another precision: the same run going on.
  again.trainer.epochs = 5;
  again.device = "cuda";
  again.precision = "bf16";
  again.trainer.checkpoint_every = 3;
  again.limit_eval_batches = 2;  // scoring fewer test images trains the same
  EXPECT_EQ(resume_refusal(again), "");
  // Another weight decay or seed would be another run: it used to be ignored (the checkpoint's
  // optimizer state won) or to train a different one, silently.
  again.optimizer_json = R"({"momentum": 0.9, "weight_decay": 0.01})";
  again.seed = 3;
  const std::string m = resume_refusal(again);
  EXPECT_NE(m.find("optimizer.weight_decay 0.0005 (now 0.01)"), std::string::npos) << m;
  EXPECT_NE(m.find("seed 0 (now 3)"), std::string::npos) << m;
  EXPECT_NE(m.find("resume without changing them"), std::string::npos) << m;
  // dataset.pad_to is a setting of the run once set; a checkpoint without it (written before the
  // option, or without padding) resumes only without it.
  RunSpec padded = first;
  padded.resume = ckpt.string();
  padded.pad_to = 32;
  const std::string p = resume_refusal(padded);
  EXPECT_NE(p.find("pad_to unset (now 32)"), std::string::npos) << p;
  // Another policy brings other option keys: its name is the difference named, not each key
  // (which listed "policy.lr 0.1 (now unset)" and the like before it).
  RunSpec cyclic = first;
  cyclic.resume = ckpt.string();
  cyclic.policy_json = R"({"policy": "triangular", "base_lr": 0.01, "max_lr": 0.1,
                           "step_size_epochs": 1})";
  const std::string c = resume_refusal(cyclic);
  EXPECT_NE(c.find("settings: policy.policy \"constant\" (now \"triangular\"): resume"),
            std::string::npos)
      << c;
}

// A run resumed into another folder (--log_dir) lost the range test and the chosen rate: its
// folder has no summary yet. The summary next to the checkpoint's checkpoints/ folder is the one
// of the run that wrote it; this run's folder's own is the fallback (a custom checkpoint_dir).
TEST(RunResume, TheSummaryComesFromTheRunThatWroteTheCheckpoint) {
  using nlohmann::json;
  const cyclone::testing::TempDir dir;
  const fs::path first = dir.path() / "first", second = dir.path() / "second";
  RunState st;
  st.epoch = 1;
  const fs::path ckpt = write_checkpoint_files(first, st);
  std::ofstream(first / "summary.json") << json{{"chosen_lr", 0.12}}.dump();
  std::ofstream(first / "checkpoints" / "latest") << "epoch-0001\n";
  RunSpec s = best_lr_run(second, 3);
  s.resume = (first / "checkpoints").string();
  EXPECT_EQ(detail::previous_summary(s)["chosen_lr"], 0.12);
  s.resume = ckpt.string();
  EXPECT_EQ(detail::previous_summary(s)["chosen_lr"], 0.12);
  s.resume = ckpt.string() + "/";
  EXPECT_EQ(detail::previous_summary(s)["chosen_lr"], 0.12);

  fs::create_directories(second);
  std::ofstream(second / "summary.json") << json{{"chosen_lr", 0.5}}.dump();
  EXPECT_EQ(detail::previous_summary(s)["chosen_lr"], 0.12);   // the checkpoint's run, not this one
  const fs::path custom = dir.path() / "mine" / "epoch-0001";  // not under a checkpoints/ folder
  fs::create_directories(custom.parent_path());
  fs::rename(ckpt, custom);
  s.resume = custom.string();
  EXPECT_EQ(detail::previous_summary(s)["chosen_lr"], 0.5);
  s.resume.clear();
  EXPECT_TRUE(detail::previous_summary(s).is_null());  // a fresh run carries nothing over
}

TEST(RunResume, SummaryKeepsWhatOnlyTheFirstRunKnew) {
  using nlohmann::json;
  const json before = {{"chosen_lr", 0.12},
                       {"lr_finder", {{"steepest_lr", 0.03}}},
                       {"status", "interrupted"},
                       {"message", "interrupted at step 120"},
                       {"final_test_accuracy", 0.81},
                       {"best_test_accuracy", 0.83},
                       {"last_checkpoint", "/run/checkpoints/interrupted"}};
  json now = {{"chosen_lr", nullptr},       {"status", "completed"}, {"final_test_accuracy", 0.84},
              {"best_test_accuracy", 0.82}, {"last_checkpoint", ""}, {"epochs_run", 3}};
  detail::carry_over_summary(now, before);
  EXPECT_EQ(now["chosen_lr"], 0.12);  // the range test ran before the resume
  EXPECT_EQ(now["lr_finder"]["steepest_lr"], 0.03);
  EXPECT_EQ(now["status"], "completed");        // this run's ending ...
  EXPECT_FALSE(now.contains("message"));        // ... not the interrupt's message
  EXPECT_EQ(now["final_test_accuracy"], 0.84);  // this run's score
  EXPECT_EQ(now["best_test_accuracy"], 0.83);   // the best over both
  EXPECT_EQ(now["last_checkpoint"], "/run/checkpoints/interrupted");  // none written since
  EXPECT_EQ(now["epochs_run"], 3);

  json untouched = now;
  detail::carry_over_summary(untouched, nullptr);  // a fresh run, or no summary before
  EXPECT_EQ(untouched, now);

  // A completed run resumed for more epochs and interrupted: its final score and weights file
  // are the earlier run's ending, not this one's (they stay null, as a fresh interrupted run's).
  const json completed = {{"status", "completed"},        {"final_test_accuracy", 0.832},
                          {"final_test_top5", 0.99},      {"model_file", "/run/model.safetensors"},
                          {"ensemble", {{"top1", 0.84}}}, {"chosen_lr", 0.1}};
  json interrupted = {{"status", "interrupted"},
                      {"final_test_accuracy", nullptr},
                      {"model_file", nullptr},
                      {"ensemble", nullptr},
                      {"chosen_lr", nullptr}};
  detail::carry_over_summary(interrupted, completed);
  EXPECT_TRUE(interrupted["final_test_accuracy"].is_null()) << interrupted.dump();
  EXPECT_TRUE(interrupted["model_file"].is_null()) << interrupted.dump();
  EXPECT_TRUE(interrupted["ensemble"].is_null()) << interrupted.dump();
  EXPECT_FALSE(interrupted.contains("final_test_top5")) << interrupted.dump();
  EXPECT_EQ(interrupted["chosen_lr"], 0.1);
}

}  // namespace
}  // namespace cyclone::train
