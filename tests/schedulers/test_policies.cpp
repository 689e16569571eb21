// Properties of every policy (bounds, periods, monotone phases, restarts), JSON round trips,
// resuming from step k, and the errors bad specs give.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "cyclone/core/error.h"
#include "cyclone/schedulers/plateau.h"
#include "cyclone/schedulers/policy.h"

namespace cyclone::schedulers {
namespace {

std::vector<double> lrs(const Policy& p, int64_t n, int64_t from = 0) {
  std::vector<double> out;
  for (int64_t t = from; t < from + n; ++t) out.push_back(p.lr(t));
  return out;
}

// One spec per policy, with non-default values wherever a field has a default.
const std::vector<std::string>& all_specs() {
  static const std::vector<std::string> specs = {
      R"({"policy": "constant", "lr": 0.05})",
      R"({"policy": "step", "lr": 0.1, "step_size": 10, "gamma": 0.5})",
      R"({"policy": "multistep", "lr": 0.1, "milestones": [3, 9], "gamma": 0.2})",
      R"({"policy": "exponential", "lr": 0.1, "gamma": 0.97})",
      R"({"policy": "inverse_time", "lr": 0.1, "k": 0.05})",
      R"({"policy": "polynomial", "lr": 0.1, "total_steps": 30, "power": 2, "end_lr": 0.001})",
      R"({"policy": "cosine", "lr": 0.1, "total_steps": 30, "min_lr": 0.001})",
      R"({"policy": "sgdr", "lr": 0.1, "min_lr": 0.001, "cycle_len": 7, "cycle_mult": 2})",
      R"({"policy": "triangular", "base_lr": 0.001, "max_lr": 0.01, "step_size": 5,
          "cycle_momentum": true})",
      R"({"policy": "triangular2", "base_lr": 0.001, "max_lr": 0.01, "step_size": 5})",
      R"({"policy": "exp_range", "base_lr": 0.001, "max_lr": 0.01, "step_size": 5,
          "gamma": 0.99, "scale_mode": "cycle"})",
      R"({"policy": "one_cycle", "max_lr": 0.4, "total_steps": 60, "pct_start": 0.25,
          "anneal": "linear", "three_phase": true, "div_factor": 20, "final_div_factor": 100,
          "base_momentum": 0.8, "max_momentum": 0.9})",
      R"({"policy": "range_test", "start_lr": 1e-7, "end_lr": 10, "num_steps": 100})",
      R"({"policy": "linear", "start_lr": 0.001, "end_lr": 0.1, "total_steps": 8})",
      R"({"policy": "sequence", "parts": [
          {"policy": "linear", "start_lr": 0, "end_lr": 0.1, "total_steps": 5, "steps": 5},
          {"policy": "sgdr", "lr": 0.1, "cycle_len": 6, "steps": 30},
          {"policy": "constant", "lr": 0.001}]})",
      R"({"policy": "plateau", "lr": 0.1, "factor": 0.5, "patience": 3, "threshold": 0.001,
          "cooldown": 2, "min_lr": 0.001, "mode": "max", "threshold_mode": "abs"})",
  };
  return specs;
}

TEST(SchedulersRegistry, EveryNameHasASpecAndRoundTrips) {
  std::vector<std::string> seen;
  for (const std::string& spec : all_specs()) {
    auto p = make_policy(spec);
    seen.push_back(p->name());
    // JSON round trip: printing and rebuilding gives the same object and the same numbers.
    const std::string json = p->to_json();
    auto q = make_policy(json);
    EXPECT_EQ(q->to_json(), json) << spec;
    auto r = make_policy(p->to_json(2));
    for (int64_t t = 0; t < 200; ++t) {
      EXPECT_EQ(p->lr(t), q->lr(t)) << json << " t=" << t;
      EXPECT_EQ(p->momentum(t), r->momentum(t)) << json << " t=" << t;
    }
    EXPECT_EQ(p->clone()->to_json(), json);
  }
  EXPECT_EQ(seen, std::vector<std::string>({"constant", "step", "multistep", "exponential",
                                            "inverse_time", "polynomial", "cosine", "sgdr",
                                            "triangular", "triangular2", "exp_range", "one_cycle",
                                            "range_test", "linear", "sequence", "plateau"}));
  auto names = policy_names();
  std::sort(names.begin(), names.end());
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(names, seen);
}

