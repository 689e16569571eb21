// Every registered optimizer against the parameter trajectories torch.optim itself produced
// (fixtures/golden.json, written by fixtures/make_golden.py): same float64 parameters, the same
// gradients, lr / momentum (Adam's beta1) changed before every step through set_lr /
// set_momentum, parameter groups and no_decay_bn_bias, and steps where a parameter has no
// gradient. Every parameter is compared after every step. NAdam's cases were written without torch
// on the machine, by make_golden.py's float64 transcription of torch.optim.NAdam's
// _single_tensor_nadam (their "source": "transcription"; "torch" once regenerated with PyTorch).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "common/test_util.h"
#include "cyclone/optim/optimizer.h"

namespace cyclone {
namespace {

using json = nlohmann::json;

json load_golden() {
  const auto path = std::filesystem::path(__FILE__).parent_path() / "fixtures" / "golden.json";
  std::ifstream f(path);
  EXPECT_TRUE(f.good()) << "cannot read " << path;
  std::ostringstream text;
  text << f.rdbuf();
  return json::parse(text.str());
}

// Both sides do the same float64 operations in (nearly) the same order; they differ only where
// an expression is grouped differently (e.g. lr / (1 - beta1^t) * m / denom vs torch's addcdiv
// with a precomputed step size, torch's lerp_ for the moving averages), a few ulps per step: with
// PyTorch 2.15 the worst difference is 1.5e-16 of the parameters' scale (~1). 1e-12 leaves
// headroom for another libm or PyTorch version yet is orders below what a formula slip, a wrong
// bias correction or a skipped state update produces (>= 1e-3 here).
constexpr double kRtol = 1e-12;
constexpr double kAtol = 1e-12;

TEST(OptimGolden, MatchesTorchOptim) {
  const json doc = load_golden();
  SCOPED_TRACE(doc.at("generator").get<std::string>());
  const json& params0 = doc.at("params");
  const json& grads = doc.at("grads");
  std::set<std::string> covered;
  double worst = 0;
  for (const json& c : doc.at("cases")) {
    const std::string name = c.at("name").get<std::string>();
    const std::string optimizer = c.at("optimizer").get<std::string>();
    SCOPED_TRACE(name + " (torch.optim." + c.at("torch").get<std::string>() + ", " +
                 c.value("source", std::string("torch")) + ")");
    covered.insert(optimizer);

    NamedTensors params;
    std::vector<Tensor> grad_buffers;
    for (const json& p : params0) {
      const Shape shape(p.at("shape").get<std::vector<int64_t>>());
      Tensor t =
          Tensor::from_vector(p.at("values").get<std::vector<double>>(), shape, Device::cpu());
      t.set_requires_grad(true);
      params.emplace_back(p.at("name").get<std::string>(), t);
      grad_buffers.push_back(Tensor::zeros(shape, DType::kFloat64, Device::cpu()));
    }
    auto opt = optim::make_optimizer(optimizer, params, c.at("options").dump());
    ASSERT_EQ(opt->name(), optimizer);

    std::set<std::pair<int, size_t>> no_grad;
    if (c.contains("no_grad"))
      for (const json& ng : c.at("no_grad"))
        no_grad.insert({ng[0].get<int>(), ng[1].get<size_t>()});
    std::vector<int64_t> expected_steps(params.size(), 0);

    const json& want = c.at("params");
    bool case_failed = false;
    ASSERT_EQ(want.size(), grads.size());
    for (size_t si = 0; si < want.size(); ++si) {
      const int s = static_cast<int>(si) + 1;
      if (c.contains("lr")) opt->set_lr(c.at("lr")[si].get<double>());
      if (c.contains("momentum")) opt->set_momentum(c.at("momentum")[si].get<double>());
      for (size_t i = 0; i < params.size(); ++i) {
        const Tensor& p = params[i].second;
        if (no_grad.count({s, i})) {
          p.set_grad(Tensor());
          continue;
        }
        ++expected_steps[i];
        grad_buffers[i].copy_from(
            Tensor::from_vector(grads[si][i].get<std::vector<double>>(), p.shape(), Device::cpu()));
        p.set_grad(grad_buffers[i]);
      }
      opt->step();
      for (size_t i = 0; i < params.size(); ++i) {
        const std::vector<double> got = testing::values(params[i].second);
        const std::vector<double> ref = want[si][i].get<std::vector<double>>();
        ASSERT_EQ(got.size(), ref.size());
        for (size_t k = 0; k < ref.size(); ++k)
          worst = std::max(worst, std::fabs(got[k] - ref[k]) / (1 + std::fabs(ref[k])));
        const auto close = testing::all_close(got, ref, kRtol, kAtol);
        EXPECT_TRUE(close) << params[i].first << " after step " << s;
        case_failed = case_failed || !close;
        EXPECT_EQ(opt->param_step_count(params[i].first), expected_steps[i])
            << params[i].first << " after step " << s;
      }
      if (case_failed) break;  // the first step that disagrees is the one to act on
    }
  }
  std::cout << "worst |cyclone - torch| / (1 + |torch|) over all cases: " << worst << "\n";
  for (const std::string& n : optim::optimizer_names())
    EXPECT_TRUE(covered.count(n)) << "no golden case for registered optimizer " << n;
}

}  // namespace
}  // namespace cyclone
