#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "cyclone/core/file_util.h"
#include "cyclone/data/registry.h"
#include "cyclone/models/registry.h"
#include "cyclone/optim/optimizer.h"
#include "cyclone/schedulers/policy.h"
#include "cyclone/train/cli.h"
#include "cyclone/train/run.h"
#include "cyclone/train/run_config.h"

namespace cyclone::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

fs::path source_root() { return fs::path(__FILE__).parent_path().parent_path().parent_path(); }

template <class F>
void expect_usage_error(F&& f, std::initializer_list<std::string> parts) {
  try {
    f();
    FAIL() << "no UsageError";
  } catch (const UsageError& e) {
    for (const auto& p : parts)
      EXPECT_NE(e.message().find(p), std::string::npos) << "'" << p << "' not in: " << e.message();
  }
}

TEST(RunConfigTest, DefaultsAndEveryField) {
  const RunSpec s = parse_run_config(R"({
    "dataset": {"name": "synthetic", "batch_size": 16, "eval_batch_size": 32,
                "validation_fraction": 0.1, "augment": true, "workers": 2, "data_dir": "d",
                "pad_to": 40},
    "model": {"name": "mlp", "activation": "tanh", "initializer": "glorot_uniform", "dropout": 0.1},
    "optimizer": {"name": "adam", "weight_decay": 0.01},
    "lr_finder": {"start_lr": 1e-6, "end_lr": 1, "num_steps": 50, "mode": "linear",
                  "suggestion": "valley", "repeats": 2, "val_every": 5, "val_batches": 2,
                  "momentum_test": [0.8], "wd_test": [0, 0.1], "smooth_beta": 0.9,
                  "diverge_th": 5},
    "policy": {"policy": "cosine", "lr": "finder", "total_epochs": 3},
    "trainer": {"epochs": 3, "limit_train_batches": 7, "limit_eval_batches": 2, "clip_grad_norm": 1,
                "label_smoothing": 0.1, "checkpoint_every": 1, "keep_checkpoints": 3,
                "early_stop_patience": 2, "early_stop_min_delta": 0.01,
                "snapshot_ensemble": true, "log_every_steps": 10, "tensorboard": false,
                "checkpoint_dir": "c"},
    "log_dir": "L", "device": "cpu", "seed": 4, "plots": false, "save_model": true})",
                                     "t.json");
  EXPECT_EQ(s.dataset, "synthetic");
  EXPECT_EQ(s.batch_size, 16);
  EXPECT_EQ(s.eval_batch_size, 32);
  EXPECT_EQ(s.augment, 1);
  EXPECT_EQ(s.pad_to, 40);
  EXPECT_EQ(s.workers, 2);
  EXPECT_EQ(s.model, "mlp");
  EXPECT_EQ(s.activation, "tanh");
  EXPECT_EQ(s.optimizer, "adam");
  EXPECT_EQ(json::parse(s.optimizer_json), json::parse(R"({"weight_decay": 0.01})"));
  EXPECT_TRUE(s.finder.enabled);
  EXPECT_FALSE(s.finder.options.exponential);
  EXPECT_EQ(s.finder.options.num_steps, 50);
  EXPECT_EQ(s.finder.suggestion, "valley");
  EXPECT_EQ(s.finder.repeats, 2);
  EXPECT_EQ(s.finder.wd_test, (std::vector<double>{0, 0.1}));
  EXPECT_EQ(s.trainer.epochs, 3);
  EXPECT_EQ(s.trainer.limit_train_batches, 7);
  EXPECT_EQ(s.limit_eval_batches, 2);
  EXPECT_TRUE(s.trainer.snapshot_ensemble);
  EXPECT_EQ(s.trainer.early_stop_patience, 2);
  EXPECT_EQ(s.trainer.early_stop_monitor, "val_loss");
  EXPECT_DOUBLE_EQ(s.validation_fraction, 0.1);
  EXPECT_EQ(s.log_dir, "L");
  EXPECT_EQ(s.seed, 4u);
  EXPECT_FALSE(s.plots);
  EXPECT_TRUE(s.save_model);
  // Only the dataset name is required.
  const RunSpec d = parse_run_config(R"({"dataset": {"name": "mnist"}, "lr_finder": {}})", "x");
  EXPECT_EQ(d.batch_size, 128);
  EXPECT_EQ(d.pad_to, 0);
  EXPECT_EQ(d.finder.options.num_steps, 400);
  EXPECT_EQ(d.trainer.epochs, 1);
  EXPECT_EQ(d.lr_scaling, "linear");
  EXPECT_DOUBLE_EQ(d.lr_warmup_epochs, -1);
  EXPECT_FALSE(d.sync_batch_norm);
  // The data-parallel keys (mpirun): the scaling rule, its warmup, synchronized batch norm.
  const RunSpec p = parse_run_config(
      R"({"dataset": {"name": "mnist"}, "lr_finder": {},
          "trainer": {"lr_scaling": "Sqrt", "lr_warmup_epochs": 2, "sync_batch_norm": true}})",
      "dp.json");
  EXPECT_EQ(p.lr_scaling, "sqrt");
  EXPECT_DOUBLE_EQ(p.lr_warmup_epochs, 2);
  EXPECT_TRUE(p.sync_batch_norm);
  expect_usage_error(
      [] {
        parse_run_config(
            R"({"dataset": {"name": "mnist"}, "lr_finder": {}, "trainer": {"lr_scaling": "cubic"}})",
            "dp.json");
      },
      {"trainer.lr_scaling", "cubic", "linear, sqrt, none"});
  // Deferred read-back and CUDA graphs (train/step_runner.h): automatic and on by default.
  EXPECT_EQ(d.trainer.sync_every, 0);
  EXPECT_TRUE(d.trainer.cuda_graph);
  const RunSpec g = parse_run_config(
      R"({"dataset": {"name": "mnist"}, "lr_finder": {},
          "trainer": {"sync_every": 25, "cuda_graph": false}})",
      "g.json");
  EXPECT_EQ(g.trainer.sync_every, 25);
  EXPECT_FALSE(g.trainer.cuda_graph);
  // The math (train/precision.h): fp32 unless asked; NCHW unless asked.
  EXPECT_EQ(d.precision, "fp32");
  EXPECT_FALSE(d.channels_last);
  EXPECT_TRUE(parse_run_config(R"({"dataset": {"name": "mnist"}, "lr_finder": {},
                                   "trainer": {"channels_last": true}})",
                               "l.json")
                  .channels_last);
  expect_usage_error(
      [] {
        parse_run_config(
            R"({"dataset": {"name": "mnist"}, "lr_finder": {}, "trainer": {"channels_last": "yes"}})",
            "l.json");
      },
      {"trainer.channels_last"});
  EXPECT_EQ(parse_run_config(R"({"dataset": {"name": "mnist"}, "lr_finder": {},
                                  "trainer": {"precision": "BF16"}})",
                             "p.json")
                .precision,
            "bf16");
  expect_usage_error(
      [] {
        parse_run_config(
            R"({"dataset": {"name": "mnist"}, "lr_finder": {}, "trainer": {"precision": "fp8"}})",
            "p.json");
      },
      {"trainer.precision", "fp8", "fp32, tf32, bf16, fp16"});
  expect_usage_error(
      [] {
        parse_run_config(
            R"({"dataset": {"name": "mnist"}, "lr_finder": {}, "trainer": {"sync_every": -3}})",
            "g.json");
      },
      {"trainer.sync_every", "-3"});
}