TEST(SchedulersRegistry, DefaultsAreFilledInWhenPrinted) {
  auto p = make_policy(R"({"policy": "one_cycle", "max_lr": 0.1, "total_steps": 100})");
  EXPECT_EQ(p->to_json(),
            R"({"policy":"one_cycle","max_lr":0.1,"total_steps":100,"pct_start":0.3,)"
            R"("div_factor":25.0,"final_div_factor":10000.0,"anneal":"cos","three_phase":false,)"
            R"("cycle_momentum":true,"base_momentum":0.85,"max_momentum":0.95})");
  auto s = make_policy(R"({"policy": "step", "lr": 0.1, "step_size": 3})");
  EXPECT_EQ(s->to_json(), R"({"policy":"step","lr":0.1,"step_size":3,"gamma":0.1})");
}

// Pure functions of the step: a policy rebuilt from its JSON and asked from step k on gives what
// the original gives from step k on, whatever was asked before.
TEST(SchedulersResume, FromStepKEqualsUninterrupted) {
  for (const std::string& spec : all_specs()) {
    auto p = make_policy(spec);
    const auto full = lrs(*p, 150);
    for (int64_t k : {1, 7, 31, 99}) {
      auto resumed = make_policy(p->to_json());
      const auto tail = lrs(*resumed, 150 - k, k);
      for (int64_t t = k; t < 150; ++t) {
        ASSERT_EQ(tail[t - k], full[t]) << spec << " resumed at " << k;
        ASSERT_EQ(resumed->momentum(t), p->momentum(t)) << spec;
      }
    }
  }
}

TEST(SchedulersResume, PlateauStateRoundTripsMidRun) {
  auto policy = make_policy(R"({"policy": "plateau", "lr": 0.1, "factor": 0.5, "patience": 1,
                                "cooldown": 1, "min_lr": 0.01})");
  const auto& plateau = dynamic_cast<const PlateauPolicy&>(*policy);
  const std::vector<double> metrics = {1, 0.9, 0.95, 0.96, 0.97, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1};
  PlateauState uninterrupted = plateau.initial_state();
  std::vector<double> want;
  for (double m : metrics) {
    uninterrupted = plateau.report(uninterrupted, m);
    want.push_back(uninterrupted.lr);
  }
  EXPECT_LT(want.back(), 0.1);
  for (size_t k = 0; k <= metrics.size(); ++k) {
    PlateauState s = plateau.initial_state();
    for (size_t i = 0; i < k; ++i) s = plateau.report(s, metrics[i]);
    // Save, rebuild policy and state from JSON, continue.
    const std::string saved = s.to_json();
    auto policy2 = make_policy(policy->to_json());
    const auto& plateau2 = dynamic_cast<const PlateauPolicy&>(*policy2);
    PlateauState r = PlateauState::from_json(saved);
    EXPECT_EQ(r, s) << saved;
    for (size_t i = k; i < metrics.size(); ++i) {
      r = plateau2.report(r, metrics[i]);
      EXPECT_EQ(r.lr, want[i]) << "resumed after " << k << " reports, report " << i;
    }
    EXPECT_EQ(r, uninterrupted);
  }
  EXPECT_EQ(PlateauState::from_json(plateau.initial_state().to_json()).best, INFINITY);
  EXPECT_THROW(PlateauState::from_json(R"({"lr": 0.1})"), Error);
}

