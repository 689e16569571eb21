// Parameter groups (prefixes, multipliers, per-group weight decay and momentum, BN/bias without
// decay), state save/load (exact resumption, validation errors), and the registry.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <set>

#include <unistd.h>

#include "cyclone/layers/ops.h"
#include "cyclone/layers/reduce_ops.h"
#include "optim/optim_test_util.h"

namespace cyclone {
namespace {

using optim::Adam;
using optim::AdamOptions;
using optim::ParamGroupSpec;
using optim::Sgd;
using optim::SgdOptions;

NamedTensors three_stage_params() {
  NamedTensors p;
  p.emplace_back("stem.conv.weight", testing::random_tensor({4, 3}, 1, DType::kFloat64));
  p.emplace_back("stem.bn.weight", testing::random_tensor({4}, 2, DType::kFloat64));
  p.emplace_back("block1.conv.weight", testing::random_tensor({4, 4}, 3, DType::kFloat64));
  p.emplace_back("block1.conv.bias", testing::random_tensor({4}, 4, DType::kFloat64));
  p.emplace_back("fc.weight", testing::random_tensor({2, 4}, 5, DType::kFloat64));
  p.emplace_back("extra.weight", testing::random_tensor({2, 2}, 6, DType::kFloat64));
  for (auto& [n, t] : p) t.set_requires_grad(true);
  return p;
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("cyclone_optim_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

// fast.ai's differential learning rates: 1e-4 / 1e-3 / 1e-2 for early / middle / last layers as
// multipliers on one base rate; unmatched parameters take the default group (multiplier 1).
TEST(ParamGroups, DifferentialLearningRates) {
  NamedTensors params = three_stage_params();
  SgdOptions o;
  o.lr = 1e-2;
  o.groups = {ParamGroupSpec{"early", {"stem."}, 0.01, {}, {}},
              ParamGroupSpec{"middle", {"block1."}, 0.1, {}, {}},
              ParamGroupSpec{"last", {"fc."}, 1.0, {}, {}}};
  Sgd opt(params, o);
  ASSERT_EQ(opt.groups().size(), 4u);
  EXPECT_EQ(opt.group_of("stem.bn.weight").name, "early");
  EXPECT_EQ(opt.group_of("block1.conv.bias").name, "middle");
  EXPECT_EQ(opt.group_of("fc.weight").name, "last");
  EXPECT_EQ(opt.group_of("extra.weight").name, "default");
  std::vector<std::vector<double>> before;
  for (const auto& [n, p] : params) before.push_back(testing::values(p));
  testing::set_grads(params, 1);
  opt.step();
  const double rates[] = {1e-4, 1e-4, 1e-3, 1e-3, 1e-2, 1e-2};
  for (size_t i = 0; i < params.size(); ++i) {
    auto g = testing::grad_values(i, params[i].second.numel(), 1);
    std::vector<double> expect = before[i];
    for (size_t k = 0; k < expect.size(); ++k) expect[k] -= rates[i] * g[k];
    EXPECT_TRUE(testing::all_close(testing::values(params[i].second), expect, 1e-13, 1e-15))
        << params[i].first;
  }
  // A later change of one multiplier (unfreezing a stage) takes effect at the next step.
  opt.set_group_lr_mult("early", 0.0);
  const auto stem = testing::values(params[0].second);
  testing::set_grads(params, 2);
  opt.step();
  EXPECT_EQ(testing::values(params[0].second), stem);
}

// Per-group weight decay and momentum, BN/bias parameters moved to a no-decay twin of their group.
TEST(ParamGroups, WeightDecayMomentumAndNoDecayTwins) {
  NamedTensors params = three_stage_params();
  SgdOptions o;
  o.lr = 0.1;
  o.momentum = 0.9;
  o.weight_decay = 0.05;
  o.no_decay_bn_bias = true;
  o.groups = {ParamGroupSpec{"head", {"fc.", "extra."}, 2.0, 0.2, 0.5}};
  Sgd opt(params, o);
  EXPECT_EQ(opt.group_of("stem.bn.weight").name, "default.no_decay");
  EXPECT_EQ(opt.group_of("block1.conv.bias").name, "default.no_decay");
  EXPECT_EQ(opt.group_of("block1.conv.weight").name, "default");
  EXPECT_EQ(opt.group_of("fc.weight").name, "head");
  EXPECT_DOUBLE_EQ(opt.group_of("stem.bn.weight").weight_decay, 0.0);

  // References: the default group follows set_momentum; "head" keeps its momentum 0.5.
  testing::RefSgd def, nodecay, head;
  def.weight_decay = 0.05;
  head.weight_decay = 0.2;
  head.momentum = 0.5;
  std::vector<std::vector<double>> expect;
  for (const auto& [n, p] : params) expect.push_back(testing::values(p));
  for (int s = 1; s <= 5; ++s) {
    const double lr = 0.1 / s, mom = 0.95 - 0.05 * s;
    opt.set_hyperparams(lr, mom);
    def.lr = nodecay.lr = lr;
    head.lr = 2.0 * lr;
    def.momentum = nodecay.momentum = mom;
    testing::set_grads(params, s);
    for (size_t i = 0; i < params.size(); ++i) {
      const auto g = testing::grad_values(i, params[i].second.numel(), s);
      const std::string& name = params[i].first;
      auto& ref = name.rfind("fc.", 0) == 0 || name.rfind("extra.", 0) == 0
                      ? head
                      : (optim::is_bn_or_bias(name, params[i].second) ? nodecay : def);
      ref.step(i, expect[i], g, s);
    }
    opt.step();
  }
  for (size_t i = 0; i < params.size(); ++i)
    EXPECT_TRUE(testing::all_close(testing::values(params[i].second), expect[i], 1e-12, 1e-12))
        << params[i].first;
}

TEST(ParamGroups, ErrorsNameTheProblem) {
  SgdOptions o;
  o.groups = {ParamGroupSpec{"head", {"classifier."}, 10, {}, {}}};
  try {
    Sgd opt(three_stage_params(), o);
    FAIL() << "an unmatched prefix must be an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'head'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("classifier."), std::string::npos) << e.what();
  }
  Sgd ok(three_stage_params());
  EXPECT_THROW(ok.set_group_lr_mult("nope", 1.0), Error);
  EXPECT_THROW(ok.set_momentum(0.9), Error);  // built without momentum: no buffer
  EXPECT_THROW(ok.set_lr(-1), Error);
  EXPECT_THROW(ok.state("fc.weight", "momentum_buffer"), Error);
  SgdOptions nest;
  nest.nesterov = true;
  EXPECT_THROW(Sgd s(three_stage_params(), nest), Error);
  NamedTensors no_grad = {{"w", Tensor::zeros({2}, DType::kFloat32)}};
  EXPECT_THROW(Sgd bad(no_grad), Error);
  // One tensor under two names was stepped twice a step.
  NamedTensors tied = three_stage_params();
  tied.emplace_back("again", tied.front().second);
  testing::expect_error([&] { Sgd twice(tied); },
                        {"'" + tied.front().first + "' and 'again' are the same tensor"});
}

// A step between a forward pass and its backward changed the weights the pass used: the
// gradient came from the new values, silently. The step marks its parameters changed, so the
// backward refuses; the usual order (forward, backward, step) goes on as before.
TEST(OptimizerState, AStepBetweenForwardAndBackwardIsRefused) {
  NamedTensors params = three_stage_params();
  Sgd opt(params);
  const Tensor& w = params.front().second;
  sum(w * w).backward();
  opt.step();
  Tensor loss = sum(w * w);
  opt.step();  // the gradients of the first backward are still there: a second update
  testing::expect_error([&] { loss.backward(); }, {"changed in place after the forward pass"});
  opt.zero_grad();
  Tensor again = sum(w * w);
  again.backward();
  EXPECT_NO_THROW(opt.step());
}

// Train 4 steps, save, load into a fresh optimizer over fresh copies of the parameters, train 6
// more: bit-identical to 10 uninterrupted steps (step counts, bias corrections, buffers, lr).
TEST(OptimizerState, SaveLoadResumesExactly) {
  const std::pair<const char*, const char*> configs[] = {
      {"sgd", R"({"lr": 0.1, "momentum": 0.9, "nesterov": true,
                  "groups": [{"name": "head", "prefixes": ["fc."], "lr_mult": 0.5}]})"},
      {"adam", R"({"lr": 0.01, "amsgrad": true, "weight_decay": 0.01, "no_decay_bn_bias": true})"},
      {"adamw", R"({"lr": 0.01})"},
      {"rmsprop", R"({"lr": 0.01, "centered": true, "momentum": 0.3})"},
      {"nadam", R"({"lr": 0.01, "weight_decay": 0.01, "momentum_decay": 0.1})"}};
  for (const auto& [name, json] : configs) {
    SCOPED_TRACE(name);
    NamedTensors a = testing::make_params(DType::kFloat32);
    auto ref = optim::make_optimizer(name, a, json);
    NamedTensors b = testing::make_params(DType::kFloat32);
    auto first = optim::make_optimizer(name, b, json);
    const std::string path = temp_path(std::string(name) + ".safetensors");
    for (int s = 1; s <= 10; ++s) {
      ref->set_lr(0.01 * s);
      testing::set_grads(a, s);
      ref->step();
      if (s <= 4) {
        first->set_lr(0.01 * s);
        testing::set_grads(b, s);
        first->step();
      }
    }
    first->save(path);
    // A fresh process: parameters as a checkpoint would restore them, a new optimizer.
    NamedTensors c = testing::make_params(DType::kFloat32);
    for (size_t i = 0; i < c.size(); ++i) c[i].second.copy_from(b[i].second);
    auto resumed = optim::make_optimizer(name, c, json);
    resumed->load(path);
    EXPECT_EQ(resumed->step_count(), 4);
    EXPECT_DOUBLE_EQ(resumed->lr(), 0.04);
    for (int s = 5; s <= 10; ++s) {
      resumed->set_lr(0.01 * s);
      testing::set_grads(c, s);
      resumed->step();
    }
    for (size_t i = 0; i < a.size(); ++i)
      EXPECT_EQ(testing::values(c[i].second), testing::values(a[i].second)) << a[i].first;
    std::remove(path.c_str());
  }
}

// NAdam's mu_product across a save: beta1 changes every step, one parameter skips steps (so the
// parameters' step counts, and the parity of their mu product pairs, differ at the save, taken
// after an odd number of steps), and the resumed run is bit-identical to the uninterrupted one.
TEST(OptimizerState, NadamMuProductResumesExactly) {
  const char* json = R"({"lr": 0.01, "momentum_decay": 0.2, "weight_decay": 0.01,
                         "groups": [{"name": "head", "prefixes": ["fc."], "momentum": 0.7}]})";
  auto run_step = [](optim::Optimizer& opt, const NamedTensors& p, int s) {
    opt.set_hyperparams(0.01 * (1 + 0.3 * std::sin(s)), 0.9 - 0.04 * (s % 3));
    testing::set_grads(p, s);
    if (s == 2 || s == 3) p[1].second.zero_grad(/*set_to_none=*/true);
    opt.step();
  };
  NamedTensors a = testing::make_params(DType::kFloat64);
  auto ref = optim::make_optimizer("nadam", a, json);
  NamedTensors b = testing::make_params(DType::kFloat64);
  auto first = optim::make_optimizer("nadam", b, json);
  for (int s = 1; s <= 9; ++s) {
    run_step(*ref, a, s);
    if (s <= 5) run_step(*first, b, s);
  }
  EXPECT_EQ(first->param_step_count("layer1.bn.bias"), 3);
  EXPECT_EQ(first->param_step_count("fc.weight"), 5);
  const std::string path = temp_path("nadam.safetensors");
  first->save(path);
  NamedTensors c = testing::make_params(DType::kFloat64);
  for (size_t i = 0; i < c.size(); ++i) c[i].second.copy_from(b[i].second);
  auto resumed = optim::make_optimizer("nadam", c, json);
  resumed->load(path);
  for (const auto& [n, t] : c)
    EXPECT_EQ(resumed->state(n, "mu_product").item(), first->state(n, "mu_product").item()) << n;
  for (int s = 6; s <= 9; ++s) run_step(*resumed, c, s);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(testing::values(c[i].second), testing::values(a[i].second)) << a[i].first;
    EXPECT_EQ(resumed->state(a[i].first, "mu_product").item(),
              ref->state(a[i].first, "mu_product").item())
        << a[i].first;
  }
  std::remove(path.c_str());
}