TEST(RunConfigTest, UnknownKeysAndBadValuesNameTheKey) {
  expect_usage_error([] { parse_run_config("{", "bad.json"); }, {"bad.json", "invalid JSON"});
  expect_usage_error([] { parse_run_config(R"({"dataset": {}})", "c.json"); },
                     {"c.json", "dataset.name", "required"});
  // A divergence threshold at or below 1 would stop the test at its first step that is not a new
  // best (and blame a non-finite loss); 0 turns the stop off. Both the range test's keys.
  for (const char* th : {"0.5", "1"}) {
    expect_usage_error(
        [&] {
          parse_run_config(
              std::string(R"({"dataset": {"name": "mnist"}, "lr_finder": {"diverge_th": )") + th +
                  "}}",
              "c");
        },
        {"lr_finder.diverge_th = ", "must be 0 (no divergence stop) or greater than 1"});
    expect_usage_error(
        [&] {
          parse_run_config(
              std::string("dataset: {name: mnist}\ntrainer: {callbacks: {LearningRateScheduler: "
                          "{lr_find: true, diverge_th: ") +
                  th + "}}}\n",
              "c.yml");
        },
        {"LearningRateScheduler.diverge_th = ", "greater than 1"});
  }
  EXPECT_EQ(
      parse_run_config(R"({"dataset": {"name": "mnist"}, "lr_finder": {"diverge_th": 0}})", "c")
          .finder.options.diverge_th,
      0);
  expect_usage_error(
      [] { parse_run_config(R"({"dataset": {"name": "mnist"}, "trainer": {"epohcs": 3}})", "c"); },
      {"trainer.epohcs", "is not a known key"});
  expect_usage_error([] { parse_run_config(R"({"datset": {"name": "mnist"}})", "c"); }, {"datset"});
  expect_usage_error(
      [] { parse_run_config(R"({"dataset": {"name": "mnist", "pad_to": -1}})", "c"); },
      {"dataset.pad_to", "must be >= 0"});
  expect_usage_error(
      [] { parse_run_config(R"({"dataset": {"name": "mnst"}, "lr_finder": {}})", "cfg.yml"); },
      {"cfg.yml: dataset.name", "mnst", "known: mnist"});
  expect_usage_error(
      [] {
        parse_run_config(
            R"({"dataset": {"name": "mnist", "split_ratio": {"val": 0.5, "test": 0.5}}, "lr_finder": {}})",
            "c");
      },
      {"c: dataset.split_ratio", "val + test = 1", "no image to train on"});
  // height / width are checked against the size the dataset's models are built for, up front.
  expect_usage_error(
      [] {
        parse_run_config(
            R"({"dataset": {"name": "mnist", "height": 32, "width": 32}, "lr_finder": {}})", "c");
      },
      {"c: dataset.height", "32 x 32", "mnist's images are 28 x 28"});
  EXPECT_EQ(
      parse_run_config(
          R"({"dataset": {"name": "mnist", "height": 28, "width": 28}, "lr_finder": {}})", "c")
          .expect_height,
      28);
  expect_usage_error(
      [] { parse_run_config(R"({"dataset": {"name": "mnist", "batch_size": 0}})", "c"); },
      {"dataset.batch_size", ">= 1"});
  expect_usage_error(
      [] { parse_run_config(R"({"dataset": {"name": "mnist", "batch_size": "8"}})", "c"); },
      {"dataset.batch_size", "integer"});
  expect_usage_error([] { parse_run_config(R"({"dataset": {"name": "mnist"}})", "c"); },
                     {"policy", "required"});
  expect_usage_error(
      [] {
        parse_run_config(R"({"dataset": {"name": "mnist"}, "lr_finder": {"mode": "cubic"}})", "c");
      },
      {"lr_finder.mode", "cubic"});
  expect_usage_error(
      [] { parse_run_config(R"({"dataset": {"name": "mnist"}, "optimizer": {"lr": -0.1}})", "c"); },
      {"trainer.optimizer.lr", "positive"});
  expect_usage_error(
      [] {
        parse_run_config(
            R"({"dataset": {"name": "mnist"}, "lr_finder": {}, "trainer": {"phases": [{"policy": {}, "frieze": []}]}})",
            "c");
      },
      {"trainer.phases[0].frieze"});
  // Settings that another one would silently override: both lengths of the range test, a run
  // length beside phases (which give their own), an epoch count whose step count would overflow.
  expect_usage_error(
      [] {
        parse_run_config(
            R"({"dataset": {"name": "mnist"}, "lr_finder": {"num_steps": 10, "num_epochs": 1}})",
            "c");
      },
      {"c: lr_finder.num_epochs", "lr_finder.num_steps both set"});
  expect_usage_error(
      [] {
        parse_run_config(
            R"({"dataset": {"name": "mnist"}, "trainer": {"max_epochs": 5, "phases": [{"epochs": 1, "policy": {"policy": "constant", "lr": 0.01}}]}})",
            "c");
      },
      {"c: trainer.max_epochs", "unused with trainer.phases"});
  expect_usage_error(
      [] {
        parse_run_config(
            R"({"dataset": {"name": "mnist"}, "policy": {"policy": "constant", "lr": 0.1}, "trainer": {"max_epochs": 1000000000000000}})",
            "c");
      },
      {"c: trainer.max_epochs", "more than 1000000"});
}