TEST(SchedulersPlateau, ReducesAfterPatienceAndStopsAtMinLr) {
  auto policy = make_policy(R"({"policy": "plateau", "lr": 1, "factor": 0.1, "patience": 2,
                                "min_lr": 0.005})");
  const auto& p = dynamic_cast<const PlateauPolicy&>(*policy);
  EXPECT_TRUE(p.metric_driven());
  PlateauState s = p.initial_state();
  s = p.report(s, 1.0);  // first report always improves on +inf
  EXPECT_EQ(s.best, 1.0);
  s = p.report(s, 1.0);
  s = p.report(s, 1.0);
  EXPECT_EQ(s.lr, 1.0);  // 2 bad reports: not more than patience
  s = p.report(s, 1.0);
  EXPECT_DOUBLE_EQ(s.lr, 0.1);
  for (int i = 0; i < 20; ++i) s = p.report(s, 1.0);
  EXPECT_DOUBLE_EQ(s.lr, 0.005);
  EXPECT_EQ(p.lr(123), 1.0);  // lr(t) without reports is the starting rate
}

TEST(SchedulersProperties, CyclicBoundsPeriodAndMonotoneHalves) {
  auto tri = make_policy(
      R"({"policy": "triangular", "base_lr": 0.001, "max_lr": 0.006, "step_size": 8,
          "cycle_momentum": true, "base_momentum": 0.8, "max_momentum": 0.9})");
  for (int64_t t = 0; t < 200; ++t) {
    const double lr = tri->lr(t);
    EXPECT_GE(lr, 0.001 - 1e-15);
    EXPECT_LE(lr, 0.006 + 1e-15);
    EXPECT_NEAR(tri->lr(t + 16), lr, 1e-15) << "period 2*step_size at t=" << t;
    const int64_t phase = t % 16;
    if (phase < 8) {
      EXPECT_LT(lr, tri->lr(t + 1)) << "rising half at t=" << t;
    } else {
      EXPECT_GT(lr, tri->lr(t + 1)) << "falling half at t=" << t;
    }
    // Momentum moves against the rate and stays in [base, max].
    const double m = *tri->momentum(t);
    EXPECT_GE(m, 0.8 - 1e-15);
    EXPECT_LE(m, 0.9 + 1e-15);
    EXPECT_NEAR((lr - 0.001) / 0.005, (0.9 - m) / 0.1, 1e-12);
  }
  EXPECT_EQ(tri->lr(0), 0.001);
  EXPECT_NEAR(tri->lr(8), 0.006, 1e-15);

  // triangular2 halves the amplitude each cycle; exp_range decays it by gamma per step.
  auto tri2 =
      make_policy(R"({"policy": "triangular2", "base_lr": 0.0, "max_lr": 1.0, "step_size": 4})");
  EXPECT_NEAR(tri2->lr(4), 1.0, 1e-15);
  EXPECT_NEAR(tri2->lr(12), 0.5, 1e-15);
  EXPECT_NEAR(tri2->lr(20), 0.25, 1e-15);
  EXPECT_FALSE(tri2->momentum(3).has_value());  // cycle_momentum defaults to false
  auto er = make_policy(
      R"({"policy": "exp_range", "base_lr": 0.0, "max_lr": 1.0, "step_size": 4, "gamma": 0.9})");
  EXPECT_NEAR(er->lr(4), std::pow(0.9, 4), 1e-15);
  EXPECT_NEAR(er->lr(12), std::pow(0.9, 12), 1e-15);
  // scale_mode "cycle" (microDL / Keras CLR): amplitude gamma^cycle, cycle counted from 1.
  auto erc = make_policy(R"({"policy": "exp_range", "base_lr": 0.0, "max_lr": 1.0,
                             "step_size": 4, "gamma": 0.9, "scale_mode": "cycle"})");
  EXPECT_NEAR(erc->lr(4), 0.9, 1e-15);
  EXPECT_NEAR(erc->lr(12), 0.81, 1e-15);
  auto t2i = make_policy(R"({"policy": "triangular2", "base_lr": 0.0, "max_lr": 1.0,
                             "step_size": 4, "scale_mode": "iterations"})");
  EXPECT_NEAR(t2i->lr(4), std::pow(2.0, -3), 1e-15);
}

