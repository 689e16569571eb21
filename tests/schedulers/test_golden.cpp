// Every policy with a PyTorch namesake against the numbers PyTorch's own scheduler produced
// (fixtures/golden.json, written by fixtures/make_golden.py).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "cyclone/schedulers/plateau.h"
#include "cyclone/schedulers/policy.h"

namespace cyclone::schedulers {
namespace {

Params load_golden() {
  const auto path = std::filesystem::path(__FILE__).parent_path() / "fixtures" / "golden.json";
  std::ifstream f(path);
  EXPECT_TRUE(f.good()) << "cannot read " << path;
  std::ostringstream text;
  text << f.rdbuf();
  return Params::parse(text.str());
}

// PyTorch computes most schedules recursively (lr *= factor each step) and we use closed forms,
// so the two differ by accumulated rounding: a few ulps per step over <= 80 steps. 1e-12 of the
// series' scale is far above that and far below any formula mistake (which shows at 1e-3).
void expect_series(const std::string& what, const std::vector<double>& got,
                   const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 0;
  for (double w : want) scale = std::max(scale, std::fabs(w));
  for (size_t t = 0; t < want.size(); ++t) {
    EXPECT_NEAR(got[t], want[t], 1e-12 * scale + 1e-15) << what << " at t=" << t;
  }
}

TEST(SchedulersGolden, MatchesPyTorch) {
  const Params doc = load_golden();
  std::set<std::string> covered;
  for (const Params& c : doc.objects("cases")) {
    const std::string name = c.text("name");
    SCOPED_TRACE(name + " (" + c.text("torch") + ")");
    const Params spec = c.object("spec");
    auto policy = make_policy(spec);
    covered.insert(policy->name());
    const std::vector<double> want = c.numbers("lr");
    std::vector<double> got;
    if (policy->metric_driven()) {
      const auto& plateau = dynamic_cast<const PlateauPolicy&>(*policy);
      PlateauState s = plateau.initial_state();
      for (double m : c.numbers("metrics")) {
        s = plateau.report(s, m);
        got.push_back(s.lr);
      }
      expect_series(name + " lr", got, want);
      continue;
    }
    for (size_t t = 0; t < want.size(); ++t) got.push_back(policy->lr(static_cast<int64_t>(t)));
    expect_series(name + " lr", got, want);
    if (c.has("momentum")) {
      std::vector<double> mom;
      for (size_t t = 0; t < want.size(); ++t) {
        const auto m = policy->momentum(static_cast<int64_t>(t));
        ASSERT_TRUE(m.has_value()) << name << " schedules no momentum";
        mom.push_back(*m);
      }
      expect_series(name + " momentum", mom, c.numbers("momentum"));
    } else {
      EXPECT_FALSE(policy->momentum(0).has_value()) << name;
    }
  }
  for (const char* n :
       {"step", "multistep", "exponential", "polynomial", "cosine", "sgdr", "triangular",
        "triangular2", "exp_range", "one_cycle", "linear", "sequence", "plateau"}) {
    EXPECT_TRUE(covered.count(n)) << "no golden case for PyTorch-namesake policy " << n;
  }
}

}  // namespace
}  // namespace cyclone::schedulers
