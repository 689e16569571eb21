// Issue "YAML configs in microDL's shape": one tree for YAML and JSON, microDL's callbacks,
// starting from weights, and the pieces fine-tuning phases are built of (stages, precompute).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/test_util.h"
#include "cyclone/core/autograd.h"
#include "cyclone/core/file_util.h"
#include "cyclone/data/synthetic.h"
#include "cyclone/layers/loss_ops.h"
#include "cyclone/models/registry.h"
#include "cyclone/schedulers/policy.h"
#include "cyclone/train/cli.h"
#include "cyclone/train/config_tree.h"
#include "cyclone/train/precompute.h"
#include "cyclone/train/run_config.h"
#include "cyclone/train/weights.h"

namespace cyclone::train {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

fs::path source_root() { return fs::path(__FILE__).parent_path().parent_path().parent_path(); }

template <class E = UsageError, class F>
void expect_error(F&& f, std::initializer_list<std::string> parts) {
  try {
    f();
    FAIL() << "no error";
  } catch (const E& e) {
    for (const auto& p : parts)
      EXPECT_NE(e.message().find(p), std::string::npos) << "'" << p << "' not in: " << e.message();
  }
}

RunSpec parse_yaml(const std::string& text) { return parse_run_config(text, "run.yml"); }

TEST(ConfigTree, YamlAndJsonTwinsGiveTheSameTree) {
  for (const char* stem : {"microdl_lr_finder", "microdl_clr"}) {
    SCOPED_TRACE(stem);
    const fs::path dir = source_root() / "configs";
    const std::string yml = (dir / (std::string(stem) + ".yml")).string();
    const std::string js = (dir / (std::string(stem) + ".json")).string();
    const std::string a = config_text_to_json(read_file(yml, 1 << 20), ConfigSyntax::kYaml, yml);
    const std::string b = config_text_to_json(read_file(js, 1 << 20), ConfigSyntax::kJson, js);
    EXPECT_EQ(a, b);
    const RunSpec sa = load_run_config(yml), sb = load_run_config(js);
    EXPECT_EQ(sa.policy_json, sb.policy_json);
    EXPECT_EQ(sa.log_dir, sb.log_dir);
    EXPECT_EQ(sa.finder.enabled, sb.finder.enabled);
  }
}

TEST(ConfigTree, YamlScalarsAreTypedAsPyYamlTypesThem) {
  const json j = json::parse(config_text_to_json(
      "a: yes\nb: False\nc: 1e-5\nd: '1e-5'\ne: ~\nf: 12\ng: '.inf'\nh: [1, two]\ni: 2.50\n",
      ConfigSyntax::kYaml, "t.yml"));
  EXPECT_EQ(j["a"], true);
  EXPECT_EQ(j["b"], false);
  EXPECT_DOUBLE_EQ(j["c"].get<double>(), 1e-5);
  EXPECT_EQ(j["d"], "1e-5");  // quoted: a string
  EXPECT_TRUE(j["e"].is_null());
  EXPECT_TRUE(j["f"].is_number_integer());
  EXPECT_EQ(j["g"], ".inf");
  expect_error([] { config_text_to_json("lr: .inf\n", ConfigSyntax::kYaml, "t.yml"); },
               {"t.yml:1", "lr", "finite"});
  EXPECT_EQ(j["h"][1], "two");
  EXPECT_DOUBLE_EQ(j["i"].get<double>(), 2.5);
}

TEST(ConfigTree, SyntaxErrorsNameTheFileAndLine) {
  expect_error([] { config_text_to_json("a: 1\nb: [1, 2\nc: 3\n", ConfigSyntax::kYaml, "r.yml"); },
               {"r.yml:", "invalid YAML"});
  expect_error([] { config_text_to_json("{\n\"a\": 1,\n}\n", ConfigSyntax::kJson, "r.json"); },
               {"r.json:3", "invalid JSON"});
  expect_error([] { config_text_to_json("a: 1\nb: 2\na: 3\n", ConfigSyntax::kYaml, "r.yml"); },
               {"r.yml:3", "a is given twice"});
  // A second document would be dropped unread (its typos unchecked): refused, as safe_load does.
  expect_error([] { config_text_to_json("a: 1\n---\nfoo: 1\n", ConfigSyntax::kYaml, "r.yml"); },
               {"r.yml", "2 YAML documents"});
  expect_error(
      [] { config_text_to_json("a: 1\n---\nb: 1\n---\nc: 1\n", ConfigSyntax::kYaml, "r.yml"); },
      {"r.yml", "3 YAML documents"});
  EXPECT_EQ(config_text_to_json("---\na: 1\n", ConfigSyntax::kYaml, "r.yml"), R"({"a":1})");
  EXPECT_EQ(config_text_to_json("a: 1\n...\n", ConfigSyntax::kYaml, "r.yml"), R"({"a":1})");
  EXPECT_EQ(config_text_to_json("", ConfigSyntax::kYaml, "r.yml"), "{}");
  EXPECT_EQ(config_syntax_of("x/run.yaml"), ConfigSyntax::kYaml);
  EXPECT_EQ(config_syntax_of("run.json"), ConfigSyntax::kJson);
}

// A token no YAML rule takes (a lone ',') was read as an empty config by yaml-cpp's Load and hung
// its LoadAll (a new empty document each call, the token never consumed; found by the fuzzer).
TEST(ConfigTree, AStrayTokenIsInvalidYamlNotAnEmptyConfigOrAHang) {
  expect_error([] { config_text_to_json("\n,\n", ConfigSyntax::kYaml, "r.yml"); },
               {"r.yml:2", "invalid YAML", "unexpected ','"});
  expect_error([] { config_text_to_json("a: 1\n---\n,\n", ConfigSyntax::kYaml, "r.yml"); },
               {"r.yml:3", "invalid YAML", "','"});
}

// 100000 levels of JSON overflowed the default 8 MiB stack (a crash) in the tree's recursion.
TEST(ConfigTree, DeepNestingIsAUsageErrorNotACrash) {
  const size_t n = 100000;
  expect_error(
      [&] {
        config_text_to_json("{\n\"x\": " + std::string(n, '[') + std::string(n, ']') + "}",
                            ConfigSyntax::kJson, "r.json");
      },
      {"r.json:2: nested deeper than 64 levels"});
  // Brackets in strings, escaped quotes included, are text.
  const std::string text = "{\"x\": \"\\\"" + std::string(100, '[') + "\"}";
  EXPECT_EQ(json::parse(config_text_to_json(text, ConfigSyntax::kJson, "r.json"))["x"],
            "\"" + std::string(100, '['));
  // yaml-cpp's own bound (500 levels) said "invalid YAML: bad file".
  expect_error(
      [&] {
        config_text_to_json("a: 1\nx: " + std::string(n, '[') + std::string(n, ']') + "\n",
                            ConfigSyntax::kYaml, "r.yml");
      },
      {"r.yml:2: nested deeper than 64 levels"});
}

// Aliases of aliases ("x1: &a1 [*a0, *a0]", ...) double the values per line once expanded: 30
// lines took gigabytes and over 30 s before an unknown-key error. Refused at the cap, quickly;
// ordinary aliases (a shared block used twice) still read as their copies.
TEST(ConfigTree, AnAliasBombIsRefusedNotExpanded) {
  std::string bomb = "x0: &a0 [1, 2]\n";
  for (int i = 1; i <= 40; ++i)
    bomb += "x" + std::to_string(i) + ": &a" + std::to_string(i) + " [*a" + std::to_string(i - 1) +
            ", *a" + std::to_string(i - 1) + "]\n";
  const auto start = std::chrono::steady_clock::now();
  expect_error([&] { config_text_to_json(bomb, ConfigSyntax::kYaml, "b.yml"); },
               {"b.yml: more than 100000 values once its aliases are expanded"});
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  const json t = json::parse(config_text_to_json(
      "base: &p {policy: one_cycle, max_lr: 0.1}\nphases: [{policy: *p}, {policy: *p}]\n",
      ConfigSyntax::kYaml, "ok.yml"));
  EXPECT_EQ(t["phases"][0]["policy"], t["base"]);
  EXPECT_EQ(t["phases"][1]["policy"]["max_lr"], 0.1);
}

TEST(RunConfigMicroDL, KeysMeanWhatMicroDLMeans) {
  const RunSpec s = parse_yaml(R"(
dataset:
  name: fashion_mnist
  random_seed: 7
  split_ratio: {train: 0.7, val: 0.2, test: 0.1}
  height: 28
  width: 28
network:
  class: lenet5
  activation: {type: tanh}
  num_filters_per_block: [4, 8]
  batch_norm: false
trainer:
  model_dir: /tmp/m
  batch_size: 32
  max_epochs: 3
  patience: 2
  loss: categorical_crossentropy
  metrics: [acc, loss]
  workers: 1
  resume: true
  optimizer: {name: Nadam, lr: 0.002}
  callbacks:
    EarlyStopping: {monitor: val_accuracy, mode: max}
    ModelCheckpoint: {monitor: val_loss, mode: min, save_best_only: true, verbose: true}
    TensorBoard:
)");
  EXPECT_EQ(s.seed, 7u);
  EXPECT_DOUBLE_EQ(s.train_fraction, 0.7);
  EXPECT_DOUBLE_EQ(s.validation_fraction, 0.2);
  EXPECT_DOUBLE_EQ(s.test_fraction, 0.1);
  EXPECT_EQ(s.expect_height, 28);
  EXPECT_EQ(s.model, "lenet5");
  EXPECT_EQ(s.activation, "tanh");
  EXPECT_EQ(s.filters, (std::vector<int64_t>{4, 8}));
  EXPECT_EQ(s.batch_norm, 0);
  EXPECT_EQ(s.log_dir, "/tmp/m");
  EXPECT_EQ(s.batch_size, 32);
  EXPECT_EQ(s.trainer.epochs, 3);
  EXPECT_EQ(s.trainer.early_stop_patience, 2);
  EXPECT_EQ(s.trainer.early_stop_monitor, "val_accuracy");
  EXPECT_EQ(s.trainer.early_stop_mode, "max");
  EXPECT_EQ(s.metrics, (std::vector<std::string>{"accuracy", "loss"}));
  EXPECT_EQ(s.workers, 1);
  EXPECT_EQ(s.resume, "/tmp/m/checkpoints");
  EXPECT_EQ(s.optimizer, "nadam");
  EXPECT_TRUE(s.model_checkpoint.enabled);
  EXPECT_TRUE(s.model_checkpoint.save_best_only);
  EXPECT_TRUE(s.trainer.tensorboard);
  EXPECT_TRUE(s.training_log);
  // optimizer.lr alone is a constant rate, as in Keras.
  EXPECT_EQ(json::parse(s.policy_json), json::parse(R"({"policy": "constant", "lr": 0.002})"));
}

TEST(RunConfigMicroDL, AliasesAreTheSameSettingAndBothSpellingsAreAnError) {
  const RunSpec a = parse_yaml(
      "dataset: {name: mnist, batch_size: 16, validation_fraction: 0.1}\nmodel: {name: mlp}\n"
      "trainer: {epochs: 2, optimizer: {lr: 0.1}}\nlog_dir: L\nseed: 3\n");
  const RunSpec b = parse_yaml(
      "dataset: {name: mnist, split_ratio: {val: 0.1}, random_seed: 3}\nnetwork: {class: mlp}\n"
      "trainer: {batch_size: 16, max_epochs: 2, model_dir: L, optimizer: {lr: 0.1}}\n");
  EXPECT_EQ(a.batch_size, b.batch_size);
  EXPECT_EQ(a.model, b.model);
  EXPECT_EQ(a.trainer.epochs, b.trainer.epochs);
  EXPECT_EQ(a.log_dir, b.log_dir);
  EXPECT_EQ(a.seed, b.seed);
  EXPECT_DOUBLE_EQ(a.validation_fraction, b.validation_fraction);
  expect_error([] { parse_yaml("dataset: {name: mnist}\ntrainer: {epochs: 2, max_epochs: 3}\n"); },
               {"run.yml", "trainer.epochs and trainer.max_epochs are the same setting"});
  EXPECT_GE(config_aliases().size(), 10u);
}

TEST(RunConfigMicroDL, ErrorsNameTheKeyPath) {
  const std::string base = "dataset: {name: mnist}\n";
  expect_error(
      [&] {
        parse_yaml(base +
                   "trainer: {callbacks: {LearningRateScheduler: "
                   "{lr_find: false, max_lr: fast}}}\n");
      },
      {"run.yml", "trainer.callbacks.LearningRateScheduler.max_lr", "number"});
  expect_error([&] { parse_yaml(base + "trainer: {callbacks: {Lerning: {}}}\n"); },
               {"trainer.callbacks.Lerning", "not a known key"});
  expect_error([&] { parse_yaml(base + "trainer: {max_epochs: two}\n"); },
               {"trainer.max_epochs", "integer"});
  expect_error([&] { parse_yaml(base + "trainer: {loss: mae_loss, optimizer: {lr: 1}}\n"); },
               {"trainer.loss", "mae_loss"});
  expect_error(
      [&] {
        parse_yaml(
            "dataset: {name: mnist, split_ratio: {train: 0.8, val: 0.3}}\n"
            "trainer: {optimizer: {lr: 1}}\n");
      },
      {"dataset.split_ratio", "<= 1"});
  expect_error(
      [&] {
        parse_yaml(base +
                   "trainer: {callbacks: {EarlyStopping: {monitor: val_f1}}, "
                   "optimizer: {lr: 1}}\n");
      },
      {"trainer.callbacks.EarlyStopping", "val_f1"});
  expect_error(
      [&] {
        parse_yaml(base +
                   "network: {class: lenet5, filters: 3}\n"
                   "trainer: {optimizer: {lr: 1}}\n");
      },
      {"network.filters", "not a known key"});
  expect_error(
      [&] {
        parse_yaml(base +
                   "policy: {policy: constant, lr: 0.1}\ntrainer: "
                   "{callbacks: {LearningRateScheduler: {lr_find: true}}}\n");
      },
      {"policy", "LearningRateScheduler"});
  expect_error<Error>([] { load_run_config("/nonexistent/run.yml"); }, {"/nonexistent/run.yml"});
}

TEST(RunConfigMicroDL, MonitorsReadTheEpochAsKerasNamesThem) {
  EpochStats es;
  es.train_loss = 0.7;
  es.train_accuracy = 0.6;
  EXPECT_TRUE(std::isnan(monitored_value(es, "val_loss")));  // no eval loader
  es.eval = EvalResult{0.5, 0.8, -1, 100, 0};
  EXPECT_DOUBLE_EQ(monitored_value(es, "val_loss"), 0.5);
  EXPECT_DOUBLE_EQ(monitored_value(es, "val_acc"), 0.8);
  EXPECT_DOUBLE_EQ(monitored_value(es, "loss"), 0.7);
  EXPECT_DOUBLE_EQ(monitored_value(es, "accuracy"), 0.6);
  EXPECT_FALSE(monitor_maximizes("val_loss", "auto"));
  EXPECT_TRUE(monitor_maximizes("val_accuracy", "auto"));
  EXPECT_TRUE(monitor_maximizes("val_loss", "max"));
  expect_error<Error>([&] { monitored_value(es, "val_f1"); }, {"val_f1", "val_loss"});
  expect_error<Error>([] { monitor_maximizes("loss", "up"); }, {"mode 'up'"});
}

TEST(RunConfigMicroDL, UnknownNetworkClassListsTheClasses) {
  RunSpec s = parse_yaml(
      "dataset: {name: mnist}\nnetwork: {class: UNet2D}\ntrainer: {optimizer: {lr: 0.1}}\n");
  s.summary_only = true;
  expect_error([&] { run_experiment(s); }, {"run.yml: network.class UNet2D", "lenet5", "wrn-D-K"});
}

TEST(RunConfigMicroDL, LrFindIsMicroDLsLinearRangeTestThatStops) {
  const RunSpec s = parse_yaml(
      "dataset: {name: mnist}\ntrainer: {max_epochs: 2, callbacks: {LearningRateScheduler: "
      "{lr_find: true, base_lr: 0.0001, max_lr: 0.1, fig_fname: lr.svg}}}\n");
  EXPECT_TRUE(s.finder.enabled);
  EXPECT_TRUE(s.finder_only);
  EXPECT_FALSE(s.finder.options.exponential);
  EXPECT_DOUBLE_EQ(s.finder.options.start_lr, 1e-4);
  EXPECT_DOUBLE_EQ(s.finder.options.end_lr, 0.1);
  EXPECT_DOUBLE_EQ(s.finder.epochs, 2);  // the trainer's max_epochs unless the callback says
  EXPECT_EQ(s.finder_plot, "lr.svg");
}

// Keras' metric names; top-5 is scored for datasets of more than 10 classes, so asking for it on
// fewer is refused (it was a column of NaN in history.csv, said nowhere).
TEST(RunConfigMicroDL, Top5IsForDatasetsOfMoreThanTenClasses) {
  EXPECT_EQ(parse_yaml("dataset: {name: cifar100}\ntrainer: {optimizer: {lr: 0.1}, metrics: "
                       "[top_k_categorical_accuracy, "
                       "acc]}\n")
                .metrics,
            (std::vector<std::string>{"top5", "accuracy"}));
  expect_error([] { parse_yaml("dataset: {name: fashion_mnist}\ntrainer: {metrics: [top5]}\n"); },
               {"trainer.metrics", "asks for top5, but fashion_mnist has 10 classes", "cifar100"});
}

// The plot is SVG, in model_dir beside the run's own files: another extension, or the name of a
// file the run writes there (which the plot would replace, or which would replace it), is refused
// when the config is read, naming the key. The same for a phase's folder.
TEST(RunConfigMicroDL, NamesThatWouldClashWithTheRunsOwnFilesAreRefused) {
  auto finder = [](const std::string& fig) {
    return "dataset: {name: mnist}\ntrainer: {callbacks: {LearningRateScheduler: {lr_find: true, "
           "fig_fname: " +
           fig + "}}}\n";
  };
  expect_error([&] { parse_yaml(finder("lr.png")); },
               {"LearningRateScheduler.fig_fname = \"lr.png\"", "SVG", ".svg"});
  for (const char* own : {"schedule.svg", "./lr_finder.csv", "training.log"})
    expect_error([&] { parse_yaml(finder(own)); }, {"LearningRateScheduler.fig_fname", own});
  expect_error([&] { parse_yaml(finder("plots/..//schedule.svg")); },
               {"LearningRateScheduler.fig_fname", "a file the run itself writes"});
  for (const char* ok : {"lr_finder.svg", "lr_finder_result.svg", "plots/summary.svg"})
    EXPECT_EQ(parse_yaml(finder(ok)).finder_plot, ok);
  for (const char* own : {"summary.json", "training.log", "checkpoints", "tensorboard_logs"})
    expect_error(
        [&] {
          parse_yaml(std::string("dataset: {name: mnist}\ntrainer: {phases: [{name: head, epochs: "
                                 "1, policy: {policy: constant, lr: 0.1}}, {name: ") +
                     own + ", epochs: 1, policy: {policy: constant, lr: 0.1}}]}\n");
        },
        {"trainer.phases[1].name = \"", own, "the run itself writes"});
}

// microDL's CyclicLearning.clr(), written out independently: step size in epochs, cycle counted
// from 1, amplitude scaled by gamma ** cycle or gamma ** iterations.
double microdl_clr(double it, double base, double max, double step_epochs, int64_t steps_per_epoch,
                   double gamma, bool by_cycle) {
  const double step = step_epochs * steps_per_epoch;
  const double cycle = std::floor(1 + it / (2 * step));
  const double x = std::fabs(it / step - 2 * cycle + 1);
  const double local = (max - base) * std::max(0.0, 1 - x);
  return base + local * std::pow(gamma, by_cycle ? cycle : it);
}

TEST(RunConfigMicroDL, CyclicScaleModesMatchMicroDLsFormula) {
  for (const char* mode : {"cycle", "iterations"}) {
    SCOPED_TRACE(mode);
    const RunSpec s = parse_yaml(
        std::string(
            "dataset: {name: mnist}\ntrainer: {callbacks: {LearningRateScheduler: {lr_find: false, "
            "base_lr: 0.01, max_lr: 0.1, step_size: 2, gamma: 0.9, scale_mode: ") +
        mode + "}}}\n");
    const int64_t spe = 5;
    auto policy = schedulers::make_policy(resolve_policy_json(s.policy_json, std::nullopt, spe));
    for (int64_t t = 0; t < 60; ++t)
      EXPECT_NEAR(policy->lr(t),
                  microdl_clr(t, 0.01, 0.1, 2, spe, 0.9, std::string(mode) == "cycle"), 1e-12)
          << "step " << t;
  }
}

TEST(RunConfigMicroDL, PhasesReadGroupsPoliciesAndPrecompute) {
  const RunSpec s =
      parse_run_config(read_file((source_root() / "configs/finetune_recipe.yml").string(), 1 << 20),
                       "finetune_recipe.yml");
  ASSERT_EQ(s.phases.size(), 5u);
  EXPECT_TRUE(s.phases[0].lr_find);
  EXPECT_EQ(s.phases[0].finder.suggestion, "min_loss_div10");  // from lr_finder
  EXPECT_TRUE(s.phases[1].precompute);
  EXPECT_EQ(s.phases[1].freeze, (std::vector<std::string>{"conv1", "conv2"}));
  EXPECT_EQ(s.phases[2].augment, 1);
  EXPECT_EQ(s.phases[4].epochs, 7);
  ASSERT_EQ(s.phases[4].lr_mult.size(), 3u);
  EXPECT_TRUE(s.new_head);
  expect_error(
      [] {
        parse_yaml(
            "dataset: {name: mnist}\ntrainer: {phases: [{lr_find: true, "
            "epochs: 2}]}\n");
      },
      {"trainer.phases[0].epochs", "lr_find"});
}

// A phase naming a layer group the model lacks is refused before the data is read: the data
// folder here is a file, which the load would refuse (before, that error came first, and with a
// dataset to download, after the download).
TEST(RunConfigMicroDL, PhaseGroupTyposAreRefusedBeforeTheData) {
  const cyclone::testing::TempDir dir;
  RunSpec s = parse_yaml(
      "dataset: {name: mnist}\ntrainer: {phases: [{name: head, epochs: 1, freeze: [conv1], "
      "policy: {policy: constant, lr: 0.01}}, {name: all, epochs: 1, lr_mult: {conv1: 0.1, "
      "convv2: 0.3}, policy: {policy: constant, lr: 0.01}}]}\n");
  s.log_dir = (dir.path() / "logs").string();
  s.data_dir = (dir.path() / "not_a_folder").string();
  std::ofstream(s.data_dir) << "x";
  s.device = "cpu";
  expect_error([&] { run_experiment(s); },
               {"trainer.phases[1].lr_mult", "'convv2'", "its groups: conv1, conv2"});
}

data::Dataset synthetic_mnist(int64_t n) {
  return cyclone::testing::synthetic_images(n, 28, 10, 0);
}

ModelOptions lenet_options(uint64_t seed, int classes = 10) {
  return cyclone::testing::model_options(28, classes, seed);
}

Tensor random_images(int64_t n, uint64_t seed) {
  Tensor x = Tensor::empty({n, 1, 28, 28}, DType::kFloat32, Device::cpu());
  float* p = x.data<float>();
  uint64_t s = seed;
  for (int64_t i = 0; i < x.numel(); ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    p[i] = static_cast<float>((s >> 40) % 1000) / 500.f - 1.f;
  }
  return x;
}

TEST(Stages, RunningInStagesIsTheWholeForward) {
  for (const char* name : {"lenet5", "resnet8", "wrn-10-1", "mlp-16"}) {
    SCOPED_TRACE(name);
    auto m = make_model(name, lenet_options(3));
    m->eval();
    const Tensor x = random_images(3, 5);
    const Tensor whole = (*m)(x);
    const size_t n = m->stages().size();
    ASSERT_GE(n, 2u);
    for (size_t cut = 1; cut < n; ++cut) {
      StageSlice body(*m, 0, cut), head(*m, cut, n);
      const Tensor y = head(body(x));
      ASSERT_EQ(y.shape(), whole.shape());
      for (int64_t i = 0; i < y.numel(); ++i)
        ASSERT_EQ(y.data<float>()[i], whole.data<float>()[i]) << "cut " << cut;
    }
  }
}

// A head in bfloat16 (set_compute_dtype) fed float32 features, as the precompute path feeds it:
// the first residual block adds a float32 shortcut to a bfloat16 branch (promoted to float32).
TEST(Stages, Bfloat16HeadTakesFloat32Features) {
  for (const char* name : {"resnet8", "wrn-10-1"}) {
    SCOPED_TRACE(name);
    auto m = make_model(name, lenet_options(3));
    m->eval();
    m->set_compute_dtype(DType::kBFloat16);
    const Tensor x = random_images(3, 5);
    const Tensor whole = (*m)(x);
    StageSlice body(*m, 0, 1), head(*m, 1, m->stages().size());
    const Tensor features = cast(body(x), DType::kFloat32);
    const Tensor y = head(features);
    ASSERT_EQ(y.shape(), whole.shape());
    EXPECT_LT(cyclone::testing::relative_error(cyclone::testing::values(y),
                                               cyclone::testing::values(whole)),
              0.05);
  }
}

// The head's gradients from cached body outputs equal those from running the frozen body.
TEST(Precompute, GivesTheSameHeadGradientsAsRunningTheFrozenBody) {
  const data::Dataset d = synthetic_mnist(48);
  auto m = make_model("lenet5", lenet_options(11));
  for (auto& [n, t] : m->named_parameters())
    if (n.rfind("conv", 0) == 0) t.set_requires_grad(false);
  data::LoaderOptions lo;
  lo.batch_size = 16;
  lo.shuffle = false;
  lo.workers = 0;
  StageSlice body(*m, 0, 2), head(*m, 2, m->stages().size());
  const data::Dataset f = precompute_features(body, d, lo);
  ASSERT_EQ(f.images.shape(), Shape({48, 16, 5, 5}));
  data::LoaderOptions fo = lo;
  fo.mean.clear();
  fo.std.clear();
  data::DataLoader images(d, lo), feats(f, fo);
  data::Batch bi, bf;
  ASSERT_TRUE(images.next(bi));
  ASSERT_TRUE(feats.next(bf));
  m->train();
  body.eval();  // frozen layers run in eval mode, precomputed or not
  auto grads = [&] {
    std::vector<std::vector<float>> g;
    for (auto& [n, t] : m->named_parameters()) {
      if (!t.requires_grad()) {
        EXPECT_FALSE(t.grad().defined()) << n;
        continue;
      }
      const Tensor gr = t.grad();
      g.emplace_back(gr.data<float>(), gr.data<float>() + gr.numel());
      t.zero_grad(/*set_to_none=*/true);
    }
    return g;
  };
  cross_entropy(head(bf.images), bf.labels).backward();
  const auto from_cache = grads();
  cross_entropy((*m)(bi.images), bi.labels).backward();
  const auto from_images = grads();
  ASSERT_EQ(from_cache.size(), 6u);  // fc1, fc2, fc3 weights and biases
  ASSERT_EQ(from_cache.size(), from_images.size());
  for (size_t k = 0; k < from_cache.size(); ++k)
    for (size_t i = 0; i < from_cache[k].size(); ++i)
      ASSERT_NEAR(from_cache[k][i], from_images[k][i], 1e-6 + 1e-5 * std::fabs(from_images[k][i]));
}

// The training loader's options are for the features' later use: with shuffle, augmentation and
// drop_last set (data-parallel runs set drop_last when the last global batch would leave a rank
// empty) every image is still computed, in order, unaugmented: row i is the body's output for
// image i, the last partial batch included.
TEST(Precompute, ComputesEveryImageWhateverTheTrainingLoaderDrops) {
  const data::Dataset d = synthetic_mnist(37);  // 16 + 16 + a partial batch of 5
  auto m = make_model("lenet5", lenet_options(11));
  StageSlice body(*m, 0, 2);
  data::LoaderOptions lo;
  lo.batch_size = 16;
  lo.workers = 0;
  lo.shuffle = true;
  lo.drop_last = true;
  lo.augment.flip = true;
  lo.augment.cutout = 3;
  const data::Dataset f = precompute_features(body, d, lo);
  ASSERT_EQ(f.images.shape(), Shape({37, 16, 5, 5}));
  EXPECT_EQ(f.labels.to_vector<int32_t>(), d.labels.to_vector<int32_t>());
  body.eval();
  autograd::NoGradGuard no_grad;
  for (int64_t first : {0, 32}) {  // a full batch and the partial last one
    const int64_t end = std::min<int64_t>(first + 16, 37);
    data::LoaderOptions plain;
    plain.batch_size = 37;
    plain.shuffle = false;
    plain.workers = 0;
    data::DataLoader all(d, plain);
    data::Batch b;
    ASSERT_TRUE(all.next(b));
    const Tensor want = body(b.images.slice(first, end));
    EXPECT_EQ(f.images.slice(first, end).to_vector<float>(), want.to_vector<float>())
        << "rows " << first << ".." << end;
  }
}

// Features kept in GPU memory batch exactly as the same features streamed from host memory.
TEST(PrecomputeCuda, ResidentFeaturesBatchLikeHostOnes) {
  const Device gpu = Device::cuda(0);
  CYCLONE_SKIP_IF_UNAVAILABLE(gpu);
  const data::Dataset d = synthetic_mnist(77);
  auto m = make_model("lenet5", lenet_options(11));
  data::LoaderOptions lo;
  lo.batch_size = 16;
  lo.workers = 0;
  StageSlice body(*m, 0, 2);
  data::Dataset host = precompute_features(body, d, lo);
  data::Dataset dev = host;
  ASSERT_EQ(keep_features_on_device(dev, gpu), "GPU memory");
  data::LoaderOptions fo;
  fo.batch_size = 16;
  fo.seed = 5;
  fo.device = gpu;
  data::DataLoader a(host, fo), b(dev, fo);
  for (int64_t epoch : {0, 1}) {
    a.start_epoch(epoch);
    b.start_epoch(epoch);
    data::Batch x, y;
    int batches = 0;
    while (a.next(x)) {
      ASSERT_TRUE(b.next(y));
      ASSERT_EQ(x.images.shape(), y.images.shape());
      EXPECT_EQ(x.images.to(Device::cpu()).to_vector<float>(),
                y.images.to(Device::cpu()).to_vector<float>());
      EXPECT_EQ(x.labels.to(Device::cpu()).to_vector<int32_t>(),
                y.labels.to(Device::cpu()).to_vector<int32_t>());
      ++batches;
    }
    EXPECT_FALSE(b.next(y));
    EXPECT_EQ(batches, 5);
  }
}

TEST(Weights, ShapeMismatchFailsUnlessPartialWhichListsTheSkipped) {
  cyclone::testing::TempDir dir;
  auto ten = make_model("lenet5", lenet_options(1, 10));
  ten->save(dir.file("ten.safetensors"));
  auto five = make_model("lenet5", lenet_options(2, 5));
  expect_error<Error>([&] { load_weights(*five, dir.file("ten.safetensors"), false); },
                      {"ten.safetensors", "fc3.weight", "--partial"});
  const Tensor before = five->named_parameters().back().second;  // fc3.bias
  const float b0 = before.data<float>()[0];
  const WeightsReport r = load_weights(*five, dir.file("ten.safetensors"), true);
  EXPECT_EQ(r.loaded.size(), 8u);
  ASSERT_EQ(r.mismatched.size(), 2u);
  EXPECT_NE(r.summary().find("fc3.weight"), std::string::npos) << r.summary();
  EXPECT_EQ(five->named_parameters().back().second.data<float>()[0], b0);  // skipped: as built
  EXPECT_EQ(five->named_parameters()[0].second.data<float>()[0],
            ten->named_parameters()[0].second.data<float>()[0]);
  expect_error<Error>([&] { load_weights(*five, dir.file("none.safetensors"), true); },
                      {"none.safetensors", "no such weights file"});
}

// A file written by the Python safetensors package (numpy, float64 as PyTorch users sometimes
// save) with our names loads into a fresh model and gives the same logits.
TEST(Weights, FileWrittenByPythonSafetensorsGivesTheSameLogits) {
  cyclone::testing::TempDir dir;
  auto m = make_model("lenet5", lenet_options(4));
  m->eval();
  m->save(dir.file("ours.safetensors"));
  const std::string cmd =
      "python3 -c \"import sys; from safetensors.numpy import load_file, save_file; "
      "t = load_file(sys.argv[1]); "
      "save_file({k: v.astype('float64') for k, v in t.items()}, sys.argv[2])\" " +
      dir.file("ours.safetensors") + " " + dir.file("py.safetensors");
  ASSERT_EQ(std::system(cmd.c_str()), 0)
      << "python3 with the safetensors package is needed (scripts/install_deps.sh installs it)";
  auto fresh = make_model("lenet5", lenet_options(99));
  fresh->eval();
  const WeightsReport r = load_weights(*fresh, dir.file("py.safetensors"), false);
  EXPECT_EQ(r.loaded.size(), 10u);
  const Tensor x = random_images(4, 8);
  const Tensor a = (*m)(x), b = (*fresh)(x);
  for (int64_t i = 0; i < a.numel(); ++i) ASSERT_EQ(a.data<float>()[i], b.data<float>()[i]);
}

}  // namespace
}  // namespace cyclone::train
