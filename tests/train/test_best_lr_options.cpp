// ./bin/best_lr's flags: the Keras demo's names and defaults, both syntaxes of every flag, and a
// message naming the flag for every rejected value.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cyclone/train/best_lr_options.h"
#include "cyclone/train/run.h"

namespace cyclone::train {
namespace {

BestLrOptions parse(const std::vector<std::string>& args) {
  std::vector<std::string> strings = {"best_lr"};
  strings.insert(strings.end(), args.begin(), args.end());
  std::vector<const char*> argv;
  for (const auto& s : strings) argv.push_back(s.c_str());
  return parse_best_lr_options(static_cast<int>(argv.size()), argv.data());
}

std::string parse_error(const std::vector<std::string>& args) {
  try {
    parse(args);
  } catch (const UsageError& e) {
    EXPECT_EQ(e.message().find('\n'), std::string::npos) << e.message();
    return e.message();
  }
  ADD_FAILURE() << "expected a UsageError";
  return "";
}

TEST(BestLrOptionsTest, DefaultsAreTheKerasDemos) {
  const BestLrOptions o = parse({});
  EXPECT_EQ(o.dataset, "mnist");
  EXPECT_EQ(o.kernel_initializer, "he_normal");
  EXPECT_EQ(o.activation, "relu");
  EXPECT_EQ(o.weight_decay, 0.0005);
  EXPECT_EQ(o.optimizer, "sgd");
  EXPECT_EQ(o.momentum, 0.9);
  EXPECT_EQ(o.batch_size, 32);
  EXPECT_EQ(o.num_epochs, 55);
  EXPECT_EQ(o.num_learning_batches, 4000);
  EXPECT_EQ(o.lr_min, 1e-4);
  EXPECT_EQ(o.lr_max, 10);
  EXPECT_EQ(o.lr_max_multiplier, 1);
  EXPECT_EQ(o.lr_min_multiplier, 0.1);
  EXPECT_FALSE(o.cycle);
  EXPECT_FALSE(o.skip_test.has_value());
  EXPECT_FALSE(o.no_plots);
  EXPECT_FALSE(o.save_model);
  EXPECT_EQ(o.log_dir, "./logs");
}

TEST(BestLrOptionsTest, AddedDefaults) {
  const BestLrOptions o = parse({});
  EXPECT_EQ(o.model, "");
  EXPECT_EQ(o.data_dir, "");
  EXPECT_EQ(o.device, "auto");
  EXPECT_EQ(o.seed, 0u);
  EXPECT_EQ(o.policy, "triangular");
  EXPECT_EQ(o.step_size_epochs, 4);
  EXPECT_EQ(o.gamma, 0.99994);
  EXPECT_EQ(o.lr_finder_mode, "exponential");
  EXPECT_EQ(o.lr_finder_val_every, 0);
  EXPECT_EQ(o.lr_finder_val_batches, 8);
  EXPECT_EQ(o.lr_finder_repeats, 1);
  EXPECT_EQ(o.diverge_th, 4);
  EXPECT_EQ(o.smooth_beta, 0.98);
  EXPECT_EQ(o.suggestion, "min_loss");
  EXPECT_TRUE(o.momentum_test.empty());
  EXPECT_TRUE(o.wd_test.empty());
  EXPECT_EQ(o.validation_fraction, 0);
  EXPECT_EQ(o.checkpoint_every, 0);
  EXPECT_EQ(o.resume, "");
  EXPECT_EQ(o.early_stop_patience, 0);
  EXPECT_EQ(o.clip_grad_norm, 0);
  EXPECT_EQ(o.workers, -1);
  EXPECT_EQ(o.limit_train_batches, 0);
  EXPECT_EQ(o.limit_eval_batches, 0);
  EXPECT_FALSE(o.summary);
  EXPECT_FALSE(o.help);
}

// One non-default value per flag that takes one, and how to read it back.
struct ValueCase {
  std::string flag;
  std::string value;
  std::function<bool(const BestLrOptions&)> holds;
};

std::vector<ValueCase> value_cases() {
  using O = const BestLrOptions&;
  return {
      {"dataset", "cifar10", [](O o) { return o.dataset == "cifar10"; }},
      {"kernel_initializer", "glorot_uniform",
       [](O o) { return o.kernel_initializer == "glorot_uniform"; }},
      {"activation", "tanh", [](O o) { return o.activation == "tanh"; }},
      {"weight_decay", "0.001", [](O o) { return o.weight_decay == 0.001; }},
      {"optimizer", "adam", [](O o) { return o.optimizer == "adam"; }},
      {"momentum", "0.95", [](O o) { return o.momentum == 0.95; }},
      {"batch_size", "128", [](O o) { return o.batch_size == 128; }},
      {"num_epochs", "3", [](O o) { return o.num_epochs == 3; }},
      {"num_learning_batches", "500", [](O o) { return o.num_learning_batches == 500; }},
      {"lr_min", "1e-6", [](O o) { return o.lr_min == 1e-6; }},
      {"lr_max", "3", [](O o) { return o.lr_max == 3; }},
      {"lr_max_multiplier", "0.5", [](O o) { return o.lr_max_multiplier == 0.5; }},
      {"lr_min_multiplier", "0.05", [](O o) { return o.lr_min_multiplier == 0.05; }},
      {"skip_test", "0.08", [](O o) { return o.skip_test == 0.08; }},
      {"log_dir", "/tmp/run 1", [](O o) { return o.log_dir == "/tmp/run 1"; }},
      {"model", "resnet20", [](O o) { return o.model == "resnet20"; }},
      {"data_dir", "/data", [](O o) { return o.data_dir == "/data"; }},
      {"device", "cuda:1", [](O o) { return o.device == "cuda:1"; }},
      {"seed", "12345678901234", [](O o) { return o.seed == 12345678901234u; }},
      {"pad_to", "32", [](O o) { return o.pad_to == 32; }},
      {"policy", "one_cycle", [](O o) { return o.policy == "one_cycle"; }},
      {"step_size_epochs", "2.5", [](O o) { return o.step_size_epochs == 2.5; }},
      {"gamma", "1", [](O o) { return o.gamma == 1; }},
      {"lr_finder_mode", "linear", [](O o) { return o.lr_finder_mode == "linear"; }},
      {"lr_finder_val_every", "10", [](O o) { return o.lr_finder_val_every == 10; }},
      {"lr_finder_val_batches", "2", [](O o) { return o.lr_finder_val_batches == 2; }},
      {"lr_finder_repeats", "3", [](O o) { return o.lr_finder_repeats == 3; }},
      {"diverge_th", "5", [](O o) { return o.diverge_th == 5; }},
      {"smooth_beta", "0", [](O o) { return o.smooth_beta == 0; }},
      {"suggestion", "valley", [](O o) { return o.suggestion == "valley"; }},
      {"momentum_test", "0.85,0.9,0.95",
       [](O o) {
         return o.momentum_test == std::vector<double>{0.85, 0.9, 0.95};
       }},
      {"wd_test", "0,1e-4,1e-3",
       [](O o) {
         return o.wd_test == std::vector<double>{0, 1e-4, 1e-3};
       }},
      {"validation_fraction", "0.1", [](O o) { return o.validation_fraction == 0.1; }},
      {"checkpoint_every", "5", [](O o) { return o.checkpoint_every == 5; }},
      {"resume", "./logs/ckpt", [](O o) { return o.resume == "./logs/ckpt"; }},
      {"early_stop_patience", "7", [](O o) { return o.early_stop_patience == 7; }},
      {"clip_grad_norm", "1.5", [](O o) { return o.clip_grad_norm == 1.5; }},
      {"workers", "4", [](O o) { return o.workers == 4; }},
      {"limit_train_batches", "20", [](O o) { return o.limit_train_batches == 20; }},
      {"limit_eval_batches", "2", [](O o) { return o.limit_eval_batches == 2; }},
      {"manifest", "m.json", [](O o) { return o.manifest == "m.json"; }},
      {"lr_scaling", "sqrt", [](O o) { return o.lr_scaling == "sqrt"; }},
      {"lr_warmup_epochs", "2.5", [](O o) { return o.lr_warmup_epochs == 2.5; }},
      {"sync_every", "10", [](O o) { return o.sync_every == 10; }},
      {"precision", "bf16", [](O o) { return o.precision == "bf16"; }},
      {"augment", "off", [](O o) { return o.augment == "off"; }},
  };
}

TEST(BestLrOptionsTest, EveryValueFlagInBothSyntaxes) {
  for (const auto& c : value_cases()) {
    SCOPED_TRACE("--" + c.flag + " " + c.value);
    // --cycle: the policy's flags are refused without it (IgnoredFlagsAreRefused), --gamma with
    // any policy but exp_range; a held-out loss needs a validation split.
    const std::string also = c.flag == "lr_finder_val_every" ? "--validation_fraction=0.1"
                             : c.flag == "gamma"             ? "--policy=exp_range"
                                                             : "--cycle";
    EXPECT_TRUE(c.holds(parse({"--cycle", also, "--" + c.flag + "=" + c.value})));
    EXPECT_TRUE(c.holds(parse({"--cycle", also, "--" + c.flag, c.value})));
    EXPECT_FALSE(c.holds(parse({"--cycle", also}))) << "the case should not be the default";
  }
}

TEST(BestLrOptionsTest, EveryFlagIsCoveredAndInTheHelp) {
  const std::string help = best_lr_help();
  std::vector<std::string> flags = {"cycle",       "no_plots", "save_model",    "summary",
                                    "no_download", "sync_bn",  "no_cuda_graph", "channels_last"};
  for (const auto& c : value_cases()) flags.push_back(c.flag);
  EXPECT_EQ(flags.size(), 54u) << "a flag was added: add it to value_cases";
  for (size_t i = 0; i < flags.size(); ++i) {
    const std::string& f = flags[i];
    const bool boolean = i < 8;  // "--cycle  description", others "--lr_min=LR  description"
    EXPECT_NE(help.find("  --" + f + (boolean ? " " : "=")), std::string::npos) << f;
  }
  // Exactly those flags (plus -h, --help), no undocumented extra.
  size_t listed = 0;
  for (size_t pos = 0; (pos = help.find("\n  --", pos)) != std::string::npos; ++pos) ++listed;
  EXPECT_EQ(listed, flags.size()) << help;
}

TEST(BestLrOptionsTest, Booleans) {
  for (const std::string f : {"cycle", "no_plots", "save_model", "summary", "no_download",
                              "sync_bn", "no_cuda_graph", "channels_last"}) {
    SCOPED_TRACE(f);
    const auto get = [&](const BestLrOptions& o) {
      return f == "cycle"           ? o.cycle
             : f == "no_plots"      ? o.no_plots
             : f == "save_model"    ? o.save_model
             : f == "summary"       ? o.summary
             : f == "sync_bn"       ? o.sync_bn
             : f == "no_cuda_graph" ? o.no_cuda_graph
             : f == "channels_last" ? o.channels_last
                                    : o.no_download;
    };
    EXPECT_FALSE(get(parse({})));
    EXPECT_TRUE(get(parse({"--" + f})));
    EXPECT_TRUE(get(parse({"--" + f + "=true"})));
    EXPECT_TRUE(get(parse({"--" + f + "=1"})));
    EXPECT_FALSE(get(parse({"--" + f + "=false"})));
    EXPECT_FALSE(get(parse({"--" + f + "=0"})));
    EXPECT_FALSE(get(parse({"--" + f, "--no_" + f})));
    EXPECT_NE(parse_error({"--" + f + "=maybe"}).find("--" + f + ": 'maybe'"), std::string::npos);
  }
  // --no_plots is the demo's own flag (true means no plots), not a negated --plots.
  EXPECT_TRUE(parse({"--no_plots"}).no_plots);
  EXPECT_FALSE(parse({"--no_plots", "--no_no_plots"}).no_plots);
}

// A flag that another makes meaningless is refused, naming both, rather than ignored: the cyclic
// policy's flags without --cycle, the range test's with --skip_test. At their defaults they pass.
TEST(BestLrOptionsTest, IgnoredFlagsAreRefused) {
  for (const char* flag :
       {"--policy=one_cycle", "--step_size_epochs=2", "--gamma=0.9", "--lr_min_multiplier=0.05"}) {
    const std::string m = parse_error({flag});
    EXPECT_NE(m.find(std::string(flag).substr(0, std::string(flag).find('='))), std::string::npos)
        << m;
    EXPECT_NE(m.find("--cycle"), std::string::npos) << m;
    EXPECT_NO_THROW(parse({"--cycle", "--policy=exp_range", flag}));
  }
  // With --cycle, a flag the chosen policy has no use for: --gamma is exp_range's alone, and
  // one_cycle spans the run (no --step_size_epochs).
  for (const char* policy :
       {"--policy=triangular", "--policy=triangular2", "--policy=one_cycle", "--policy=sgdr"}) {
    const std::string m = parse_error({"--cycle", policy, "--gamma=0.5"});
    EXPECT_NE(m.find("--gamma is exp_range's decay"), std::string::npos) << m;
    EXPECT_NE(m.find(std::string(policy).substr(2)), std::string::npos) << m;
  }
  EXPECT_NE(parse_error({"--cycle", "--policy=one_cycle", "--step_size_epochs=0.5"})
                .find("--policy=one_cycle is one cycle over the whole run"),
            std::string::npos);
  EXPECT_NO_THROW(parse({"--cycle", "--policy=sgdr", "--step_size_epochs=0.5"}));
  for (const char* flag :
       {"--num_learning_batches=100", "--lr_min=1e-5", "--lr_max=1", "--lr_finder_mode=linear",
        "--lr_finder_repeats=3", "--suggestion=valley", "--diverge_th=5", "--smooth_beta=0.9",
        "--momentum_test=0.9", "--wd_test=1e-4", "--lr_finder_val_batches=50"}) {
    const std::string m = parse_error({"--skip_test=0.01", flag});
    EXPECT_NE(m.find(std::string(flag).substr(0, std::string(flag).find('='))), std::string::npos)
        << m;
    EXPECT_NE(m.find("--skip_test=0.01"), std::string::npos) << m;
    EXPECT_NO_THROW(parse({flag}));
  }
  EXPECT_NO_THROW(parse({"--policy=triangular", "--skip_test=0.01", "--lr_min=0.0001"}));
  // The rate trained at, r x --lr_max_multiplier, past a double: it reached the policy as a null
  // ("field 'lr' must be a number, got null", after the data load, naming --policy=constant).
  const std::string over = parse_error({"--skip_test=1e308", "--lr_max_multiplier=10"});
  EXPECT_NE(over.find("--skip_test=1e+308 x --lr_max_multiplier=10"), std::string::npos) << over;
  EXPECT_NE(over.find("overflows"), std::string::npos) << over;
  // Checked here, before the data is read, not once the loader is built.
  EXPECT_NE(parse_error({"--lr_finder_val_every=5"}).find("--validation_fraction"),
            std::string::npos);
  EXPECT_NO_THROW(parse({"--lr_finder_val_every=5", "--validation_fraction=0.1"}));
}

// --momentum with 1cycle is the top of its momentum cycle, for every optimizer once given (before,
// SGD and RMSprop kept 1cycle's 0.95 whatever --momentum said); below 0.85 the momentum stays put.
TEST(BestLrOptionsTest, MomentumIsTheTopOfOneCyclesMomentumCycle) {
  auto policy_of = [](const std::vector<std::string>& args) {
    return nlohmann::json::parse(run_spec_from(parse(args)).policy_json);
  };
  const auto plain = policy_of({"--cycle", "--policy=one_cycle"});
  EXPECT_FALSE(plain.contains("max_momentum"));  // 1cycle's own 0.95 -> 0.85
  for (const char* opt : {"sgd", "rmsprop", "adam", "nadam"}) {
    const auto given = policy_of(
        {"--cycle", "--policy=one_cycle", "--momentum=0.5", std::string("--optimizer=") + opt});
    EXPECT_EQ(given["max_momentum"], 0.5) << opt;
    EXPECT_EQ(given["base_momentum"], 0.5) << opt;
  }
  const auto adam = policy_of({"--cycle", "--policy=one_cycle", "--optimizer=adam"});
  EXPECT_EQ(adam["max_momentum"], 0.9);  // beta1's default
  EXPECT_EQ(adam["base_momentum"], 0.85);
}

TEST(BestLrOptionsTest, SkipTest) {
  EXPECT_FALSE(parse({}).skip_test.has_value());
  EXPECT_EQ(parse({"--skip_test", "0.05"}).skip_test.value_or(-1), 0.05);
  EXPECT_EQ(parse({"--skip_test=3e-3"}).skip_test.value_or(-1), 3e-3);
  EXPECT_EQ(parse_error({"--skip_test"}), "--skip_test needs a value");
  EXPECT_EQ(parse_error({"--skip_test", "--cycle"}), "--skip_test needs a value");
}

TEST(BestLrOptionsTest, CommaLists) {
  EXPECT_EQ(parse({"--momentum_test=0.9"}).momentum_test, std::vector<double>{0.9});
  EXPECT_EQ(parse({"--wd_test", "1e-5, 1e-4"}).wd_test, (std::vector<double>{1e-5, 1e-4}));
  EXPECT_TRUE(parse({"--wd_test="}).wd_test.empty());
  EXPECT_EQ(parse_error({"--wd_test=1e-4,x"}), "--wd_test: 'x' is not a number");
}

TEST(BestLrOptionsTest, TheDesignDocExample) {
  const BestLrOptions o = parse({"--dataset=cifar10", "--cycle", "--lr_min=1e-6"});
  EXPECT_EQ(o.dataset, "cifar10");
  EXPECT_TRUE(o.cycle);
  EXPECT_EQ(o.lr_min, 1e-6);
  EXPECT_EQ(o.lr_max, 10);
}

// Each rejected value: the arguments and text the message must contain (the flag and the value).
struct ErrorCase {
  std::vector<std::string> args;
  std::vector<std::string> mentions;
};

TEST(BestLrOptionsTest, EveryValidationErrorNamesTheFlagAndValue) {
  const std::vector<ErrorCase> cases = {
      {{"--batch_size=0"}, {"--batch_size", "[1, 1048576]", "got 0"}},
      {{"--batch_size=-4"}, {"--batch_size", "-4"}},
      {{"--batch_size=abc"}, {"--batch_size", "'abc' is not an integer"}},
      {{"--batch_size=2.5"}, {"--batch_size", "'2.5' is not an integer"}},
      {{"--batch_size=99999999999999999999"}, {"--batch_size", "out of range"}},
      {{"--num_epochs=0"}, {"--num_epochs", "got 0"}},
      {{"--num_learning_batches=0"}, {"--num_learning_batches", "got 0"}},
      {{"--lr_min=0"}, {"--lr_min", "got 0"}},
      {{"--lr_min=-1e-3"}, {"--lr_min", "-0.001"}},
      {{"--lr_max=-1"}, {"--lr_max", "-1"}},
      {{"--lr_min=10"}, {"--lr_min (10)", "--lr_max (10)"}},
      {{"--lr_min=1", "--lr_max=0.1"}, {"--lr_min (1)", "--lr_max (0.1)"}},
      {{"--lr_min=x"}, {"--lr_min", "'x' is not a number"}},
      {{"--lr_max_multiplier=0"}, {"--lr_max_multiplier", "got 0"}},
      {{"--lr_min_multiplier=-0.1"}, {"--lr_min_multiplier", "-0.1"}},
      {{"--lr_min_multiplier=2"}, {"--lr_min_multiplier (2)", "--lr_max_multiplier (1)"}},
      {{"--momentum=1"}, {"--momentum", "[0, 1)", "got 1"}},
      {{"--momentum=-0.1"}, {"--momentum", "-0.1"}},
      {{"--weight_decay=-1e-4"}, {"--weight_decay", ">= 0", "-0.0001"}},
      {{"--skip_test=0"}, {"--skip_test", "got 0"}},
      {{"--skip_test=-0.1"}, {"--skip_test", "-0.1"}},
      {{"--dataset=imagenet"}, {"--dataset", "'imagenet'", "mnist|cifar10"}},
      {{"--dataset=cifar"}, {"--dataset", "'cifar'", "did you mean"}},
      {{"--optimizer=adagrad"}, {"--optimizer", "'adagrad'", "sgd|adam|rmsprop|nadam"}},
      {{"--policy=cosine"}, {"--policy", "'cosine'", "triangular|triangular2"}},
      {{"--lr_finder_mode=log"}, {"--lr_finder_mode", "'log'", "exponential|linear"}},
      {{"--suggestion=best"}, {"--suggestion", "'best'", "min_loss|steepest"}},
      {{"--step_size_epochs=0"}, {"--step_size_epochs", "got 0"}},
      {{"--gamma=0"}, {"--gamma", "(0, 1]", "got 0"}},
      {{"--gamma=1.01"}, {"--gamma", "1.01"}},
      {{"--smooth_beta=1"}, {"--smooth_beta", "[0, 1)", "got 1"}},
      {{"--diverge_th=1"}, {"--diverge_th", "> 1", "got 1"}},
      {{"--lr_finder_repeats=0"}, {"--lr_finder_repeats", ">= 1", "got 0"}},
      {{"--lr_finder_val_every=-1"}, {"--lr_finder_val_every", "-1"}},
      {{"--lr_finder_val_batches=0"}, {"--lr_finder_val_batches", "got 0"}},
      {{"--validation_fraction=1"}, {"--validation_fraction", "[0, 1)", "got 1"}},
      {{"--validation_fraction=-0.2"}, {"--validation_fraction", "-0.2"}},
      {{"--momentum_test=0.9,1.2"}, {"--momentum_test", "[0, 1)", "got 1.2"}},
      {{"--wd_test=1e-4,-1e-4"}, {"--wd_test", ">= 0", "-0.0001"}},
      {{"--checkpoint_every=-1"}, {"--checkpoint_every", "-1"}},
      {{"--early_stop_patience=-2"}, {"--early_stop_patience", "-2"}},
      {{"--clip_grad_norm=-1"}, {"--clip_grad_norm", "-1"}},
      {{"--workers=-2"}, {"--workers", "[-1, 256]", "-2"}},
      // Values that used to fail only at run time, after the range test had run and written.
      {{"--workers=99999999999"}, {"--workers", "[-1, 256]", "got 99999999999"}},
      {{"--batch_size=99999999999"}, {"--batch_size", "[1, 1048576]", "got 99999999999"}},
      {{"--num_learning_batches=1"}, {"--num_learning_batches", "[2, 10000000]", "got 1"}},
      {{"--num_epochs=4611686018427387904"},
       {"--num_epochs", "[1, 1000000]", "got 4611686018427387904"}},
      {{"--num_epochs=9223372036854775807"}, {"--num_epochs", "got 9223372036854775807"}},
      {{"--step_size_epochs=1e300"}, {"--step_size_epochs", "(0, 1000000]", "1e+300"}},
      {{"--lr_scaling=foo"}, {"--lr_scaling", "'foo'", "linear|sqrt|none"}},
      {{"--augment=yes"}, {"--augment", "'yes'", "auto|on|off"}},
      {{"--sync_every=2000000"}, {"--sync_every", "[0, 1048576]", "got 2000000"}},
      {{"--sync_every=-1"}, {"--sync_every", "got -1"}},
      // Range-test bounds: positive, finite and normal (the ramp takes their logarithms).
      {{"--lr_min=1e-320"}, {"--lr_min", "positive normal", "got 1e-320"}},
      {{"--lr_max=1e999"}, {"--lr_max"}},
      {{"--skip_test=1e-310"}, {"--skip_test", "positive normal"}},
      {{"--limit_train_batches=-1"}, {"--limit_train_batches", "-1"}},
      {{"--limit_eval_batches=-2"}, {"--limit_eval_batches", "-2"}},
      {{"--seed=-1"}, {"--seed", "'-1'"}},
      {{"--log_dir="}, {"--log_dir"}},
      {{"--cycle=2"}, {"--cycle", "'2'"}},
  };
  for (const auto& c : cases) {
    const std::string msg = parse_error(c.args);
    for (const auto& m : c.mentions) EXPECT_NE(msg.find(m), std::string::npos) << msg;
  }
}

TEST(BestLrOptionsTest, ValidateChecksOptionsBuiltInCode) {
  BestLrOptions o;
  EXPECT_NO_THROW(validate(o));
  o.momentum_test = {0.5, 1.0};
  EXPECT_THROW(validate(o), UsageError);
  o = {};
  o.dataset = "svhn";
  EXPECT_THROW(validate(o), UsageError);
}

TEST(BestLrOptionsTest, UnknownFlagSuggestsTheClosest) {
  EXPECT_EQ(parse_error({"--lr_mn=1e-5"}), "unknown flag '--lr_mn' (did you mean --lr_min?)");
  EXPECT_EQ(parse_error({"--batchsize", "64"}),
            "unknown flag '--batchsize' (did you mean --batch_size?)");
  EXPECT_EQ(parse_error({"--num_learning"}),
            "unknown flag '--num_learning' (did you mean --num_learning_batches?)");
  EXPECT_EQ(parse_error({"--learning_rate=0.1"}), "unknown flag '--learning_rate'");
}

TEST(BestLrOptionsTest, MissingValue) {
  EXPECT_EQ(parse_error({"--lr_min"}), "--lr_min needs a value");
  EXPECT_EQ(parse_error({"--dataset", "--cycle"}), "--dataset needs a value");
  EXPECT_EQ(parse_error({"--momentum_test"}), "--momentum_test needs a value");
}

TEST(BestLrOptionsTest, PositionalArgumentsAreRejected) {
  EXPECT_NE(parse_error({"cifar10"}).find("unexpected argument 'cifar10'"), std::string::npos);
}

TEST(BestLrOptionsTest, Help) {
  EXPECT_TRUE(parse({"--help"}).help);
  EXPECT_TRUE(parse({"-h"}).help);
  EXPECT_TRUE(parse({"--batch_size=0", "--help"}).help) << "help wins over a bad value";
  EXPECT_FALSE(parse({}).help);

  const std::string h = best_lr_help();
  EXPECT_EQ(h.rfind("usage: best_lr [flags]\n", 0), 0u);
  for (const std::string d : {"(default: mnist)",
                              "(default: he_normal)",
                              "(default: relu)",
                              "(default: 0.0005)",
                              "(default: sgd)",
                              "(default: 0.9)",
                              "(default: 32)",
                              "(default: 55)",
                              "(default: 4000)",
                              "(default: 0.0001)",
                              "(default: 10)",
                              "(default: 0.1)",
                              "(default: ./logs)",
                              "(default: auto)",
                              "(default: triangular)",
                              "(default: 0.99994)",
                              "(default: exponential)",
                              "(default: min_loss)",
                              "(default: 0.98)",
                              "(default: -1)",
                              "(default: unset)",
                              "(default: empty)",
                              "lr_max_multiplier*r",
                              "lr_min_multiplier*r",
                              "--skip_test",
                              "Exit status"})
    EXPECT_NE(h.find(d), std::string::npos) << "missing '" << d << "' in\n" << h;
}

TEST(BestLrOptionsTest, DefaultModelForEveryDataset) {
  EXPECT_EQ(default_model_for("mnist"), "lenet5");
  EXPECT_EQ(default_model_for("fashion_mnist"), "lenet5");
  EXPECT_EQ(default_model_for("cifar10"), "wrn-28-10");
  EXPECT_EQ(default_model_for("cifar100"), "wrn-28-10");
  EXPECT_EQ(default_model_for("synthetic"), "mlp");
  for (const auto& d : best_lr_datasets()) EXPECT_NO_THROW(default_model_for(d)) << d;
  EXPECT_THROW(default_model_for("svhn"), UsageError);
}

}  // namespace
}  // namespace cyclone::train
