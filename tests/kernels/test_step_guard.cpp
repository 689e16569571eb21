// kernels/step_guard.h: the device-side decisions of a training step (skip, clip, halt, the range
// test's smoothing and divergence, float16's dynamic loss scaling), against a host model written
// out here, and CPU vs CUDA.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "common/test_util.h"
#include "cyclone/kernels/step_guard.h"

namespace cyclone {
namespace {

using kernels::StepGuardConfig;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

struct Out {
  std::vector<float> gate, scale, loss_scale;  // loss_scale: the scale written for the next step
  std::vector<double> state;
};

// How run() hands the step its inputs: the loss's dtype (float32 or float64), and whether grad_sq
// and correct are given at all (undefined: no gradient, nothing counted).
struct Inputs {
  DType loss_dtype = DType::kFloat32;
  bool grad_sq = true, correct = true;
};

// Runs the steps (loss, grad_sq, correct) on `d` and returns every gate and scale and the state.
Out run(Device d, const StepGuardConfig& cfg, const std::vector<double>& loss,
        const std::vector<double>& grad_sq, const std::vector<int>& correct,
        const Inputs& in = {}) {
  Context& ctx = Context::current(d);
  const Tensor state = kernels::step_guard_state(cfg.window, d);
  const Tensor gate = testing::nan_tensor({1}, DType::kFloat32, d);
  const Tensor scale = testing::nan_tensor({1}, DType::kFloat32, d);
  const Tensor loss_scale =
      cfg.loss_scaling ? testing::nan_tensor({1}, DType::kFloat32, d) : Tensor();
  Out out;
  for (size_t i = 0; i < loss.size(); ++i) {
    const float l = static_cast<float>(loss[i]), g = static_cast<float>(grad_sq[i]);
    const double l64 = loss[i];
    const int32_t c = correct[i];
    kernels::step_guard(ctx, cfg,
                        in.loss_dtype == DType::kFloat64
                            ? Tensor::from_host(&l64, {}, DType::kFloat64, d)
                            : Tensor::from_host(&l, {}, DType::kFloat32, d),
                        in.grad_sq ? Tensor::from_host(&g, {1}, DType::kFloat32, d) : Tensor(),
                        in.correct ? Tensor::from_host(&c, {1}, DType::kInt32, d) : Tensor(), state,
                        gate, scale, loss_scale);
    out.gate.push_back(gate.item<float>());
    out.scale.push_back(scale.item<float>());
    if (cfg.loss_scaling) out.loss_scale.push_back(loss_scale.item<float>());
  }
  out.state = state.to_vector<double>();
  return out;
}

const double* slot(const Out& o, const StepGuardConfig& cfg, int64_t k) {
  return o.state.data() + kernels::kStepGuardHeader + (k % cfg.window) * kernels::kStepGuardFields;
}

TEST(StepGuardCpu, SkipsClipsAndRecordsAsTheHostWould) {
  StepGuardConfig cfg;
  cfg.clip_norm = 1.0;
  cfg.max_skips = 3;
  cfg.window = 8;
  // norms: 0.5 (no clip), 2 (clip to 1/(2+1e-6)), NaN (skip), inf (skip), 3 (clip)
  const std::vector<double> loss = {2.0, 1.5, 1.2, 1.1, 1.0};
  const std::vector<double> gsq = {0.25, 4.0, kNaN, kInf, 9.0};
  const Out o = run(Device::cpu(), cfg, loss, gsq, {1, 2, 3, 4, 5});
  EXPECT_EQ(o.gate, (std::vector<float>{1, 1, 0, 0, 1}));
  EXPECT_FLOAT_EQ(o.scale[0], 1.f);
  EXPECT_FLOAT_EQ(o.scale[1], static_cast<float>(1.0 / (2.0 + 1e-6)));
  EXPECT_FLOAT_EQ(o.scale[2], 1.f);
  EXPECT_FLOAT_EQ(o.scale[4], static_cast<float>(1.0 / (3.0 + 1e-6)));
  EXPECT_EQ(o.state[kernels::kGuardCount], 5);
  EXPECT_EQ(o.state[kernels::kGuardApplied], 3);
  EXPECT_EQ(o.state[kernels::kGuardSkips], 0) << "a finite step resets the consecutive skips";
  EXPECT_EQ(o.state[kernels::kGuardHalted], 0);
  for (int64_t k = 0; k < 5; ++k) {
    EXPECT_FLOAT_EQ(slot(o, cfg, k)[kernels::kGuardLoss], static_cast<float>(loss[k]));
    EXPECT_EQ(slot(o, cfg, k)[kernels::kGuardCorrect], k + 1);
    EXPECT_EQ(slot(o, cfg, k)[kernels::kGuardGate], o.gate[k]);
  }
  EXPECT_DOUBLE_EQ(slot(o, cfg, 1)[kernels::kGuardNorm], 2.0);
  EXPECT_TRUE(std::isnan(slot(o, cfg, 2)[kernels::kGuardNorm]));
  // The smoothing (beta 0.98, debiased) over the applied steps only: 2.0, 1.5, 1.0.
  double avg = 0, pw = 1, sm = 0;
  for (double l : {2.0, 1.5, 1.0}) {
    avg = 0.98 * avg + 0.02 * l;
    pw *= 0.98;
    sm = avg / (1 - pw);
  }
  EXPECT_NEAR(slot(o, cfg, 4)[kernels::kGuardSmoothed], sm, 1e-12);
  EXPECT_TRUE(std::isnan(slot(o, cfg, 3)[kernels::kGuardSmoothed])) << "skipped: no point";
}

TEST(StepGuardCpu, NonFiniteLossHaltsAndGatesTheRestOff) {
  StepGuardConfig cfg;
  cfg.window = 4;
  const Out o = run(Device::cpu(), cfg, {1.0, kNaN, 0.5, 0.4}, {1, 1, 1, 1}, {0, 0, 0, 0});
  EXPECT_EQ(o.gate, (std::vector<float>{1, 0, 0, 0}));
  EXPECT_EQ(o.state[kernels::kGuardHalted], 1);
  EXPECT_EQ(o.state[kernels::kGuardReason], kernels::kHaltLoss);
  EXPECT_EQ(o.state[kernels::kGuardHaltStep], 1);
  // The range test counts a non-finite loss as a skip instead, halting after max_skips in a row.
  cfg.halt_on_nonfinite_loss = false;
  cfg.max_skips = 2;
  const Out r = run(Device::cpu(), cfg, {1.0, kNaN, 0.9, kNaN, kInf, 0.8}, {1, 1, 1, 1, 1, 1},
                    {0, 0, 0, 0, 0, 0});
  EXPECT_EQ(r.gate, (std::vector<float>{1, 0, 1, 0, 0, 0}));
  EXPECT_EQ(r.state[kernels::kGuardReason], kernels::kHaltSkips);
  EXPECT_EQ(r.state[kernels::kGuardHaltStep], 4);
}

TEST(StepGuardCpu, DivergenceRuleOfTheRangeTest) {
  StepGuardConfig cfg;
  cfg.window = 16;
  cfg.diverge_th = 4;
  cfg.halt_on_nonfinite_loss = false;
  std::vector<double> loss;
  for (int i = 0; i < 10; ++i) loss.push_back(1.0 - 0.05 * i);    // falling
  for (int i = 0; i < 6; ++i) loss.push_back(std::pow(10.0, i));  // blowing up
  const std::vector<double> gsq(loss.size(), 1.0);
  const Out o = run(Device::cpu(), cfg, loss, gsq, std::vector<int>(loss.size(), 0));
  // The host rule, written out: stop at the first smoothed > 4 * best.
  double avg = 0, pw = 1, best = kInf;
  int64_t expect = -1;
  for (size_t i = 0; i < loss.size() && expect < 0; ++i) {
    avg = 0.98 * avg + 0.02 * static_cast<float>(loss[i]);
    pw *= 0.98;
    const double sm = avg / (1 - pw);
    best = std::min(best, sm);
    if (sm > 4 * best) expect = static_cast<int64_t>(i);
  }
  ASSERT_GE(expect, 10);
  EXPECT_EQ(o.state[kernels::kGuardReason], kernels::kHaltDiverged);
  EXPECT_EQ(o.state[kernels::kGuardHaltStep], expect);
  EXPECT_EQ(o.gate[expect], 1.f) << "the diverging step itself was made, as on the host";
  EXPECT_EQ(o.gate[expect + 1], 0.f);
}

TEST(StepGuardCpu, BadArgumentsAreClearErrors) {
  Context& ctx = Context::current(Device::cpu());
  StepGuardConfig cfg;
  cfg.window = 2;
  const Tensor loss = Tensor::zeros({1});
  const Tensor gate = Tensor::zeros({1}), scale = Tensor::zeros({1});
  EXPECT_THROW(kernels::step_guard(ctx, cfg, loss, {}, {},
                                   kernels::step_guard_state(3, Device::cpu()), gate, scale),
               Error);
  const Tensor st = kernels::step_guard_state(2, Device::cpu());
  EXPECT_THROW(kernels::step_guard(ctx, cfg, Tensor::zeros({2}), {}, {}, st, gate, scale), Error);
  EXPECT_THROW(
      kernels::step_guard(ctx, cfg, loss, {}, {}, st, Tensor::zeros({1}, DType::kFloat64), scale),
      Error);
  EXPECT_THROW(kernels::step_guard_state(0, Device::cpu()), Error);
  // A 16-bit loss is refused at the boundary, naming the dtype and the fix (neither backend reads
  // one), on every device alike: the check precedes the dispatch.
  for (DType dt : {DType::kBFloat16, DType::kFloat16})
    testing::expect_error(
        [&] { kernels::step_guard(ctx, cfg, Tensor::zeros({1}, dt), {}, {}, st, gate, scale); },
        {"step_guard: loss has dtype", dtype_name(dt), "float32"});
  // float64 stays accepted.
  EXPECT_NO_THROW(
      kernels::step_guard(ctx, cfg, Tensor::zeros({1}, DType::kFloat64), {}, {}, st, gate, scale));
}

// float16 loss scaling: grad_sq is of gradients scaled by S. Overflows skip and halve S without
// counting toward max_skips while S > 1; growth_interval good steps double it; scale unscales.
TEST(StepGuardCpu, LossScalingUnscalesBacksOffAndGrows) {
  StepGuardConfig cfg;
  cfg.window = 16;
  cfg.max_skips = 2;
  cfg.loss_scaling = true;
  cfg.loss_scale.init_scale = 1024;
  cfg.loss_scale.growth_interval = 3;
  auto sq = [](double s, double norm) { return (s * norm) * (s * norm); };
  // S: 1024 | overflow x3 -> 512, 256, 128 | 3 good steps at 128 -> 256 | one more at 256.
  const std::vector<double> gsq = {sq(1024, 0.5), kInf,       kNaN,       kInf,
                                   sq(128, 2),    sq(128, 1), sq(128, 3), sq(256, 0.25)};
  const std::vector<double> loss(gsq.size(), 1.0);
  const Out o = run(Device::cpu(), cfg, loss, gsq, std::vector<int>(gsq.size(), 0));
  EXPECT_EQ(o.gate, (std::vector<float>{1, 0, 0, 0, 1, 1, 1, 1}));
  EXPECT_EQ(o.loss_scale, (std::vector<float>{1024, 512, 256, 128, 128, 128, 256, 256}));
  EXPECT_FLOAT_EQ(o.scale[0], 1.f / 1024);
  EXPECT_FLOAT_EQ(o.scale[4], 1.f / 128);
  EXPECT_FLOAT_EQ(o.scale[7], 1.f / 256);
  EXPECT_EQ(o.state[kernels::kGuardHalted], 0) << "overflows above scale 1 are not skips";
  EXPECT_EQ(o.state[kernels::kGuardOverflows], 3);
  EXPECT_EQ(o.state[kernels::kGuardApplied], 5);
  // The records hold the true norms and the scale each backward used.
  EXPECT_DOUBLE_EQ(slot(o, cfg, 0)[kernels::kGuardNorm], 0.5);
  EXPECT_DOUBLE_EQ(slot(o, cfg, 4)[kernels::kGuardNorm], 2.0);
  EXPECT_DOUBLE_EQ(slot(o, cfg, 7)[kernels::kGuardNorm], 0.25);
  EXPECT_EQ(slot(o, cfg, 3)[kernels::kGuardScaleUsed], 256);
  EXPECT_EQ(slot(o, cfg, 7)[kernels::kGuardScaleUsed], 256);
}

TEST(StepGuardCpu, LossScalingWithClippingClipsTheTrueNorm) {
  StepGuardConfig cfg;
  cfg.window = 2;
  cfg.clip_norm = 1.0;
  cfg.loss_scaling = true;
  cfg.loss_scale.init_scale = 64;
  const Out o = run(Device::cpu(), cfg, {1.0}, {(64.0 * 4) * (64.0 * 4)}, {0});
  EXPECT_EQ(o.gate[0], 1.f);
  EXPECT_NEAR(o.scale[0], (1.0 / (4 + 1e-6)) / 64, 1e-9);  // clip 4 -> 1, then unscale
}

TEST(StepGuardCpu, LossScalingOverflowsCountOnceTheScaleIsOne) {
  StepGuardConfig cfg;
  cfg.window = 4;
  cfg.max_skips = 2;
  cfg.loss_scaling = true;
  cfg.loss_scale.init_scale = 2;
  // S = 2 (an overflow that backs off), 1 (counts), 0.5 (counts: max_skips reached).
  const Out o = run(Device::cpu(), cfg, {1, 1, 1}, {kInf, kInf, kInf}, {0, 0, 0});
  EXPECT_EQ(o.state[kernels::kGuardHalted], 1);
  EXPECT_EQ(o.state[kernels::kGuardReason], kernels::kHaltSkips);
  EXPECT_EQ(o.state[kernels::kGuardHaltStep], 2);
  // A non-finite loss is not an overflow: the scale stays.
  StepGuardConfig rt = cfg;
  rt.halt_on_nonfinite_loss = false;
  rt.max_skips = 5;
  const Out n = run(Device::cpu(), rt, {kNaN, 1.0}, {kInf, 4.0 * 4.0}, {0, 0});
  EXPECT_EQ(n.loss_scale, (std::vector<float>{2, 2}));
  EXPECT_EQ(n.state[kernels::kGuardOverflows], 0);
}

// The device's gates, clip scales and ring records against the CPU's (NaN and inf where the CPU
// has them, the rest to double rounding).
void expect_same(const Out& a, const Out& b, const char* what) {
  EXPECT_EQ(a.gate, b.gate) << what;
  EXPECT_EQ(a.scale, b.scale) << what;
  ASSERT_EQ(a.state.size(), b.state.size()) << what;
  for (size_t i = 0; i < a.state.size(); ++i) {
    if (std::isnan(a.state[i]))
      EXPECT_TRUE(std::isnan(b.state[i])) << what << " state[" << i << "]";
    else if (std::isinf(a.state[i]))  // the record of a step with an infinite norm
      EXPECT_EQ(b.state[i], a.state[i]) << what << " state[" << i << "]";
    else
      EXPECT_NEAR(b.state[i], a.state[i], 1e-12 * std::max(1.0, std::abs(a.state[i])))
          << what << " state[" << i << "]";
  }
}

class StepGuardParity : public testing::DeviceTest {};

TEST_P(StepGuardParity, SameDecisionsAndRecordsAsCpu) {
  StepGuardConfig cfg;
  cfg.window = 5;  // fewer slots than steps: the ring wraps
  cfg.clip_norm = 0.7;
  cfg.max_skips = 4;
  cfg.diverge_th = 3;
  std::vector<double> loss = testing::random_values(12, 5, 0.5, 2.5);
  std::vector<double> gsq = testing::random_values(12, 6, 0.0, 2.0);
  loss[3] = kNaN;
  gsq[6] = kInf;
  std::vector<int> correct;
  for (int i = 0; i < 12; ++i) correct.push_back(i * 3);
  cfg.halt_on_nonfinite_loss = false;
  expect_same(run(Device::cpu(), cfg, loss, gsq, correct), run(device(), cfg, loss, gsq, correct),
              "");
}

TEST_P(StepGuardParity, LossScalingSameAsCpu) {
  StepGuardConfig cfg;
  cfg.window = 4;
  cfg.clip_norm = 0.7;
  cfg.max_skips = 3;
  cfg.loss_scaling = true;
  cfg.loss_scale.init_scale = 4096;
  cfg.loss_scale.growth_interval = 2;
  std::vector<double> gsq = testing::random_values(14, 9, 0.0, 1e6);
  gsq[2] = gsq[3] = gsq[9] = kInf;
  const std::vector<double> loss = testing::random_values(14, 10, 0.5, 2.5);
  const std::vector<int> correct(14, 1);
  const Out a = run(Device::cpu(), cfg, loss, gsq, correct);
  const Out b = run(device(), cfg, loss, gsq, correct);
  EXPECT_EQ(a.gate, b.gate);
  EXPECT_EQ(a.scale, b.scale);
  EXPECT_EQ(a.loss_scale, b.loss_scale);
  ASSERT_EQ(a.state.size(), b.state.size());
  for (size_t i = 0; i < a.state.size(); ++i) {
    if (!std::isnan(a.state[i])) {  // the smoothed loss of a skipped step is NaN on both
      EXPECT_NEAR(b.state[i], a.state[i], 1e-12 * std::max(1.0, std::abs(a.state[i])))
          << "state[" << i << "]";
    }
  }
}

// The other two instantiations of the CUDA kernel's inputs: step_guard_kernel<double> (a float64
// loss, read without rounding to float: the records hold the double) and the null grad_sq /
// correct pointers (undefined tensors: norm 0, so never clipped, and 0 recorded as the count).
// Against the CPU, and against what kernels/step_guard.h promises.
TEST_P(StepGuardParity, Float64LossAndNoGradSqOrCorrectSameAsCpu) {
  StepGuardConfig cfg;
  cfg.window = 4;  // fewer slots than steps: the ring wraps
  cfg.clip_norm = 0.7;
  cfg.max_skips = 3;
  cfg.diverge_th = 3;
  cfg.halt_on_nonfinite_loss = false;
  std::vector<double> loss = testing::random_values(9, 11, 0.5, 2.5);
  loss[4] = kNaN;
  std::vector<double> gsq = testing::random_values(9, 12, 0.0, 2.0);
  gsq[6] = kInf;
  std::vector<int> correct;
  for (int i = 0; i < 9; ++i) correct.push_back(i + 1);

  Inputs f64;
  f64.loss_dtype = DType::kFloat64;
  const Out a = run(Device::cpu(), cfg, loss, gsq, correct, f64);
  const Out b = run(device(), cfg, loss, gsq, correct, f64);
  expect_same(a, b, "float64 loss");
  EXPECT_EQ(b.gate, (std::vector<float>{1, 1, 1, 1, 0, 1, 0, 1, 1}));
  // The loss recorded in the ring is the double itself, not its float32 rounding (random doubles
  // are not float32 values; the ring holds steps 5..8).
  for (int64_t k = 5; k < 9; ++k)
    EXPECT_EQ(slot(b, cfg, k)[kernels::kGuardLoss], loss[k]) << "step " << k;
  EXPECT_EQ(slot(b, cfg, 8)[kernels::kGuardCorrect], 9);

  Inputs none;
  none.grad_sq = none.correct = false;
  const Out c = run(Device::cpu(), cfg, loss, gsq, correct, none);
  const Out d = run(device(), cfg, loss, gsq, correct, none);
  expect_same(c, d, "no grad_sq, no correct");
  // Norm 0 everywhere: only the NaN loss (a skip: halt_on_nonfinite_loss is off) gates a step
  // off, nothing is clipped, and the records hold norm 0 and count 0.
  EXPECT_EQ(d.gate, (std::vector<float>{1, 1, 1, 1, 0, 1, 1, 1, 1}));
  EXPECT_EQ(d.scale, std::vector<float>(9, 1.f));
  for (int64_t k = 5; k < 9; ++k) {
    EXPECT_EQ(slot(d, cfg, k)[kernels::kGuardNorm], 0.0) << "step " << k;
    EXPECT_EQ(slot(d, cfg, k)[kernels::kGuardCorrect], 0.0) << "step " << k;
  }
}

CYCLONE_INSTANTIATE_DEVICE_TEST(StepGuardParity);

}  // namespace
}  // namespace cyclone
