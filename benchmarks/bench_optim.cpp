// Optimizer step over the 36.5 M parameters of WRN-28-10 (kernels/optim_update.h), float32:
//   sgd_momentum: p, g, momentum_buffer       20 bytes per parameter (p r+w, g r, b r+w)
//   adam:         p, g, exp_avg, exp_avg_sq   28 bytes per parameter
// "fused" is the shipped path (one launch for all 80 tensors); "per_tensor" launches once per
// tensor, the baseline the fused kernel must beat. Each reports bytes/s of that traffic, the
// fraction of the stated peak (peak_frac) and of the copy bandwidth measured on this device
// (copy_frac: a device-to-device copy moving as many bytes, timed the same way; the target is
// >= 0.8). BM_optim_copy reports that copy on its own.
//
// The working set (0.7-1 GB) is far beyond any cache, so a single set of tensors is used.
#include <map>
#include <string>
#include <vector>

#include "bench_util.h"
#include "cyclone/kernels/optim_update.h"

namespace cyclone::bench {

namespace {

// WRN-28-10 (Zagoruyko & Komodakis 2016) for CIFAR-10: a 3x3 stem conv to 16 channels, three
// stages of 4 pre-activation basic blocks of widths 160 / 320 / 640 (BN-ReLU-conv3x3 twice, a 1x1
// shortcut where the width changes), a final BN and a 640 -> 10 linear layer. Convolutions have no
// bias. 80 tensors, 36,479,194 parameters.
std::vector<Shape> wrn_28_10_shapes() {
  std::vector<Shape> s;
  s.push_back({16, 3, 3, 3});
  int64_t in = 16;
  for (int64_t width : {160, 320, 640}) {
    for (int block = 0; block < 4; ++block) {
      s.push_back({in});  // bn1 weight, bias
      s.push_back({in});
      s.push_back({width, in, 3, 3});
      s.push_back({width});  // bn2 weight, bias
      s.push_back({width});
      s.push_back({width, width, 3, 3});
      if (in != width) s.push_back({width, in, 1, 1});
      in = width;
    }
  }
  s.push_back({640});
  s.push_back({640});
  s.push_back({10, 640});
  s.push_back({10});
  return s;
}

int64_t wrn_numel() {
  int64_t n = 0;
  for (const Shape& s : wrn_28_10_shapes()) n += s.numel();
  return n;
}

enum class Algo { kSgdMomentum, kAdam };

kernels::OptimConfig config_of(Algo algo) {
  kernels::OptimConfig c;
  if (algo == Algo::kSgdMomentum) {
    c.algo = kernels::OptimAlgo::kSgd;
    c.has_momentum_buffer = true;
  } else {
    c.algo = kernels::OptimAlgo::kAdam;
  }
  return c;
}

// What one case holds: the tensors (inside the plan) and the scalars buffer.
struct OptimCase {
  kernels::OptimPlan plan;
  std::unique_ptr<kernels::OptimScalarsBuffer> scalars;
};

std::shared_ptr<OptimCase> make_case(Device device, Algo algo) {
  const kernels::OptimConfig cfg = config_of(algo);
  const unsigned mask = kernels::optim_slot_mask(cfg);
  std::vector<kernels::OptimTensorArgs> tensors;
  uint64_t seed = 1;
  for (const Shape& shape : wrn_28_10_shapes()) {
    kernels::OptimTensorArgs t;
    t.param = random_tensor(shape, device, seed++);
    t.grad = random_tensor(shape, device, seed++);
    // State in [0, 1): a valid second moment for Adam, a plausible momentum buffer for SGD.
    for (int s = 0; s < kernels::kOptimMaxSlots; ++s)
      if (mask & (1u << s)) t.state[s] = random_tensor(shape, device, seed++, 0.0, 1.0);
    tensors.push_back(std::move(t));
  }
  kernels::OptimGroupParams group;
  group.weight_decay = 5e-4;
  auto c = std::make_shared<OptimCase>();
  c->plan = kernels::OptimPlan(cfg, {group}, std::move(tensors));
  c->scalars = std::make_unique<kernels::OptimScalarsBuffer>();
  kernels::OptimScalars s;
  s.lr = 1e-3;
  s.momentum = 0.9;
  s.beta2 = 0.999;
  s.step = 10;  // past the first step (SGD's buffer initialisation branch)
  c->scalars->set(s);
  c->scalars->upload(Context::current(device));
  return c;
}

double adam_bytes() { return 28.0 * static_cast<double>(wrn_numel()); }

// A device-to-device copy of `bytes` of traffic (bytes / 2 read, bytes / 2 written).
std::function<void(int64_t)> make_copy_op(Device device, double bytes) {
  const int64_t n = static_cast<int64_t>(bytes / 2 / sizeof(float));
  Tensor src = random_tensor({n}, device, 99);
  Tensor dst = Tensor::empty({n}, DType::kFloat32, device);
  return [src, dst](int64_t) { dst.copy_from(src); };
}

// The copy bandwidth of `device` in bytes/s, measured once per device type (median-free: the
// mean of 10 timed copies after 3 warm-up copies, as run_case times).
double measured_copy_bandwidth(Device device) {
  static std::map<int, double> cache;
  const int key = device.is_cuda() ? 1 + device.index : 0;
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  const double bytes = adam_bytes();
  auto op = make_copy_op(device, bytes);
  Context& ctx = Context::current(device);
  auto timer = make_timer(ctx);
  for (int i = 0; i < 3; ++i) op(i);
  double seconds = 0;
  for (int i = 0; i < 10; ++i) {
    timer->start();
    op(i);
    seconds += timer->stop();
  }
  return cache[key] = seconds > 0 ? 10 * bytes / seconds : 0;
}

void add_optim_case(Device device, Algo algo, bool fused) {
  const std::string op = std::string("optim_") + (algo == Algo::kAdam ? "adam" : "sgd_momentum") +
                         (fused ? "_fused" : "_per_tensor");
  const std::string name = case_name(op, device, "fp32", "wrn-28-10");
  auto body = [device, algo, fused](benchmark::State& state) {
    if (device.is_cuda() && !cuda_available()) {
      state.SkipWithError("no CUDA device");
      return;
    }
    try {
      // Set up per call (Google Benchmark calls a case a few times while sizing it): on a GPU that
      // is a few fills at memory speed, and nothing outlives the case.
      auto c = make_case(device, algo);
      Cost cost;
      cost.bytes = c->plan.bytes_per_step();
      run_case(state, device, cost, [device, fused, c](int64_t) {
        Context& ctx = Context::current(device);
        if (fused)
          kernels::optim_update(ctx, c->plan, *c->scalars);
        else
          kernels::optim_update_per_tensor(ctx, c->plan, *c->scalars);
      });
      const double copy = measured_copy_bandwidth(device);
      if (copy > 0 && state.counters.count("bytes/s"))
        state.counters["copy_frac"] = state.counters["bytes/s"].value / copy;
      state.counters["params"] = static_cast<double>(c->plan.numel());
      state.counters["tensors"] = static_cast<double>(c->plan.tensors().size());
    } catch (const std::exception& e) {
      state.SkipWithError(e.what());
    }
  };
  benchmark::RegisterBenchmark(name.c_str(), body)->UseManualTime()->Unit(benchmark::kMicrosecond);
}

}  // namespace

void register_optim() {
  for (Device device : {Device::cpu(), Device::cuda()}) {
    Cost copy_cost;
    copy_cost.bytes = adam_bytes();
    register_case(case_name("optim_copy", device, "fp32", "wrn-28-10-adam-bytes"), device,
                  copy_cost, [device] { return make_copy_op(device, adam_bytes()); });
    for (Algo algo : {Algo::kSgdMomentum, Algo::kAdam})
      for (bool fused : {true, false}) add_optim_case(device, algo, fused);
  }
}

}  // namespace cyclone::bench