TEST(OptimizerState, FileNamesStateLikePyTorch) {
  NamedTensors p = testing::make_params(DType::kFloat32);
  AdamOptions o;
  o.amsgrad = true;
  Adam opt(p, o);
  testing::set_grads(p, 1);
  opt.step();
  const std::string path = temp_path("names.safetensors");
  opt.save(path);
  SafetensorsFile f = load_safetensors(path);
  std::set<std::string> names;
  for (const auto& [n, t] : f.tensors) names.insert(n);
  EXPECT_TRUE(names.count("state.fc.weight.exp_avg"));
  EXPECT_TRUE(names.count("state.layer1.bn.bias.exp_avg_sq"));
  EXPECT_TRUE(names.count("state.layer1.conv.weight.max_exp_avg_sq"));
  EXPECT_EQ(names.size(), 9u);
  ASSERT_TRUE(f.metadata.count("cyclone.optimizer"));
  EXPECT_NE(f.metadata["cyclone.optimizer"].find("\"step\":1"), std::string::npos);
  std::remove(path.c_str());
}

// NAdam: exp_avg, exp_avg_sq and the scalar mu_product (float64, 0-d, as PyTorch's state).
TEST(OptimizerState, NadamStateNamesAndMuProduct) {
  NamedTensors p = testing::make_params(DType::kFloat32);
  auto opt = optim::make_optimizer("nadam", p);
  EXPECT_EQ(opt->state("fc.weight", "mu_product").item(), 1.0);  // P_0
  testing::set_grads(p, 1);
  opt->step();
  const std::string path = temp_path("nadam_names.safetensors");
  opt->save(path);
  SafetensorsFile f = load_safetensors(path);
  std::map<std::string, Tensor> by_name(f.tensors.begin(), f.tensors.end());
  EXPECT_EQ(by_name.size(), 9u);
  EXPECT_TRUE(by_name.count("state.fc.weight.exp_avg"));
  EXPECT_TRUE(by_name.count("state.layer1.bn.bias.exp_avg_sq"));
  ASSERT_TRUE(by_name.count("state.layer1.conv.weight.mu_product"));
  const Tensor& mp = by_name.at("state.layer1.conv.weight.mu_product");
  EXPECT_EQ(mp.rank(), 0);
  EXPECT_EQ(mp.dtype(), DType::kFloat64);
  const double mu1 = 0.9 * (1 - 0.5 * std::pow(0.96, 1 * 4e-3));  // beta1 (1 - 0.5 0.96^(t psi))
  EXPECT_DOUBLE_EQ(mp.item(), mu1);
  EXPECT_DOUBLE_EQ(opt->state("layer1.conv.weight", "mu_product").item(), mu1);
  try {
    opt->state("fc.weight", "max_exp_avg_sq");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("exp_avg, exp_avg_sq, mu_product"), std::string::npos)
        << e.what();
  }
  std::remove(path.c_str());
}

