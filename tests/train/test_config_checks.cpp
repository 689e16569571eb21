// What ./bin/train's config reader refuses before a run starts: phase names that are not one
// folder each, policies and optimizer options the run would refuse later (after the data load,
// the range test or the earlier phases), keys given twice in JSON, a missing file, half an image
// size. Each refusal is a UsageError naming the file and the key path.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "common/test_util.h"
#include "cyclone/train/cli.h"
#include "cyclone/train/run_config.h"
#include "cyclone/train/run_detail.h"

namespace cyclone::train {
namespace {

namespace fs = std::filesystem;

template <class F>
std::string usage_error_of(F&& f) {
  try {
    f();
  } catch (const UsageError& e) {
    return e.message();
  }
  ADD_FAILURE() << "no UsageError";
  return "";
}

void expect_parts(const std::string& message, std::initializer_list<std::string> parts) {
  for (const auto& p : parts)
    EXPECT_NE(message.find(p), std::string::npos) << "'" << p << "' not in: " << message;
}

const char* kData = R"("dataset": {"name": "mnist"})";

std::string with_phases(const std::string& phases) {
  return std::string("{") + kData + R"(, "trainer": {"phases": [)" + phases + "]}}";
}

std::string phase(const std::string& name_field) {
  return "{" + name_field + R"("epochs": 1, "policy": {"policy": "constant", "lr": 0.01}})";
}

// The printed range of a run's rates and summary.json's train_lr_min / train_lr_max cover every
// step: a triangular policy of step_size 1 alternates base_lr (even steps) and max_lr (odd ones),
// which evenly spaced samples over 7999 steps missed (every sample even: [0.001, 0.001]).
TEST(ConfigChecks, TheRunsRateRangeCoversEveryStep) {
  nlohmann::json summary;
  for (int64_t total : {int64_t{7999}, int64_t{3} << 21}) {
    detail::make_run_policy(
        R"({"policy": "triangular", "base_lr": 0.001, "max_lr": 0.1, "step_size": 1})", total,
        "test", &summary);
    EXPECT_DOUBLE_EQ(summary["train_lr_min"].get<double>(), 0.001) << total;
    EXPECT_DOUBLE_EQ(summary["train_lr_max"].get<double>(), 0.1) << total;
  }
}

// A chosen rate at an end of the sweep gets a warning naming the setting to change: the first
// rate (the loss only rose), the last of a test that never diverged (still falling); a rate inside
// the sweep, or the last of a diverged test, none.
TEST(ConfigChecks, AChosenRateAtAnEndOfTheSweepIsWarnedAbout) {
  LrFinderResult r;
  r.lrs = {1e-4, 1e-3, 1e-2, 1e-1};
  RunSpec best_lr, train;
  best_lr.program = "best_lr";
  train.program = "train";
  EXPECT_NE(detail::sweep_edge_warning(best_lr, r, 1e-4).find("lower --lr_min"), std::string::npos);
  EXPECT_NE(detail::sweep_edge_warning(train, r, 1e-4).find("lower lr_finder.start_lr"),
            std::string::npos);
  EXPECT_NE(detail::sweep_edge_warning(best_lr, r, 1e-1).find("raise --lr_max"), std::string::npos);
  EXPECT_EQ(detail::sweep_edge_warning(best_lr, r, 1e-2), "");
  r.diverged = true;
  EXPECT_EQ(detail::sweep_edge_warning(best_lr, r, 1e-1), "");
  EXPECT_NE(detail::sweep_edge_warning(best_lr, r, 1e-4), "");
}

TEST(ConfigChecks, PhaseNamesAreDistinctPlainFolderNames) {
  const RunSpec ok = parse_run_config(
      with_phases(phase(R"("name": "head-1.a_b", )") + "," + phase("")), "run.json");
  ASSERT_EQ(ok.phases.size(), 2u);
  EXPECT_EQ(ok.phases[0].name, "head-1.a_b");
  EXPECT_EQ(ok.phases[1].name, "phase2");

  expect_parts(usage_error_of([] {
                 parse_run_config(
                     with_phases(phase(R"("name": "a", )") + "," + phase(R"("name": "a", )")),
                     "run.json");
               }),
               {"run.json: trainer.phases[1].name", "\"a\"", "trainer.phases[0]", "must differ"});
  // A default name counts too.
  expect_parts(usage_error_of([] {
                 parse_run_config(with_phases(phase(R"("name": "phase2", )") + "," + phase("")),
                                  "run.json");
               }),
               {"run.json: trainer.phases[1].name", "\"phase2\""});
  for (const char* bad : {"../../escape", "a/b", "", ".", "..", "x y", "/abs"}) {
    SCOPED_TRACE(bad);
    const std::string name = std::string(R"("name": ")") + bad + "\", ";
    expect_parts(usage_error_of([&] { parse_run_config(with_phases(phase(name)), "run.json"); }),
                 {"run.json: trainer.phases[0].name", "plain folder name"});
  }
}

TEST(ConfigChecks, PolicyErrorsNameTheFileAndKeyPathBeforeTheRun) {
  // The audit's cases: each failed only after the data load, the range test or a phase.
  expect_parts(usage_error_of([] {
                 parse_run_config(std::string("{") + kData + R"(, "lr_finder": {},
                   "policy": {"policy": "one_cycle", "max_lr": "finder", "total_epochs": 1,
                              "pct_strat": 0.3}})",
                                  "run.json");
               }),
               {"run.json: policy", "unknown field 'pct_strat'", "did you mean 'pct_start'?"});
  expect_parts(usage_error_of([] {
                 parse_run_config(
                     with_phases(phase("") + R"(, {"epochs": 2, "policy": {"policy": "sgdr",
                           "lr": 0.1, "cycle_len_epochs": 1, "wamup": 3}})"),
                     "run.json");
               }),
               {"run.json: trainer.phases[1].policy", "unknown field 'wamup'", "cycle_mult"});
  expect_parts(usage_error_of([] {
                 parse_run_config(std::string("{") + kData +
                                      R"(, "policy": {"policy": "triangle", "base_lr": 0.1}})",
                                  "run.yml");
               }),
               {"run.yml: policy", "unknown policy 'triangle'", "did you mean 'triangular'?"});
  // A value the policy refuses whatever the data: reported with the path too.
  expect_parts(usage_error_of([] {
                 parse_run_config(std::string("{") + kData +
                                      R"(, "policy": {"policy": "step", "lr": 0.1,
                                        "step_size_epochs": 1, "gamma": 0}})",
                                  "run.json");
               }),
               {"run.json: policy", "field 'gamma'"});
  // "finder" with no range test before it: in a phase, an lr_find phase must come first.
  expect_parts(usage_error_of([] {
                 parse_run_config(
                     with_phases(R"({"policy": {"policy": "constant", "lr": "finder"}})"),
                     "run.json");
               }),
               {"run.json: trainer.phases[0].policy", "'lr'", "range test"});
  // The microDL callback's cyclic rate is named as what it is.
  expect_parts(usage_error_of([] {
                 parse_run_config(std::string("{") + kData + R"(, "trainer": {"callbacks":
                   {"LearningRateScheduler": {"base_lr": 0.1, "max_lr": 0.01}}}})",
                                  "run.json");
               }),
               {"run.json: trainer.callbacks.LearningRateScheduler", "max_lr"});
}