TEST(SchedulersProperties, OneCycleShape) {
  for (bool three : {false, true}) {
    for (const char* anneal : {"cos", "linear"}) {
      const std::string spec = std::string(R"({"policy": "one_cycle", "max_lr": 1.0,
          "total_steps": 100, "pct_start": 0.3, "anneal": ")") +
                               anneal + R"(", "three_phase": )" + (three ? "true" : "false") + "}";
      auto p = make_policy(spec);
      // Not exact: PyTorch's cos anneal gives 0.040000000000000036 at t=0, and so do we.
      EXPECT_NEAR(p->lr(0), 1.0 / 25, 1e-15);
      EXPECT_DOUBLE_EQ(p->lr(29), 1.0);  // the peak at pct_start·T − 1
      EXPECT_NEAR(p->lr(99), 1.0 / 25 / 1e4, 1e-15);
      EXPECT_EQ(p->lr(150), p->lr(99));  // holds after the last step
      EXPECT_DOUBLE_EQ(*p->momentum(0), 0.95);
      EXPECT_DOUBLE_EQ(*p->momentum(29), 0.85);
      EXPECT_DOUBLE_EQ(*p->momentum(99), 0.95);
      for (int64_t t = 0; t < 29; ++t) EXPECT_LT(p->lr(t), p->lr(t + 1)) << spec << t;
      for (int64_t t = 29; t < 99; ++t) EXPECT_GT(p->lr(t), p->lr(t + 1)) << spec << t;
      if (three) {
        EXPECT_NEAR(p->lr(58), 1.0 / 25, 1e-15);  // back to initial at 2·pct·T − 2
      }
    }
  }
}

TEST(SchedulersProperties, CosineSgdrAndRestarts) {
  auto cos = make_policy(R"({"policy": "cosine", "lr": 0.1, "total_steps": 20, "min_lr": 0.01})");
  EXPECT_EQ(cos->lr(0), 0.1);
  EXPECT_NEAR(cos->lr(20), 0.01, 1e-15);
  for (int64_t t = 0; t < 20; ++t) EXPECT_GT(cos->lr(t), cos->lr(t + 1));
  for (int64_t t = 0; t < 60; ++t) EXPECT_NEAR(cos->lr(t + 40), cos->lr(t), 1e-15);  // as PyTorch

  auto sgdr = make_policy(R"({"policy": "sgdr", "lr": 0.1, "cycle_len": 4, "cycle_mult": 2})");
  EXPECT_EQ(sgdr->restarts(100), (std::vector<int64_t>{4, 12, 28, 60}));
  EXPECT_EQ(sgdr->restarts(60), (std::vector<int64_t>{4, 12, 28}));
  for (int64_t r : sgdr->restarts(100)) {
    EXPECT_EQ(sgdr->lr(r), 0.1);
    EXPECT_LT(sgdr->lr(r - 1), 0.1 * 0.15);  // the end of a cycle is near min_lr
  }
  auto flat = make_policy(R"({"policy": "sgdr", "lr": 0.1, "cycle_len": 10})");
  EXPECT_EQ(flat->restarts(35), (std::vector<int64_t>{10, 20, 30}));
  for (int64_t t = 0; t < 50; ++t) EXPECT_EQ(flat->lr(t + 10), flat->lr(t));
  EXPECT_TRUE(cos->restarts(100).empty());
  // A huge step must not overflow the cycle walk.
  EXPECT_GE(sgdr->lr(int64_t{1} << 60), 0.0);
}