// best_lr's multipliers reach the policy as they were typed: 1e-7 is not "0.000000" (an error),
// 0.0000015 not 0.000002.
TEST(RunConfigTest, BestLrMultipliersKeepEveryDigit) {
  for (const double m : {1e-7, 0.0000015, 0.1, 1.0 / 3}) {
    BestLrOptions o;
    o.cycle = true;
    o.lr_min_multiplier = m;
    o.lr_max_multiplier = 3 * m;
    const json j = json::parse(resolve_policy_json(run_spec_from(o).policy_json, 1.0, 100));
    EXPECT_EQ(j["base_lr"].get<double>(), m);
    EXPECT_EQ(j["max_lr"].get<double>(), 3 * m);
  }
}

TEST(RunConfigTest, FinderPlaceholdersAndEpochCountsResolve) {
  const json j = json::parse(resolve_policy_json(
      R"({"policy": "triangular", "base_lr": "finder/10", "max_lr": "finder*2",
          "step_size_epochs": 2.5})",
      0.4, 100));
  EXPECT_DOUBLE_EQ(j["base_lr"].get<double>(), 0.04);
  EXPECT_DOUBLE_EQ(j["max_lr"].get<double>(), 0.8);
  EXPECT_EQ(j["step_size"].get<int64_t>(), 250);
  EXPECT_FALSE(j.contains("step_size_epochs"));
  const json k = json::parse(resolve_policy_json(
      R"({"policy": "sequence", "parts": [{"policy": "constant", "lr": "0.5*finder", "steps_epochs": 1},
                                          {"policy": "multistep", "lr": "finder", "milestones_epochs": [1, 2], "gamma": 0.1}]})",
      1.0, 10));
  EXPECT_EQ(k["parts"][0]["steps"].get<int64_t>(), 10);
  EXPECT_DOUBLE_EQ(k["parts"][0]["lr"].get<double>(), 0.5);
  EXPECT_EQ(k["parts"][1]["milestones"], json::parse("[10, 20]"));
  EXPECT_EQ(
      json::parse(resolve_policy_json(R"({"policy": "one_cycle", "max_lr": 1, "total_epochs": 3})",
                                      std::nullopt, 7))["total_steps"],
      21);
  expect_usage_error(
      [] { resolve_policy_json(R"({"policy": "constant", "lr": "finder"})", std::nullopt, 1); },
      {"lr", "range test"});
  expect_usage_error(
      [] { resolve_policy_json(R"({"policy": "constant", "lr": "finder*x"})", 1.0, 1); },
      {"lr", "finder*x"});
  expect_usage_error([] { resolve_policy_json("[1]", 1.0, 1); }, {"object"});
}