TEST(ConfigChecks, StandInRatesDoNotRefuseWhatTheRealRateMayAllow) {
  // max_lr is the range test's rate, base_lr fixed: whether max_lr >= base_lr holds is known only
  // once the test ran, so the config is accepted ...
  const RunSpec s = parse_run_config(std::string("{") + kData + R"(, "lr_finder": {},
      "policy": {"policy": "triangular", "base_lr": 0.05, "max_lr": "finder",
                 "step_size_epochs": 1}})",
                                     "run.json");
  EXPECT_TRUE(s.finder.enabled);
  // ... yet a misspelt field beside it is still found, whichever stand-in passes the comparison.
  for (const char* fields :
       {R"("base_lr": 0.05, "max_lr": "finder")", R"("base_lr": "finder", "max_lr": 0.05)"}) {
    SCOPED_TRACE(fields);
    expect_parts(usage_error_of([&] {
                   parse_run_config(
                       std::string("{") + kData +
                           R"(, "lr_finder": {}, "policy": {"policy": "triangular", )" + fields +
                           R"(, "step_size_epochs": 1, "gama": 0.5}})",
                       "run.json");
                 }),
                 {"run.json: policy", "unknown field 'gama'", "did you mean 'gamma'?"});
  }
}

TEST(ConfigChecks, RangeTestRatesAreRefusedOnlyWhereNoSuggestionFits) {
  auto config = [](const std::string& rates) {
    return std::string("{") + kData + R"(, "lr_finder": {"start_lr": 1e-5, "end_lr": 10},
        "policy": {"policy": "triangular", )" +
           rates + R"(, "step_size_epochs": 1}})";
  };
  // Both rates from the test, the wrong way round: no suggestion can fix that, so the config is
  // refused when read, not after the range test.
  expect_parts(usage_error_of([&] {
                 parse_run_config(config(R"("base_lr": "finder", "max_lr": "finder/10")"),
                                  "run.json");
               }),
               {"run.json: policy", "max_lr", "for every rate the range test can suggest",
                "from 1e-06 to 10"});
  // base_lr = finder/10 below a fixed max_lr of 0.05 fits any suggestion under 0.5: accepted when
  // read and again once the batches per epoch are known (a stand-in rate of 1 had refused it).
  const RunSpec s =
      parse_run_config(config(R"("base_lr": "finder/10", "max_lr": 0.05)"), "run.json");
  EXPECT_NO_THROW(detail::check_policy_fits(s, 100));
  // With the rate given, it is judged exactly.
  RunSpec fixed = s;
  fixed.fixed_lr = 1.0;
  expect_parts(usage_error_of([&] { detail::check_policy_fits(fixed, 100); }), {"max_lr", "0.1"});
  fixed.fixed_lr = 0.1;
  EXPECT_NO_THROW(detail::check_policy_fits(fixed, 100));
}