TEST(SchedulersProperties, DecaysAndSweeps) {
  auto step = make_policy(R"({"policy": "step", "lr": 1, "step_size": 3, "gamma": 0.5})");
  EXPECT_EQ(lrs(*step, 7), (std::vector<double>{1, 1, 1, 0.5, 0.5, 0.5, 0.25}));
  auto ms = make_policy(R"({"policy": "multistep", "lr": 1, "milestones": [2, 4]})");
  EXPECT_EQ(ms->lr(1), 1);
  EXPECT_NEAR(ms->lr(2), 0.1, 1e-16);
  EXPECT_NEAR(ms->lr(100), 0.01, 1e-16);
  auto inv = make_policy(R"({"policy": "inverse_time", "lr": 1, "k": 0.5})");
  EXPECT_EQ(inv->lr(0), 1);
  EXPECT_EQ(inv->lr(2), 0.5);
  auto poly = make_policy(
      R"({"policy": "polynomial", "lr": 1, "total_steps": 10, "power": 2, "end_lr": 0.1})");
  EXPECT_EQ(poly->lr(0), 1);
  EXPECT_NEAR(poly->lr(5), 0.9 * 0.25 + 0.1, 1e-15);
  EXPECT_EQ(poly->lr(10), 0.1);
  EXPECT_EQ(poly->lr(1000), 0.1);
  auto exp_sweep =
      make_policy(R"({"policy": "range_test", "start_lr": 1e-6, "end_lr": 1, "num_steps": 7})");
  EXPECT_EQ(exp_sweep->lr(0), 1e-6);
  EXPECT_EQ(exp_sweep->lr(6), 1.0);
  EXPECT_NEAR(exp_sweep->lr(3), 1e-3, 1e-15);  // a decade per step
  EXPECT_EQ(exp_sweep->lr(50), 1.0);
  // Bounds whose ratio overflows a double still ramp a decade at a time (log-space ramp).
  auto wide = make_policy(
      R"({"policy": "range_test", "start_lr": 1e-300, "end_lr": 1e10, "num_steps": 32})");
  for (int64_t t = 0; t < 32; ++t) {
    const double lr = wide->lr(t);
    ASSERT_TRUE(std::isfinite(lr) && lr > 0) << t;
    EXPECT_NEAR(std::log10(lr), -300 + 10 * t, 1e-9) << t;
  }
  auto top =
      make_policy(R"({"policy": "range_test", "start_lr": 1e-4, "end_lr": 1e308, "num_steps": 3})");
  EXPECT_NEAR(std::log10(top->lr(1)), 152, 1e-9);
  EXPECT_EQ(top->lr(2), 1e308);
  auto lin_sweep = make_policy(R"({"policy": "range_test", "start_lr": 0.1, "end_lr": 0.7,
                                   "num_steps": 4, "mode": "linear"})");
  EXPECT_NEAR(lin_sweep->lr(1), 0.3, 1e-15);
  EXPECT_EQ(lin_sweep->lr(3), 0.7);
  auto lin = make_policy(R"({"policy": "linear", "start_lr": 0, "end_lr": 1, "total_steps": 4})");
  EXPECT_EQ(lrs(*lin, 6), (std::vector<double>{0, 0.25, 0.5, 0.75, 1, 1}));
}

TEST(SchedulersProperties, SequenceRunsPartsOnLocalSteps) {
  auto seq = make_policy(R"({"policy": "sequence", "parts": [
      {"policy": "linear", "start_lr": 0, "end_lr": 1, "total_steps": 4, "steps": 4},
      {"policy": "sgdr", "lr": 1, "cycle_len": 5, "steps": 10},
      {"policy": "one_cycle", "max_lr": 2, "total_steps": 20}]})");
  auto sgdr = make_policy(R"({"policy": "sgdr", "lr": 1, "cycle_len": 5})");
  auto oc = make_policy(R"({"policy": "one_cycle", "max_lr": 2, "total_steps": 20})");
  EXPECT_EQ(seq->lr(0), 0);
  EXPECT_EQ(seq->lr(3), 0.75);
  for (int64_t t = 4; t < 14; ++t) EXPECT_EQ(seq->lr(t), sgdr->lr(t - 4));
  for (int64_t t = 14; t < 40; ++t) {
    EXPECT_EQ(seq->lr(t), oc->lr(t - 14));
    EXPECT_EQ(seq->momentum(t), oc->momentum(t - 14));
  }
  EXPECT_FALSE(seq->momentum(5).has_value());
  EXPECT_EQ(seq->restarts(100), (std::vector<int64_t>{9}));  // sgdr's restart at its step 5
}

// Bad specs are errors that name the offending field.
void expect_error(const std::string& spec, const std::string& needle) {
  try {
    make_policy(spec);
    ADD_FAILURE() << "no error for " << spec;
  } catch (const Error& e) {
    EXPECT_NE(e.message().find(needle), std::string::npos)
        << "error for " << spec << " is '" << e.message() << "', expected it to mention '" << needle
        << "'";
  }
}

