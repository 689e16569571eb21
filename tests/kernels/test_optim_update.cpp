// The raw fused optimizer updates (kernels/optim_update.h): CPU against a naive scalar loop,
// CPU-vs-CUDA parity of the fused kernel and of the per-tensor path over every algorithm and
// option, odd sizes (1, 31, 1025, more than one chunk), misaligned views (no float4 path), several
// groups and step lags in one launch, and device scalars rewritten between launches. NAdam's mu
// product pairs are compared too: the fused kernel reads and advances them across chunks.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "common/test_util.h"
#include "cyclone/kernels/optim_update.h"

namespace cyclone {
namespace {

using kernels::OptimAlgo;
using kernels::OptimConfig;
using kernels::OptimGroupParams;
using kernels::OptimPlan;
using kernels::OptimScalars;
using kernels::OptimScalarsBuffer;
using kernels::OptimTensorArgs;

struct Config {
  const char* name;
  OptimConfig cfg;
};

std::vector<Config> all_configs() {
  std::vector<Config> out;
  auto add = [&](const char* name, OptimAlgo algo, auto&& edit) {
    OptimConfig c;
    c.algo = algo;
    edit(c);
    out.push_back({name, c});
  };
  add("sgd", OptimAlgo::kSgd, [](OptimConfig&) {});
  add("sgd_momentum", OptimAlgo::kSgd, [](OptimConfig& c) {
    c.has_momentum_buffer = true;
    c.dampening = 0.1;
  });
  add("sgd_nesterov", OptimAlgo::kSgd, [](OptimConfig& c) {
    c.has_momentum_buffer = true;
    c.nesterov = true;
  });
  add("adam", OptimAlgo::kAdam, [](OptimConfig& c) { c.eps = 1e-6; });
  add("adam_amsgrad", OptimAlgo::kAdam, [](OptimConfig& c) { c.amsgrad = true; });
  add("adamw", OptimAlgo::kAdam, [](OptimConfig& c) { c.decoupled = true; });
  add("rmsprop", OptimAlgo::kRmsprop, [](OptimConfig&) {});
  add("rmsprop_centered_momentum", OptimAlgo::kRmsprop, [](OptimConfig& c) {
    c.centered = true;
    c.has_momentum_buffer = true;
  });
  add("nadam", OptimAlgo::kNadam, [](OptimConfig& c) { c.momentum_decay = 0.1; });
  add("nadamw", OptimAlgo::kNadam, [](OptimConfig& c) {
    c.decoupled = true;
    c.eps = 1e-6;
  });
  return out;
}

// 0: an empty tensor (NAdam still advances its mu product; the others leave it alone).
const int64_t kSizes[] = {0, 1, 31, 1025, kernels::kOptimChunk + 7};

// Tensors of every size on `device`; the last one a view starting one element in (misaligned).
// State starts positive (a square average must be >= 0, and >= grad_avg^2 when centered); NAdam's
// mu product pairs start at two different values in (0, 1), so reading the wrong entry shows.
std::vector<OptimTensorArgs> make_tensors(const OptimConfig& cfg, Device device, uint64_t seed,
                                          DType dtype = DType::kFloat32) {
  const unsigned mask = kernels::optim_slot_mask(cfg);
  std::vector<OptimTensorArgs> out;
  int k = 0;
  for (int64_t n : kSizes) {
    for (bool misaligned : {false, true}) {
      OptimTensorArgs t;
      const int64_t m = n + (misaligned ? 1 : 0);
      auto make = [&](double lo, double hi) {
        Tensor full = testing::random_tensor({m}, seed + 17 * k++, dtype, device, lo, hi);
        return misaligned ? full.slice(1, m) : full;
      };
      t.param = make(-1, 1);
      t.grad = make(-1, 1);
      for (int s = 0; s < kernels::kOptimMaxSlots; ++s)
        if (mask & (1u << s))
          t.state[s] = make(s == 2 && cfg.algo == OptimAlgo::kRmsprop ? -0.1 : 0.5,
                            s == 2 && cfg.algo == OptimAlgo::kRmsprop ? 0.1 : 1.0);
      if (kernels::optim_has_mu_product(cfg))
        t.mu_product = Tensor::from_vector(std::vector<double>{0.6, 0.3 + 0.01 * k}, {2}, device);
      t.group = static_cast<int32_t>(out.size() % 3);
      t.step_lag = static_cast<double>(out.size() % 2);
      out.push_back(std::move(t));
    }
  }
  return out;
}

std::vector<OptimGroupParams> make_groups() {
  std::vector<OptimGroupParams> g(3);
  g[0].lr_mult = 1;
  g[1].lr_mult = 0.1;
  g[1].weight_decay = 0.05;
  g[2].lr_mult = 2;
  g[2].weight_decay = 0.01;
  g[2].has_momentum = 1;
  g[2].momentum = 0.5;
  return g;
}

OptimScalars scalars_for(const OptimConfig& cfg, int step) {
  OptimScalars s;
  s.lr = 0.01 * (1 + 0.1 * step);
  s.momentum = 0.9 - 0.01 * step;
  s.beta2 = cfg.algo == OptimAlgo::kRmsprop ? 0.9 : 0.99;
  s.step = step + 2;  // > every step lag: each tensor is at its step >= 1
  return s;
}

// make_tensors' tensors on `device` (CPU tensors as they are). On a GPU the odd ones (its
// misaligned views) start one element into a fresh block again: Tensor::to alone would align
// them, and the device's scalar path would go untested.
std::vector<OptimTensorArgs> copy_to(const std::vector<OptimTensorArgs>& src, Device device) {
  std::vector<OptimTensorArgs> out = src;
  for (size_t i = 0; i < out.size(); ++i) {
    const bool misaligned = i % 2 == 1;
    auto moved = [&](const Tensor& t) {
      if (!misaligned || device.is_cpu()) return t.detach().to(device);
      Tensor view = Tensor::empty({t.numel() + 1}, t.dtype(), device).slice(1, t.numel() + 1);
      view.copy_from(t.detach());
      return view;
    };
    OptimTensorArgs& t = out[i];
    t.param = moved(t.param);
    t.grad = moved(t.grad);
    for (Tensor& s : t.state)
      if (s.defined()) s = moved(s);
    if (t.mu_product.defined()) t.mu_product = t.mu_product.to(device);
  }
  return out;
}

// Naive CPU loop in double for SGD with momentum, Adam and NAdam: checks the CPU kernel's plumbing
// (groups, lags, slots, views, the mu product pairs) against formulas written out here.
TEST(OptimUpdateCpu, MatchesNaiveLoops) {
  for (const Config& c : all_configs()) {
    if (std::string(c.name) != "sgd_momentum" && std::string(c.name) != "adam" &&
        std::string(c.name) != "nadamw")
      continue;
    SCOPED_TRACE(c.name);
    auto tensors = make_tensors(c.cfg, Device::cpu(), 5);
    const auto groups = make_groups();
    std::vector<std::vector<double>> p, g, s0, s1, mp;
    for (const auto& t : tensors) {
      p.push_back(testing::values(t.param));
      g.push_back(testing::values(t.grad));
      s0.push_back(testing::values(t.state[0]));
      s1.push_back(t.state[1].defined() ? testing::values(t.state[1]) : std::vector<double>());
      mp.push_back(t.mu_product.defined() ? testing::values(t.mu_product) : std::vector<double>());
    }
    OptimPlan plan(c.cfg, groups, tensors);
    OptimScalarsBuffer buf;
    const OptimScalars sc = scalars_for(c.cfg, 3);
    buf.set(sc);
    kernels::optim_update(Context::current(Device::cpu()), plan, buf);
    for (size_t i = 0; i < tensors.size(); ++i) {
      const OptimGroupParams& gp = groups[static_cast<size_t>(tensors[i].group)];
      const double lr = sc.lr * gp.lr_mult;
      const double mom = gp.has_momentum ? gp.momentum : sc.momentum;
      const double t = sc.step - tensors[i].step_lag;
      // NAdam: P_t = P_{t-1} mu_t, P_{t-1} in entry (t - 1) & 1 of the pair, P_t into entry t & 1.
      const double psi = c.cfg.momentum_decay;
      const double mu = mom * (1 - 0.5 * std::pow(0.96, t * psi));
      const double mu_next = mom * (1 - 0.5 * std::pow(0.96, (t + 1) * psi));
      const int ti = static_cast<int>(t);
      double mu_product = 1;
      if (c.cfg.algo == OptimAlgo::kNadam) {
        mu_product = mp[i][static_cast<size_t>((ti - 1) & 1)] * mu;
        mp[i][static_cast<size_t>(ti & 1)] = mu_product;
      }
      for (size_t k = 0; k < p[i].size(); ++k) {
        double d = g[i][k] + gp.weight_decay * p[i][k];
        if (c.cfg.algo == OptimAlgo::kNadam) {
          p[i][k] *= 1 - lr * gp.weight_decay;  // nadamw: decoupled
          d = g[i][k];
          s0[i][k] = mom * s0[i][k] + (1 - mom) * d;
          s1[i][k] = sc.beta2 * s1[i][k] + (1 - sc.beta2) * d * d;
          const double denom = std::sqrt(s1[i][k] / (1 - std::pow(sc.beta2, t))) + c.cfg.eps;
          p[i][k] -= lr * (1 - mu) / (1 - mu_product) * d / denom +
                     lr * mu_next / (1 - mu_product * mu_next) * s0[i][k] / denom;
        } else if (c.cfg.algo == OptimAlgo::kSgd) {
          s0[i][k] = t <= 1 ? d : mom * s0[i][k] + (1 - c.cfg.dampening) * d;
          p[i][k] -= lr * s0[i][k];
        } else {
          s0[i][k] = mom * s0[i][k] + (1 - mom) * d;
          s1[i][k] = sc.beta2 * s1[i][k] + (1 - sc.beta2) * d * d;
          p[i][k] -= lr / (1 - std::pow(mom, t)) * s0[i][k] /
                     (std::sqrt(s1[i][k]) / std::sqrt(1 - std::pow(sc.beta2, t)) + c.cfg.eps);
        }
      }
      EXPECT_TRUE(testing::all_close(testing::values(tensors[i].param), p[i], 1e-5, 1e-6)) << i;
      EXPECT_TRUE(testing::all_close(testing::values(tensors[i].state[0]), s0[i], 1e-5, 1e-6));
      if (c.cfg.algo == OptimAlgo::kNadam) {
        EXPECT_TRUE(testing::all_close(testing::values(tensors[i].mu_product), mp[i], 1e-15, 0))
            << i;
      }
    }
  }
}

TEST(OptimUpdateCpu, PlanValidatesTensors) {
  OptimConfig cfg;
  cfg.algo = OptimAlgo::kAdam;
  std::vector<OptimTensorArgs> t(1);
  t[0].param = Tensor::zeros({4});
  t[0].grad = Tensor::zeros({4});
  EXPECT_THROW(OptimPlan(cfg, make_groups(), t), Error);  // no exp_avg / exp_avg_sq
  t[0].state[0] = Tensor::zeros({4});
  t[0].state[1] = Tensor::zeros({5});
  EXPECT_THROW(OptimPlan(cfg, make_groups(), t), Error);  // wrong shape
  t[0].state[1] = Tensor::zeros({4});
  t[0].group = 7;
  EXPECT_THROW(OptimPlan(cfg, make_groups(), t), Error);  // no such group
  t[0].group = 0;
  OptimPlan plan(cfg, make_groups(), t);
  EXPECT_EQ(plan.bytes_per_step(), 4 * 4 * 7.0);
  cfg.algo = OptimAlgo::kNadam;
  EXPECT_THROW(OptimPlan(cfg, make_groups(), t), Error);  // no mu product pair
  t[0].mu_product = Tensor::zeros({2});                   // float32: must be float64
  EXPECT_THROW(OptimPlan(cfg, make_groups(), t), Error);
  t[0].mu_product = Tensor::zeros({3}, DType::kFloat64);
  EXPECT_THROW(OptimPlan(cfg, make_groups(), t), Error);
  t[0].mu_product = Tensor::from_vector(std::vector<double>{1, 1}, {2});
  EXPECT_EQ(OptimPlan(cfg, make_groups(), t).bytes_per_step(), 4 * 4 * 7.0);
}

class OptimUpdateParity : public testing::DeviceTest {};

// Three launches with scalars rewritten between them (as a replayed graph would see), fused and
// per-tensor, against the CPU.
TEST_P(OptimUpdateParity, FusedAndPerTensorMatchCpu) {
  const Device d = device();
  for (DType dt : {DType::kFloat32, DType::kFloat64})
    for (const Config& c : all_configs()) {
      SCOPED_TRACE(std::string(c.name) + " " + dtype_name(dt));
      const double tol = dt == DType::kFloat64 ? 1e-12 : 1e-5,
                   atol = dt == DType::kFloat64 ? 1e-13 : 1e-6;
      const auto cpu = make_tensors(c.cfg, Device::cpu(), 9, dt);
      const auto fused = copy_to(cpu, d);
      const auto single = copy_to(cpu, d);
      OptimPlan plan_cpu(c.cfg, make_groups(), cpu), plan_fused(c.cfg, make_groups(), fused),
          plan_single(c.cfg, make_groups(), single);
      EXPECT_EQ(plan_fused.num_chunks(), plan_cpu.num_chunks());
      OptimScalarsBuffer buf_cpu, buf_dev;
      Context& ctx = Context::current(d);
      for (int step = 0; step < 3; ++step) {
        buf_cpu.set(scalars_for(c.cfg, step));
        buf_dev.set(scalars_for(c.cfg, step));
        buf_dev.upload(ctx);
        kernels::optim_update(Context::current(Device::cpu()), plan_cpu, buf_cpu);
        kernels::optim_update(ctx, plan_fused, buf_dev);
        kernels::optim_update_per_tensor(ctx, plan_single, buf_dev);
      }
      ctx.synchronize();
      for (size_t i = 0; i < cpu.size(); ++i) {
        EXPECT_TRUE(testing::all_close(fused[i].param, cpu[i].param, tol, atol)) << "tensor " << i;
        EXPECT_TRUE(testing::all_close(single[i].param, cpu[i].param, tol, atol)) << "tensor " << i;
        for (int s = 0; s < kernels::kOptimMaxSlots; ++s) {
          if (!cpu[i].state[s].defined()) continue;
          EXPECT_TRUE(testing::all_close(fused[i].state[s], cpu[i].state[s], tol, atol))
              << "tensor " << i << " slot " << s;
          EXPECT_TRUE(testing::all_close(single[i].state[s], cpu[i].state[s], tol, atol))
              << "tensor " << i << " slot " << s;
        }
        if (cpu[i].mu_product.defined()) {
          EXPECT_TRUE(testing::all_close(fused[i].mu_product, cpu[i].mu_product, 1e-14, 0))
              << "tensor " << i << " mu product";
          EXPECT_TRUE(testing::all_close(single[i].mu_product, cpu[i].mu_product, 1e-14, 0))
              << "tensor " << i << " mu product";
        }
      }
    }
}

// The gate (kernels/step_guard.h's output): 0 or NaN leaves every parameter and state slot as it
// was, 1 is the ungated update; both launch flavours read it on the device.
TEST_P(OptimUpdateParity, GateSkipsTheUpdateOnTheDevice) {
  const Device d = device();
  for (const Config& c : all_configs()) {
    SCOPED_TRACE(c.name);
    const auto ref = make_tensors(c.cfg, Device::cpu(), 4);
    // Own copies (copy_to keeps CPU tensors as they are): clone every tensor.
    auto fresh = [&] {
      auto c = copy_to(ref, d);
      for (auto& t : c) {
        t.param = t.param.detach().clone();
        t.grad = t.grad.detach().clone();
        for (Tensor& st : t.state)
          if (st.defined()) st = st.clone();
        if (t.mu_product.defined()) t.mu_product = t.mu_product.clone();
      }
      return c;
    };
    const auto open = fresh(), shut = fresh(), nan = fresh();
    OptimPlan plan_ref(c.cfg, make_groups(), ref), plan_open(c.cfg, make_groups(), open),
        plan_shut(c.cfg, make_groups(), shut), plan_nan(c.cfg, make_groups(), nan);
    std::vector<std::vector<double>> before;
    for (const auto& t : shut) before.push_back(testing::values(t.param));
    OptimScalarsBuffer buf_ref, buf;
    Context& ctx = Context::current(d);
    buf_ref.set(scalars_for(c.cfg, 1));
    buf.set(scalars_for(c.cfg, 1));
    buf.upload(ctx);
    const float one = 1.f, zero = 0.f, qnan = std::numeric_limits<float>::quiet_NaN();
    kernels::optim_update(Context::current(Device::cpu()), plan_ref, buf_ref);
    kernels::optim_update(ctx, plan_open, buf, Tensor::from_host(&one, {1}, DType::kFloat32, d));
    kernels::optim_update(ctx, plan_shut, buf, Tensor::from_host(&zero, {1}, DType::kFloat32, d));
    kernels::optim_update_per_tensor(ctx, plan_nan, buf,
                                     Tensor::from_host(&qnan, {1}, DType::kFloat32, d));
    ctx.synchronize();
    for (size_t i = 0; i < ref.size(); ++i) {
      EXPECT_TRUE(testing::all_close(open[i].param, ref[i].param, 1e-5, 1e-6)) << "tensor " << i;
      EXPECT_EQ(testing::values(shut[i].param), before[i]) << "tensor " << i << " gate 0";
      EXPECT_EQ(testing::values(nan[i].param), before[i]) << "tensor " << i << " gate NaN";
    }
  }
  const auto t = make_tensors(all_configs().front().cfg, d, 1);
  OptimPlan plan(all_configs().front().cfg, make_groups(), t);
  OptimScalarsBuffer buf;
  EXPECT_THROW(
      kernels::optim_update(Context::current(d), plan, buf, Tensor::zeros({2}, DType::kFloat32, d)),
      Error);
}

CYCLONE_INSTANTIATE_DEVICE_TEST(OptimUpdateParity);

}  // namespace
}  // namespace cyclone