// SGDR cycles that round to one step never anneal and would snapshot every step: refused with the
// shortest length that works, in best_lr's flag or the config's key.
TEST(ConfigChecks, SgdrCyclesOfOneStepAreRefused) {
  RunSpec s;
  s.program = "best_lr";
  s.fixed_lr = 0.1;
  s.trainer.epochs = 2;
  s.policy_json = R"({"policy": "sgdr", "lr": "finder*1", "min_lr": "finder*0.1",
                      "cycle_len_epochs": 0.002})";
  expect_parts(usage_error_of([&] { detail::check_policy_fits(s, 20); }),
               {"--step_size_epochs 0.001", "under 2 steps", "at least 0.05"});
  s.program = "train";
  expect_parts(usage_error_of([&] { detail::check_policy_fits(s, 20); }),
               {"policy.cycle_len_epochs 0.002", "at least 0.1"});
  EXPECT_NO_THROW(detail::check_policy_fits(s, 1000));  // 2 steps a cycle
}

TEST(ConfigChecks, EveryPhasePolicyMustFitTheRealEpochBeforeTheFirstPhase) {
  // 1cycle over one step cannot run; the phase's epochs are known only in steps once the data is
  // open, and the run checks every phase then, before phase 1 trains.
  const RunSpec s =
      parse_run_config(with_phases(R"({"epochs": 1, "policy": {"policy": "constant", "lr": 0.01}},
                   {"lr_find": true},
                   {"epochs": 1, "policy": {"policy": "one_cycle", "max_lr": "finder",
                                            "total_epochs": 1}})"),
                       "run.json");
  EXPECT_NO_THROW(detail::check_policy_fits(s, 100));
  expect_parts(usage_error_of([&] { detail::check_policy_fits(s, 1); }),
               {"trainer.phases[2].policy", "one_cycle"});
}