// Every committed example config parses, and its optimizer and policy build for its model.
TEST(RunConfigTest, CommittedExamplesAreValid) {
  const fs::path dir = source_root() / "configs";
  int seen = 0;
  for (const char* name : {"lr_finder.json", "clr_triangular.json", "one_cycle.json",
                           "sgdr_snapshot.json", "differential_lr.json"}) {
    SCOPED_TRACE(name);
    const RunSpec s = load_run_config((dir / name).string());
    const data::DatasetInfo& info = data::dataset_info(s.dataset);
    ModelOptions mo;
    mo.in_channels = info.channels;
    mo.height = info.height;
    mo.width = info.width;
    mo.num_classes = info.num_classes;
    auto model = make_model(s.model.empty() ? "lenet5" : s.model, mo);
    json oj = json::parse(s.optimizer_json);
    oj["lr"] = 0.1;
    auto opt = optim::make_optimizer(s.optimizer, model->named_parameters(), oj.dump());
    EXPECT_GE(opt->groups().size(), 1u);
    const std::string policy = resolve_policy_json(
        s.policy_json, s.finder.enabled ? std::optional<double>(0.1) : std::nullopt, 100);
    EXPECT_NO_THROW(schedulers::make_policy(policy)) << policy;
    for (const auto& ph : s.phases)
      for (const auto& g : ph.freeze) {
        bool found = false;
        for (const auto& [name, prefixes] : model->layer_groups()) found = found || name == g;
        EXPECT_TRUE(found) << g;
      }
    ++seen;
  }
  EXPECT_EQ(seen, 5);
}

}  // namespace
}  // namespace cyclone::train