TEST(SchedulersErrors, NameTheField) {
  expect_error(R"({"policy": "cosin", "lr": 0.1})", "unknown policy 'cosin'");
  expect_error(R"({"lr": 0.1})", "'policy'");
  expect_error(R"({"policy": 3})", "'policy'");
  expect_error("[1, 2]", "JSON object");
  expect_error("{\"policy\": ", "not valid JSON");
  // 400000 levels in a field's value crashed the tree's recursion (SIGSEGV); 64 are allowed.
  expect_error(R"({"policy": "constant", "lr": )" + std::string(400000, '[') +
                   std::string(400000, ']') + "}",
               "spec is nested deeper than 64 levels");
  expect_error(
      R"({"policy": "constant", "lr": )" + std::string(63, '[') + "1" + std::string(63, ']') + "}",
      "field 'lr' must be a number");
  expect_error(R"({"policy": "constant"})", "missing field 'lr'");
  expect_error(R"({"policy": "constant", "lr": -0.1})", "field 'lr'");
  expect_error(R"({"policy": "constant", "lr": "0.1"})", "field 'lr' must be a number");
  expect_error(R"({"policy": "constant", "lr": 0.1, "gama": 0.1})", "unknown field 'gama'");
  expect_error(R"({"policy": "step", "lr": 0.1, "step_size": 0})", "field 'step_size'");
  expect_error(R"({"policy": "step", "lr": 0.1, "step_size": 2.5})", "must be an integer");
  expect_error(R"({"policy": "step", "lr": 0.1, "step_size": 2, "gamma": 0})", "field 'gamma'");
  expect_error(R"({"policy": "multistep", "lr": 0.1, "milestones": [5, 3]})", "field 'milestones'");
  expect_error(R"({"policy": "exponential", "lr": 0.1})", "missing field 'gamma'");
  expect_error(R"({"policy": "cosine", "lr": 0.1, "total_steps": 0})", "field 'total_steps'");
  expect_error(R"({"policy": "cosine", "lr": 0.1, "total_steps": -5})", "field 'total_steps'");
  expect_error(R"({"policy": "polynomial", "lr": 0.1, "total_steps": 5, "end_lr": -1})",
               "field 'end_lr'");
  expect_error(R"({"policy": "sgdr", "lr": 0.1, "cycle_len": 5, "cycle_mult": 0})",
               "field 'cycle_mult'");
  expect_error(R"({"policy": "triangular", "base_lr": 0.1, "max_lr": 0.01, "step_size": 5})",
               "field 'max_lr' must be >= base_lr");
  expect_error(R"({"policy": "exp_range", "base_lr": 0.01, "max_lr": 0.1, "step_size": 5,
                   "scale_mode": "epoch"})",
               "field 'scale_mode'");
  // gamma > 1 grew the amplitude without bound (lr_schedule printed rates past 4e5 by step 38).
  expect_error(R"({"policy": "exp_range", "base_lr": 0.01, "max_lr": 0.1, "step_size": 5,
                   "gamma": 1.5})",
               "field 'gamma' must be in (0, 1]");
  expect_error(R"({"policy": "one_cycle", "max_lr": 0.1, "total_steps": 100, "pct_start": 1})",
               "field 'pct_start' must be in (0, 1)");
  expect_error(R"({"policy": "one_cycle", "max_lr": 0.1, "total_steps": 100, "pct_start": 0})",
               "field 'pct_start'");
  expect_error(R"({"policy": "one_cycle", "max_lr": 0.1, "total_steps": 0})",
               "field 'total_steps'");
  expect_error(R"({"policy": "one_cycle", "max_lr": 0.1, "total_steps": 3})", "field 'pct_start'");
  expect_error(R"({"policy": "one_cycle", "max_lr": 0.1, "total_steps": 100, "anneal": "exp"})",
               "field 'anneal'");
  expect_error(R"({"policy": "one_cycle", "max_lr": 0.1, "total_steps": 100,
                   "three_phase": true, "pct_start": 0.6})",
               "field 'pct_start'");
  expect_error(R"({"policy": "one_cycle", "max_lr": 0.1, "total_steps": 100,
                   "base_momentum": 0.99})",
               "field 'max_momentum'");
  expect_error(R"({"policy": "range_test", "start_lr": 0, "end_lr": 1, "num_steps": 10})",
               "field 'start_lr'");
  expect_error(R"({"policy": "range_test", "start_lr": 0.1, "end_lr": 1, "num_steps": 1})",
               "field 'num_steps'");
  expect_error(R"({"policy": "sequence", "parts": []})", "field 'parts'");
  expect_error(R"({"policy": "sequence", "parts": [{"policy": "constant", "lr": 1},
                   {"policy": "constant", "lr": 2}]})",
               "parts[0]: missing field 'steps'");
  expect_error(R"({"policy": "sequence", "parts": [{"policy": "constant", "lr": 1, "steps": 3},
                   {"policy": "cosine", "lr": -1, "total_steps": 4}]})",
               "field 'lr'");
  expect_error(R"({"policy": "sequence", "parts": [{"policy": "constant", "lr": 1, "steps": 3},
                   {"policy": "plateau", "lr": 1}]})",
               "plateau");
  expect_error(R"({"policy": "plateau", "lr": 0.1, "factor": 1.5})", "field 'factor'");
  expect_error(R"({"policy": "constant", "lr": 0.1, "momentum": 1.5})", "field 'momentum'");
  EXPECT_THROW(make_policy(R"({"policy": "constant", "lr": 0.1})")->lr(-1), Error);
}