TEST(ConfigChecks, OptimizerOptionsAreCheckedWithTheConfig) {
  auto cfg = [](const std::string& optimizer) {
    return std::string("{") + kData + R"(, "trainer": {"optimizer": )" + optimizer +
           R"(}, "policy": {"policy": "constant", "lr": 0.1}})";
  };
  expect_parts(
      usage_error_of(
          [&] { parse_run_config(cfg(R"({"name": "sgd", "momentun": 0.9})"), "r.json"); }),
      {"r.json: trainer.optimizer", "unknown option 'momentun'", "did you mean 'momentum'?"});
  expect_parts(usage_error_of([&] { parse_run_config(cfg(R"({"name": "adma"})"), "r.json"); }),
               {"r.json: trainer.optimizer", "unknown optimizer 'adma'", "did you mean 'adam'?"});
  expect_parts(
      usage_error_of([&] { parse_run_config(cfg(R"({"name": "adam", "beta1": 1.5})"), "r.json"); }),
      {"r.json: trainer.optimizer", "beta1"});
  expect_parts(usage_error_of([&] {
                 parse_run_config(cfg(R"({"groups": [{"name": "head", "prefixes": ["fc"],
                                                    "lr_mul": 2}]})"),
                                  "r.json");
               }),
               {"r.json: trainer.optimizer", "unknown option 'lr_mul'"});
  // Groups are checked for their form; which parameters they select waits for the model.
  const RunSpec s = parse_run_config(cfg(R"({"name": "sgd", "momentum": 0.9, "nesterov": true,
              "groups": [{"name": "head", "prefixes": ["fc3."], "lr_mult": 10}]})"),
                                     "r.json");
  EXPECT_EQ(s.optimizer, "sgd");
}

TEST(ConfigChecks, JsonKeysGivenTwiceAreErrorsNamingLineAndPath) {
  expect_parts(usage_error_of([] {
                 parse_run_config(
                     "{\"dataset\": {\"name\": \"mnist\"},\n\"trainer\": {\n"
                     "  \"max_epochs\": 1,\n  \"max_epochs\": 3}}",
                     "run.json");
               }),
               {"run.json:4: trainer.max_epochs is given twice"});
  // Inside a list, and a key spelt with an escape.
  expect_parts(usage_error_of([] {
                 parse_run_config(with_phases(phase("") + ",\n" +
                                              R"({"epochs": 1, "policy": {"policy": "constant",)"
                                              "\n\"lr\": 0.1, \"l\\u0072\": 0.2}})"),
                                  "run.json");
               }),
               {"run.json:3: trainer.phases[1].policy.lr is given twice"});
  // The same key in two objects is fine.
  EXPECT_NO_THROW(
      parse_run_config(std::string("{") + kData + R"(, "policy": {"policy": "constant", "lr": 0.1},
                                    "trainer": {"optimizer": {"name": "sgd"}}})",
                       "run.json"));
}

TEST(ConfigChecks, MissingConfigFileIsAUsageError) {
  const cyclone::testing::TempDir dir;
  const std::string missing = dir.file("nonexist.json");
  expect_parts(usage_error_of([&] { load_run_config(missing); }), {missing, "no such"});
  expect_parts(usage_error_of([&] { load_run_config(dir.path().string()); }), {"is a directory"});
}

TEST(ConfigChecks, HalfAnImageSizeIsAUsageError) {
  expect_parts(usage_error_of([] {
                 parse_run_config(R"({"dataset": {"name": "mnist", "height": 32},
                                      "policy": {"policy": "constant", "lr": 0.1}})",
                                  "run.json");
               }),
               {"run.json: dataset.height", "without dataset.width"});
  expect_parts(usage_error_of([] {
                 parse_run_config(R"({"dataset": {"name": "mnist", "width": 32},
                                      "policy": {"policy": "constant", "lr": 0.1}})",
                                  "run.json");
               }),
               {"run.json: dataset.width", "without dataset.height"});
}

TEST(ConfigChecks, ResumeTrueFollowsTheLogDir) {
  const RunSpec s = parse_run_config(std::string("{") + kData + R"(,
      "trainer": {"model_dir": "out/resC", "resume": true},
      "policy": {"policy": "constant", "lr": 0.1}})",
                                     "run.json");
  EXPECT_TRUE(s.resume_in_log_dir);
  EXPECT_EQ(s.resume, (fs::path("out/resC") / "checkpoints").string());
  const RunSpec p = parse_run_config(std::string("{") + kData + R"(,
      "trainer": {"model_dir": "out/resC", "resume": "elsewhere/ckpt"},
      "policy": {"policy": "constant", "lr": 0.1}})",
                                     "run.json");
  EXPECT_FALSE(p.resume_in_log_dir);
  EXPECT_EQ(p.resume, "elsewhere/ckpt");
}

}  // namespace
}  // namespace cyclone::train
