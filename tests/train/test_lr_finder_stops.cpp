// The range test stopped in the middle by Ctrl-C / SIGTERM.
#include <gtest/gtest.h>

#include <cmath>
#include <csignal>
#include <vector>

#include "common/test_util.h"
#include "cyclone/train/interrupt.h"
#include "cyclone/train/lr_finder.h"
#include "train_fixture.h"

namespace cyclone::train {
namespace {

std::vector<double> weights_of(const Module& m) {
  std::vector<double> v;
  for (const auto& [n, t] : m.state_dict()) {
    const auto x = ::cyclone::testing::values(t);
    v.insert(v.end(), x.begin(), x.end());
  }
  return v;
}

// A model that sends itself SIGINT in its `at`-th forward pass, as a user pressing Ctrl-C while
// that step runs.
class SignalsAt final : public Module {
 public:
  SignalsAt(std::shared_ptr<Module> inner, int at)
      : inner_(register_module("inner", std::move(inner))), at_(at) {}
  Tensor forward(const Tensor& x) override {
    if (++calls_ == at_) std::raise(SIGINT);
    return (*inner_)(x);
  }
  std::string type_name() const override { return "SignalsAt"; }

 private:
  std::shared_ptr<Module> inner_;
  int at_, calls_ = 0;
};

TEST(LrFinderStopTest, StopRequestedByAStepEndsTheTestAfterIt) {
  LrFinderOptions o;
  o.num_steps = 100;
  o.diverge_th = 0;
  o.progress_mode = -2;
  int calls = 0;
  const LrFinderResult r = run_range_test(o, [&](double) {
    ++calls;
    RangeTestStep s{1.0 / calls, true, 1};
    s.stop = calls == 7;
    return s;
  });
  EXPECT_TRUE(r.interrupted);
  EXPECT_FALSE(r.diverged);
  EXPECT_EQ(calls, 7);
  EXPECT_EQ(r.stopped_at, 7);
  EXPECT_EQ(r.lrs.size(), 7u);  // every step that ran is a point of the partial curve
}

// A real SIGINT during find_lr, read step by step and read back every 4 steps: the test stops
// after the step under way, says it was interrupted, keeps its points, puts the model back, and
// the process lives on (the handler was installed for the range test, not only for training).
TEST(LrFinderStopTest, SigintDuringFindLrStopsItCleanly) {
  for (const int64_t sync_every : {1, 4}) {
    testing::Problem p;
    SignalsAt model(p.model, 10);
    LrFinderOptions o;
    o.num_steps = 50;
    o.diverge_th = 0;
    o.progress_mode = -2;
    o.sync_every = sync_every;
    const std::vector<double> before = weights_of(model);
    const LrFinderResult r = find_lr(model, *p.opt, *p.train, o);
    EXPECT_TRUE(r.interrupted) << "sync_every " << sync_every;
    EXPECT_FALSE(r.diverged);
    EXPECT_EQ(r.stopped_at, 10) << "sync_every " << sync_every;
    EXPECT_EQ(r.lrs.size(), 10u);
    EXPECT_EQ(weights_of(model), before);
    EXPECT_TRUE(interrupt_requested());
    EXPECT_EQ(interrupt_signal(), SIGINT);
    clear_interrupt();
  }
}

TEST(LrFinderStopTest, AnInterruptedRepeatIsTheLastOne) {
  testing::Problem p;
  SignalsAt model(p.model, 15);  // in the second of three tests of 12 steps
  LrFinderOptions o;
  o.num_steps = 12;
  o.diverge_th = 0;
  o.progress_mode = -2;
  const RepeatedLrFinder rep = find_lr_repeated(model, *p.opt, *p.train, o, 3);
  ASSERT_EQ(rep.runs.size(), 2u);
  EXPECT_FALSE(rep.runs[0].interrupted);
  EXPECT_TRUE(rep.runs[1].interrupted);
  EXPECT_EQ(rep.runs[1].stopped_at, 3);
  clear_interrupt();
}

}  // namespace
}  // namespace cyclone::train