TEST(OptimizerState, NadamLoadValidatesMuProduct) {
  NamedTensors p = testing::make_params(DType::kFloat32);
  auto nadam = optim::make_optimizer("nadam", p);
  testing::set_grads(p, 1);
  nadam->step();
  const optim::OptimizerState good = nadam->state_dict();
  const std::string n = "state.fc.weight.mu_product";
  auto with = [&](const Tensor& t) {
    optim::OptimizerState s = good;
    for (auto& [name, v] : s.tensors)
      if (name == n) v = t;
    return s;
  };
  auto expect_error = [](const std::function<void()>& f, const std::string& needle) {
    try {
      f();
      ADD_FAILURE() << "expected an error mentioning " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  auto other = optim::make_optimizer("nadam", testing::make_params(DType::kFloat32));
  optim::OptimizerState missing = good;
  std::erase_if(missing.tensors, [&](const auto& e) { return e.first == n; });
  expect_error([&] { other->load_state_dict(missing); }, n);
  expect_error(
      [&] { other->load_state_dict(with(Tensor::from_vector(std::vector<double>{0.5}, {1}))); }, n);
  expect_error(
      [&] { other->load_state_dict(with(Tensor::from_vector(std::vector<float>{0.5f}, {}))); },
      "float32");
  expect_error(
      [&] { other->load_state_dict(with(Tensor::from_vector(std::vector<double>{1.5}, {}))); },
      "1.5");
  auto decoupled = optim::make_optimizer("nadam", testing::make_params(DType::kFloat32),
                                         R"({"decoupled_weight_decay": true})");
  expect_error([&] { decoupled->load_state_dict(good); }, "decoupled_weight_decay");
  EXPECT_EQ(other->step_count(), 0);  // the failed loads changed nothing
  other->load_state_dict(good);
  EXPECT_EQ(other->state("fc.weight", "mu_product").item(),
            nadam->state("fc.weight", "mu_product").item());
}

TEST(OptimizerState, LoadValidatesAndNamesMismatches) {
  NamedTensors p = testing::make_params(DType::kFloat32);
  auto adam = optim::make_optimizer("adam", p, R"({"amsgrad": true})");
  const optim::OptimizerState good = adam->state_dict();
  auto expect_error = [](const std::function<void()>& f, const std::string& needle) {
    try {
      f();
      ADD_FAILURE() << "expected an error mentioning " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  // Another optimizer, another option, a missing / misshapen / extra tensor.
  auto sgd =
      optim::make_optimizer("sgd", testing::make_params(DType::kFloat32), R"({"momentum": 0.9})");
  expect_error([&] { sgd->load_state_dict(good); }, "'adam'");
  auto plain = optim::make_optimizer("adam", testing::make_params(DType::kFloat32));
  expect_error([&] { plain->load_state_dict(good); }, "amsgrad");
  auto other =
      optim::make_optimizer("adam", testing::make_params(DType::kFloat32), R"({"amsgrad": true})");
  optim::OptimizerState missing = good;
  missing.tensors.erase(missing.tensors.begin());
  expect_error([&] { other->load_state_dict(missing); }, "state.layer1.conv.weight.exp_avg");
  optim::OptimizerState misshapen = good;
  misshapen.tensors[0].second = Tensor::zeros({2, 2});
  expect_error([&] { other->load_state_dict(misshapen); }, "[2, 2]");
  optim::OptimizerState extra = good;
  extra.tensors.emplace_back("state.ghost.exp_avg", Tensor::zeros({1}));
  expect_error([&] { other->load_state_dict(extra); }, "state.ghost.exp_avg");
  optim::OptimizerState no_meta = good;
  no_meta.metadata.clear();
  expect_error([&] { other->load_state_dict(no_meta); }, "cyclone.optimizer");
  // An option nested 400000 deep (a corrupt checkpoint) crashed the mismatch message's dump.
  optim::OptimizerState deep = good;
  std::string& meta = deep.metadata["cyclone.optimizer"];
  const size_t at = meta.find("\"amsgrad\":true");
  ASSERT_NE(at, std::string::npos) << meta;
  meta.replace(at, 14, "\"amsgrad\":" + std::string(400000, '[') + std::string(400000, ']'));
  expect_error([&] { other->load_state_dict(deep); },
               "adam: the optimizer metadata is nested deeper than 64 levels");
  // A failed load changed nothing; a good one works.
  EXPECT_EQ(other->step_count(), 0);
  other->load_state_dict(good);
  // A missing file names the path.
  expect_error([&] { other->load(temp_path("does_not_exist")); }, "does_not_exist");
}

TEST(Registry, NamesOptionsAndErrors) {
  EXPECT_EQ(optim::optimizer_names(),
            (std::vector<std::string>{"adam", "adamw", "nadam", "rmsprop", "sgd"}));
  try {
    optim::make_optimizer("lamb", testing::make_params(DType::kFloat32));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("adam, adamw, nadam, rmsprop, sgd"), std::string::npos);
  }
  try {
    optim::make_optimizer("sgd", testing::make_params(DType::kFloat32), R"({"momentun": 0.9})");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("momentun"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("momentum"), std::string::npos);
  }
  EXPECT_THROW(optim::make_optimizer("adam", testing::make_params(DType::kFloat32), "{"), Error);
  EXPECT_THROW(
      optim::make_optimizer("adam", testing::make_params(DType::kFloat32), R"({"beta1": "high"})"),
      Error);
  auto opt = optim::make_optimizer(
      "sgd", testing::make_params(DType::kFloat32),
      R"({"lr": 0.5, "momentum": 0.8, "groups": [{"name": "head", "prefixes": ["fc."],
          "lr_mult": 0.1, "weight_decay": 0.01, "momentum": 0.3}]})");
  EXPECT_EQ(opt->name(), "sgd");
  EXPECT_DOUBLE_EQ(opt->lr(), 0.5);
  EXPECT_DOUBLE_EQ(opt->momentum(), 0.8);
  const auto& head = opt->group_of("fc.weight");
  EXPECT_EQ(head.name, "head");
  EXPECT_DOUBLE_EQ(head.lr_mult, 0.1);
  EXPECT_DOUBLE_EQ(head.weight_decay, 0.01);
  EXPECT_DOUBLE_EQ(head.momentum.value(), 0.3);
  auto rms = optim::make_optimizer("rmsprop", testing::make_params(DType::kFloat32));
  EXPECT_DOUBLE_EQ(rms->lr(), 1e-2);
  auto nadam =
      optim::make_optimizer("nadam", testing::make_params(DType::kFloat32),
                            R"({"beta1": 0.8, "beta2": 0.99, "eps": 1e-6, "momentum_decay": 0.01,
          "decoupled_weight_decay": true, "weight_decay": 0.02})");
  EXPECT_EQ(nadam->name(), "nadam");
  EXPECT_DOUBLE_EQ(nadam->lr(), 2e-3);  // PyTorch's NAdam default
  EXPECT_DOUBLE_EQ(nadam->momentum(), 0.8);
  const auto& nopts = dynamic_cast<const optim::Nadam&>(*nadam).options();
  EXPECT_DOUBLE_EQ(nopts.beta2, 0.99);
  EXPECT_DOUBLE_EQ(nopts.eps, 1e-6);
  EXPECT_DOUBLE_EQ(nopts.momentum_decay, 0.01);
  EXPECT_TRUE(nopts.decoupled_weight_decay);
  EXPECT_DOUBLE_EQ(nopts.weight_decay, 0.02);
}

}  // namespace
}  // namespace cyclone
