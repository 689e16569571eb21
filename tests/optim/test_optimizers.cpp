// SGD, Adam(W), RMSprop and NAdam against independent double-precision references
// (optim_test_util.h), one step and ten steps, every option, float64 and float32, with lr and
// momentum changing per step as a cyclical policy drives them; and the same runs on every device
// against the CPU.
#include <gtest/gtest.h>

#include <memory>

#include "optim/optim_test_util.h"

namespace cyclone {
namespace {

using optim::Adam;
using optim::AdamOptions;
using optim::AdamW;
using optim::Nadam;
using optim::NadamOptions;
using optim::Optimizer;
using optim::Rmsprop;
using optim::RmspropOptions;
using optim::Sgd;
using optim::SgdOptions;
using testing::RefOptimizer;

using Factory = std::function<std::unique_ptr<Optimizer>(NamedTensors)>;

// Runs `steps` steps of the optimizer and of the reference on the same parameters and gradients.
// With `cyclic`, lr and momentum change every step (the optimizer through set_lr/set_momentum,
// the reference by assignment).
void expect_matches(const Factory& make, RefOptimizer& ref, DType dtype, int steps, bool cyclic,
                    double tol) {
  NamedTensors params = testing::make_params(dtype);
  std::vector<std::vector<double>> expect;
  for (const auto& [n, p] : params) expect.push_back(testing::values(p));
  auto opt = make(params);
  const double lr0 = ref.lr, mom0 = ref.momentum;
  for (int s = 1; s <= steps; ++s) {
    if (cyclic) {
      ref.lr = lr0 * (1.0 + 0.5 * std::sin(s));
      ref.momentum = mom0 == 0 ? 0 : mom0 - 0.05 * (s % 3);
      opt->set_lr(ref.lr);
      opt->set_momentum(ref.momentum);
    }
    testing::set_grads(params, s);
    for (size_t i = 0; i < params.size(); ++i)
      ref.step(i, expect[i], testing::grad_values(i, params[i].second.numel(), s), s);
    opt->step();
  }
  EXPECT_EQ(opt->step_count(), steps);
  for (size_t i = 0; i < params.size(); ++i)
    EXPECT_TRUE(testing::all_close(testing::values(params[i].second), expect[i], tol, tol))
        << params[i].first << " after " << steps << " steps, " << dtype_name(dtype);
}

void expect_matches_all(const Factory& make,
                        const std::function<std::unique_ptr<RefOptimizer>()>& ref) {
  for (DType dtype : {DType::kFloat64, DType::kFloat32}) {
    const double tol = dtype == DType::kFloat64 ? 1e-11 : 2e-5;
    for (int steps : {1, 10})
      for (bool cyclic : {false, true}) {
        SCOPED_TRACE(::testing::Message() << "steps " << steps << (cyclic ? ", cyclic" : ""));
        auto r = ref();
        expect_matches(make, *r, dtype, steps, cyclic, tol);
      }
  }
}

struct SgdCase {
  const char* name;
  double momentum, dampening, weight_decay;
  bool nesterov;
};

TEST(Sgd, MatchesReferenceForEveryOption) {
  const SgdCase cases[] = {{"plain", 0, 0, 0, false},      {"weight_decay", 0, 0, 0.1, false},
                           {"momentum", 0.9, 0, 0, false}, {"dampening", 0.9, 0.3, 0, false},
                           {"nesterov", 0.9, 0, 0, true},  {"nesterov_wd", 0.8, 0, 0.05, true},
                           {"all", 0.7, 0.2, 0.01, false}};
  for (const SgdCase& c : cases) {
    SCOPED_TRACE(c.name);
    SgdOptions o;
    o.lr = 0.1;
    o.momentum = c.momentum;
    o.dampening = c.dampening;
    o.weight_decay = c.weight_decay;
    o.nesterov = c.nesterov;
    expect_matches_all([&](NamedTensors p) { return std::make_unique<Sgd>(std::move(p), o); },
                       [&] {
                         auto r = std::make_unique<testing::RefSgd>();
                         r->lr = o.lr;
                         r->momentum = c.momentum;
                         r->dampening = c.dampening;
                         r->weight_decay = c.weight_decay;
                         r->nesterov = c.nesterov;
                         return r;
                       });
  }
}

struct AdamCase {
  const char* name;
  double weight_decay;
  bool amsgrad, adamw;
};

TEST(Adam, MatchesReferenceForEveryOption) {
  const AdamCase cases[] = {{"plain", 0, false, false},  {"l2", 0.1, false, false},
                            {"amsgrad", 0, true, false}, {"amsgrad_l2", 0.05, true, false},
                            {"adamw", 0.1, false, true}, {"adamw_amsgrad", 0.1, true, true}};
  for (const AdamCase& c : cases) {
    SCOPED_TRACE(c.name);
    AdamOptions o;
    o.lr = 0.01;
    o.beta1 = 0.8;
    o.beta2 = 0.95;
    o.eps = 1e-6;
    o.weight_decay = c.weight_decay;
    o.amsgrad = c.amsgrad;
    Factory make = [&](NamedTensors p) -> std::unique_ptr<Optimizer> {
      if (c.adamw) return std::make_unique<AdamW>(std::move(p), o);
      return std::make_unique<Adam>(std::move(p), o);
    };
    expect_matches_all(make, [&] {
      auto r = std::make_unique<testing::RefAdam>();
      r->lr = o.lr;
      r->momentum = o.beta1;
      r->beta2 = o.beta2;
      r->eps = o.eps;
      r->weight_decay = c.weight_decay;
      r->amsgrad = c.amsgrad;
      r->adamw = c.adamw;
      return r;
    });
  }
}

TEST(Adam, AdamWIsNamedAndDecoupled) {
  NamedTensors p = testing::make_params(DType::kFloat32);
  AdamW w(p);
  EXPECT_EQ(w.name(), "adamw");
  EXPECT_TRUE(w.options().decoupled_weight_decay);
  EXPECT_DOUBLE_EQ(w.options().weight_decay, 1e-2);  // PyTorch's AdamW default
  Adam a(testing::make_params(DType::kFloat32));
  EXPECT_EQ(a.name(), "adam");
}

struct NadamCase {
  const char* name;
  double weight_decay, momentum_decay;
  bool decoupled;
};

TEST(Nadam, MatchesReferenceForEveryOption) {
  const NadamCase cases[] = {{"plain", 0, 4e-3, false},
                             {"l2", 0.1, 4e-3, false},
                             {"decoupled", 0.1, 4e-3, true},
                             {"fast_momentum_decay", 0.05, 0.3, false},
                             {"no_momentum_decay", 0, 0, false}};
  for (const NadamCase& c : cases) {
    SCOPED_TRACE(c.name);
    NadamOptions o;
    o.lr = 0.01;
    o.beta1 = 0.8;
    o.beta2 = 0.95;
    o.eps = 1e-6;
    o.weight_decay = c.weight_decay;
    o.momentum_decay = c.momentum_decay;
    o.decoupled_weight_decay = c.decoupled;
    expect_matches_all([&](NamedTensors p) { return std::make_unique<Nadam>(std::move(p), o); },
                       [&] {
                         auto r = std::make_unique<testing::RefNadam>();
                         r->lr = o.lr;
                         r->momentum = o.beta1;
                         r->beta2 = o.beta2;
                         r->eps = o.eps;
                         r->weight_decay = c.weight_decay;
                         r->momentum_decay = c.momentum_decay;
                         r->decoupled = c.decoupled;
                         return r;
                       });
  }
}

// PyTorch's defaults; beta1 is the momentum set_momentum drives; bad options name themselves.
TEST(Nadam, DefaultsAndOptionErrors) {
  Nadam n(testing::make_params(DType::kFloat32));
  EXPECT_EQ(n.name(), "nadam");
  EXPECT_DOUBLE_EQ(n.lr(), 2e-3);
  EXPECT_DOUBLE_EQ(n.momentum(), 0.9);
  EXPECT_DOUBLE_EQ(n.options().beta2, 0.999);
  EXPECT_DOUBLE_EQ(n.options().eps, 1e-8);
  EXPECT_DOUBLE_EQ(n.options().weight_decay, 0.0);
  EXPECT_DOUBLE_EQ(n.options().momentum_decay, 4e-3);
  EXPECT_FALSE(n.options().decoupled_weight_decay);
  n.set_momentum(0.85);
  EXPECT_DOUBLE_EQ(n.momentum(), 0.85);
  EXPECT_THROW(n.set_momentum(1.0), Error);  // beta1 must stay below 1
  auto expect_error = [](const char* json, const std::string& needle) {
    SCOPED_TRACE(json);
    try {
      optim::make_optimizer("nadam", testing::make_params(DType::kFloat32), json);
      ADD_FAILURE() << "expected an error mentioning " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error(R"({"beta1": 1.0})", "beta1");
  expect_error(R"({"beta1": -0.1})", "beta1");
  expect_error(R"({"beta2": 1.5})", "beta2");
  expect_error(R"({"momentum_decay": -0.004})", "momentum_decay");
  expect_error(R"({"eps": -1})", "eps");
  expect_error(R"({"weight_decay": -1})", "weight_decay");
  expect_error(R"({"groups": [{"name": "head", "prefixes": ["fc."], "momentum": 1.0}]})", "beta1");
  expect_error(R"({"amsgrad": true})", "amsgrad");  // not a NAdam option
}

struct RmspropCase {
  const char* name;
  double momentum, weight_decay;
  bool centered;
};

// A momentum of 1 or more never forgets a gradient (the velocity grows without bound): refused
// when built, in a group and from a schedule, as best_lr's --momentum is.
TEST(Optimizer, MomentumOfOneOrMoreIsRefused) {
  for (const char* name : {"sgd", "rmsprop"}) {
    SCOPED_TRACE(name);
    for (const char* json : {R"({"momentum": 1.0})", R"({"momentum": 1.5})",
                             R"({"momentum": 0.9, "groups": [{"name": "head",
                                 "prefixes": ["fc."], "momentum": 1.0}]})"})
      testing::expect_error(
          [&] { optim::make_optimizer(name, testing::make_params(DType::kFloat32), json); },
          {name, "momentum", "[0, 1)"});
    auto o =
        optim::make_optimizer(name, testing::make_params(DType::kFloat32), R"({"momentum": 0.9})");
    testing::expect_error([&] { o->set_momentum(1.0); }, {"momentum", "[0, 1)"});
    o->set_momentum(0.99);
    EXPECT_DOUBLE_EQ(o->momentum(), 0.99);
  }
}

TEST(Rmsprop, MatchesReferenceForEveryOption) {
  const RmspropCase cases[] = {{"plain", 0, 0, false},
                               {"centered", 0, 0, true},
                               {"momentum", 0.9, 0, false},
                               {"centered_momentum_wd", 0.5, 0.1, true}};
  for (const RmspropCase& c : cases) {
    SCOPED_TRACE(c.name);
    RmspropOptions o;
    o.lr = 0.01;
    o.alpha = 0.9;
    o.eps = 1e-6;
    o.momentum = c.momentum;
    o.weight_decay = c.weight_decay;
    o.centered = c.centered;
    expect_matches_all([&](NamedTensors p) { return std::make_unique<Rmsprop>(std::move(p), o); },
                       [&] {
                         auto r = std::make_unique<testing::RefRmsprop>();
                         r->lr = o.lr;
                         r->momentum = c.momentum;
                         r->alpha = o.alpha;
                         r->eps = o.eps;
                         r->weight_decay = c.weight_decay;
                         r->centered = c.centered;
                         return r;
                       });
  }
}

// A parameter with no gradient in a step is left alone and its own step count (and so Adam's bias
// correction and SGD's first-step momentum) does not advance, as in PyTorch.
TEST(Optimizer, SkipsParametersWithoutGradient) {
  for (const char* algo : {"sgd", "adam", "nadam"}) {
    SCOPED_TRACE(algo);
    NamedTensors params = testing::make_params(DType::kFloat64);
    std::unique_ptr<RefOptimizer> ref;
    std::unique_ptr<Optimizer> opt;
    if (std::string(algo) == "sgd") {
      SgdOptions o;
      o.lr = 0.1;
      o.momentum = 0.9;
      o.dampening = 0.1;
      opt = std::make_unique<Sgd>(params, o);
      auto r = std::make_unique<testing::RefSgd>();
      r->momentum = 0.9;
      r->dampening = 0.1;
      ref = std::move(r);
    } else if (std::string(algo) == "adam") {
      AdamOptions o;
      o.lr = 0.01;
      opt = std::make_unique<Adam>(params, o);
      auto r = std::make_unique<testing::RefAdam>();
      r->momentum = 0.9;
      ref = std::move(r);
    } else {
      // A fast momentum decay, so that a wrong t in mu_t or a mu product advanced at a skipped
      // step shows well above the tolerance.
      NadamOptions o;
      o.lr = 0.01;
      o.momentum_decay = 0.2;
      opt = std::make_unique<Nadam>(params, o);
      auto r = std::make_unique<testing::RefNadam>();
      r->momentum = 0.9;
      r->momentum_decay = 0.2;
      ref = std::move(r);
    }
    ref->lr = opt->lr();
    std::vector<std::vector<double>> expect;
    for (const auto& [n, p] : params) expect.push_back(testing::values(p));
    std::vector<int> t(params.size(), 0);
    for (int s = 1; s <= 6; ++s) {
      testing::set_grads(params, s);
      // Parameter 1 has no gradient in steps 1 and 4, parameter 2 in step 3.
      std::vector<bool> has(params.size(), true);
      if (s == 1 || s == 4) has[1] = false;
      if (s == 3) has[2] = false;
      for (size_t i = 0; i < params.size(); ++i) {
        if (!has[i]) {
          params[i].second.zero_grad(/*set_to_none=*/true);
          continue;
        }
        ref->step(i, expect[i], testing::grad_values(i, params[i].second.numel(), s), ++t[i]);
      }
      opt->step();
    }
    EXPECT_EQ(opt->param_step_count("layer1.bn.bias"), 4);
    EXPECT_EQ(opt->param_step_count("fc.weight"), 5);
    for (size_t i = 0; i < params.size(); ++i)
      EXPECT_TRUE(testing::all_close(testing::values(params[i].second), expect[i], 1e-11, 1e-11))
          << params[i].first;
  }
}

// The parallel CPU loop and the chunked CUDA kernel see tensors bigger than one chunk.
TEST(Optimizer, LargeTensorMatchesReference) {
  NamedTensors params = testing::make_params(DType::kFloat32, Device::cpu(), /*big=*/true);
  std::vector<std::vector<double>> expect;
  for (const auto& [n, p] : params) expect.push_back(testing::values(p));
  AdamOptions o;
  o.lr = 0.01;
  Adam opt(params, o);
  testing::RefAdam ref;
  ref.lr = 0.01;
  ref.momentum = 0.9;
  for (int s = 1; s <= 3; ++s) {
    testing::set_grads(params, s);
    for (size_t i = 0; i < params.size(); ++i)
      ref.step(i, expect[i], testing::grad_values(i, params[i].second.numel(), s), s);
    opt.step();
  }
  for (size_t i = 0; i < params.size(); ++i)
    EXPECT_TRUE(testing::all_close(testing::values(params[i].second), expect[i], 2e-5, 2e-5));
}

// Every device against the CPU: the same optimizer, parameters and gradients; float32.
class OptimizerDevice : public testing::DeviceTest {};

TEST_P(OptimizerDevice, MatchesCpuForEveryOptimizer) {
  const std::pair<const char*, const char*> configs[] = {
      {"sgd", R"({"lr": 0.1, "momentum": 0.9, "nesterov": true, "weight_decay": 0.01})"},
      {"sgd", R"({"lr": 0.1, "momentum": 0.9, "dampening": 0.2})"},
      {"adam", R"({"lr": 0.01, "amsgrad": true, "weight_decay": 0.1})"},
      {"adamw", R"({"lr": 0.01, "no_decay_bn_bias": true,
                    "groups": [{"name": "head", "prefixes": ["fc."], "lr_mult": 3}]})"},
      {"rmsprop", R"({"lr": 0.01, "centered": true, "momentum": 0.5, "weight_decay": 0.1})"},
      {"nadam", R"({"lr": 0.01, "weight_decay": 0.1, "momentum_decay": 0.1,
                    "groups": [{"name": "head", "prefixes": ["fc."], "momentum": 0.8}]})"},
      {"nadam", R"({"lr": 0.01, "weight_decay": 0.05, "decoupled_weight_decay": true})"}};
  for (const auto& [name, json] : configs) {
    SCOPED_TRACE(json);
    NamedTensors cpu = testing::make_params(DType::kFloat32, Device::cpu(), /*big=*/true);
    NamedTensors dev = testing::make_params(DType::kFloat32, device(), /*big=*/true);
    auto a = optim::make_optimizer(name, cpu, json);
    auto b = optim::make_optimizer(name, dev, json);
    for (int s = 1; s <= 10; ++s) {
      a->set_lr(a->lr() * 0.9);
      b->set_lr(b->lr() * 0.9);
      testing::set_grads(cpu, s);
      testing::set_grads(dev, s);
      if (std::string(name) == "nadam") {
        // beta1 cycles and one parameter skips steps, so the per-parameter mu products differ
        // from one another and from the global step's.
        a->set_momentum(0.9 - 0.05 * (s % 3));
        b->set_momentum(0.9 - 0.05 * (s % 3));
        if (s == 4 || s == 7) {
          cpu[1].second.zero_grad(/*set_to_none=*/true);
          dev[1].second.zero_grad(/*set_to_none=*/true);
        }
      }
      a->step();
      b->step();
    }
    for (size_t i = 0; i < cpu.size(); ++i) {
      EXPECT_TRUE(testing::all_close(dev[i].second, cpu[i].second, 1e-5, 1e-6)) << cpu[i].first;
      if (std::string(name) == "nadam") {
        EXPECT_NEAR(b->state(cpu[i].first, "mu_product").item(),
                    a->state(cpu[i].first, "mu_product").item(), 1e-12)
            << cpu[i].first;
      }
    }
  }
}

CYCLONE_INSTANTIATE_DEVICE_TEST(OptimizerDevice);

// Configs accept any case ("SGD"); the library's registry takes the same names.
TEST(Registry, OptimizerNamesInAnyCase) {
  auto sgd =
      optim::make_optimizer("SGD", testing::make_params(DType::kFloat32), R"({"momentum": 0.9})");
  EXPECT_EQ(sgd->name(), "sgd");
  EXPECT_DOUBLE_EQ(sgd->momentum(), 0.9);
  EXPECT_EQ(optim::make_optimizer("AdamW", testing::make_params(DType::kFloat32))->name(), "adamw");
  try {
    optim::make_optimizer("ADMA", testing::make_params(DType::kFloat32));
    ADD_FAILURE() << "expected an unknown-optimizer error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown optimizer 'ADMA': did you mean 'adam'?"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace cyclone