// An unknown field lists every field the policy takes, present or not, and the nearest of them.
TEST(SchedulersErrors, UnknownFieldListsTheValidFieldsAndTheClosest) {
  expect_error(R"({"policy": "sgdr", "lr": 0.1, "cycle_len": 10, "cycle_mul": 2})",
               "unknown field 'cycle_mul': did you mean 'cycle_mult'? (known: cycle_len, "
               "cycle_mult, lr, min_lr, momentum, policy)");
  expect_error(R"({"policy": "one_cycle", "max_lr": 0.1, "total_steps": 100, "pct_strat": 0.3})",
               "did you mean 'pct_start'?");
  expect_error(R"({"policy": "one_cycle", "max_lr": 0.1, "total_steps": 100, "pct_strat": 0.3})",
               "anneal, base_momentum, cycle_momentum, div_factor, final_div_factor, max_lr, "
               "max_momentum, momentum, pct_start, policy, three_phase, total_steps)");
  try {
    make_policy(R"({"policy": "constant", "lr": 0.1, "xyzzy": 1})");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.message().find("did you mean"), std::string::npos) << e.message();
    EXPECT_NE(e.message().find("(known: lr, momentum, policy)"), std::string::npos) << e.message();
  }
}

// A misspelt required field is the typo, not a missing field: the unknown key is named with the
// field it stands for. A missing field with no look-alike is still "missing".
TEST(SchedulersErrors, MisspeltRequiredFieldIsNamedAsTheTypo) {
  expect_error(R"({"policy": "triangular", "base_lr": 0.001, "max_lr": 0.1, "step_sz": 2})",
               "policy 'triangular': unknown field 'step_sz': did you mean 'step_size'?");
  expect_error(R"({"policy": "constant", "lrr": 0.1})", "unknown field 'lrr': did you mean 'lr'?");
  expect_error(R"({"policy": "triangular", "base_lr": 0.001, "max_lr": 0.1, "xyzzy": 2})",
               "missing field 'step_size'");
  // Fields the policy reads later are not taken for typos of an earlier missing one.
  expect_error(R"({"policy": "one_cycle", "total_steps": 100, "div_factor": 10})",
               "missing field 'max_lr'");
}

TEST(SchedulersParams, SpecMomentum) {
  EXPECT_EQ(spec_momentum(Params::parse(R"({"policy": "constant", "lr": 1})")), 0.9);
  EXPECT_EQ(spec_momentum(Params::parse(R"({"policy": "constant", "lr": 1, "momentum": 0.5})")),
            0.5);
  EXPECT_NO_THROW(make_policy(R"({"policy": "constant", "lr": 1, "momentum": 0.5})"));
}

}  // namespace
}  // namespace cyclone::schedulers
