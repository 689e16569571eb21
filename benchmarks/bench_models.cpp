// Whole-model training steps through the shipped modules (models/registry.h), float32:
//   - WRN-28-10 on CIFAR-shaped input (128x3x32x32, 10 classes) on CUDA: the model this project's
//     range tests are about, at the batch the WRN paper trains with;
//   - LeNet-5 on MNIST-shaped input (128x1x28x28) on the CPU.
// One iteration is one training step without the optimizer: zero the gradients, forward in
// training mode (batch-norm statistics updated), cross-entropy, backward. benchmarks/pytorch/
// models.py times the same step of the same architecture (same layers, init, batch, fp32) under
// the same case names.
//
// Counters: ms_per_step, images/s, FLOP/s (the convolution and linear FLOPs of the forward and of
// both backward passes, 3 x forward; batch norm and elementwise work are not counted) with
// peak_frac against the fp32 peak, and peak_mem_bytes: the allocator's peak during the timed steps
// (gpu::memory_stats after reset_peak_stats on CUDA; the CPU allocator's peak on the CPU, which
// is not reset and so includes setup).
// peak_mem_bytes counts everything alive during the steps (weights, gradients, activations,
// inputs), as torch.cuda.max_memory_allocated does on the PyTorch side; the kernel cases' tensors
// are freed before a model is built.
#include <memory>
#include <string>

#include "bench_util.h"
#include "cyclone/core/cuda/caching_allocator.h"
#include "cyclone/layers/loss_ops.h"
#include "cyclone/models/registry.h"

namespace cyclone::bench {

namespace {

constexpr int kWarmupSteps = 3;

double conv_flops(int64_t n, int64_t c_in, int64_t c_out, int64_t hw_out, int64_t k) {
  return 2.0 * n * c_out * hw_out * hw_out * c_in * k * k;
}

// Forward FLOPs of WRN-D-K's convolutions and classifier on n x 3 x 32 x 32.
double wrn_forward_flops(int depth, int k, int64_t n, int64_t classes) {
  const int blocks = (depth - 4) / 6;
  const int64_t widths[] = {16, 16LL * k, 32LL * k, 64LL * k};
  double f = conv_flops(n, 3, 16, 32, 3);
  int64_t hw = 32;
  for (int g = 1; g <= 3; ++g) {
    if (g > 1) hw /= 2;
    for (int b = 0; b < blocks; ++b) {
      const int64_t in = b == 0 ? widths[g - 1] : widths[g], out = widths[g];
      f += conv_flops(n, in, out, hw, 3) + conv_flops(n, out, out, hw, 3);
      if (in != out) f += conv_flops(n, in, out, hw, 1);
    }
  }
  return f + 2.0 * n * widths[3] * classes;
}

// Forward FLOPs of LeNet-5 on n x 1 x 28 x 28 (conv1 padded by 2).
double lenet_forward_flops(int64_t n, int64_t classes) {
  return conv_flops(n, 1, 6, 28, 5) + conv_flops(n, 6, 16, 10, 5) +
         2.0 * n * (400 * 120 + 120 * 84 + 84 * classes);
}

struct StepCase {
  std::string model;
  Device device;
  int64_t batch, channels, hw, classes;
  double forward_flops;
};

// The model, inputs and parameter list of the case being run. Google Benchmark calls a case's body
// several times while it sizes the iteration count; building WRN-28-10 each time would dominate
// the run, so the slot keeps them until another model case starts, and release_models() (called
// by main while the CUDA context lives) frees the last one.
struct ModelSlot {
  std::string name;
  std::shared_ptr<Module> model;
  Tensor x, y;
  std::vector<Tensor> params;
};
ModelSlot& model_slot() {
  static ModelSlot slot;
  return slot;
}

void step(ModelSlot& s) {
  for (const Tensor& p : s.params) p.zero_grad();
  cross_entropy((*s.model)(s.x), s.y).backward();
}

void run_step_case(benchmark::State& state, const std::string& name, const StepCase& c) {
  if (c.device.is_cuda() && !cuda_available()) {
    state.SkipWithError("no CUDA device");
    return;
  }
  try {
    ModelSlot& s = model_slot();
    Context& ctx = Context::current(c.device);
    if (s.name != name) {
      s = ModelSlot{};
      release_cases();  // the kernel cases' tensors must not count toward this case's memory
      ModelOptions o;
      o.in_channels = static_cast<int>(c.channels);
      o.height = o.width = static_cast<int>(c.hw);
      o.num_classes = static_cast<int>(c.classes);
      o.device = c.device;
      o.seed = 1;
      s.model = make_model(c.model, o);
      s.x = random_tensor({c.batch, c.channels, c.hw, c.hw}, c.device, 2);
      s.y = random_labels(c.batch, c.classes, c.device, 3);
      s.params = s.model->parameters();
      s.name = name;
      // Warm-up: cuDNN's algorithm search (cudnnFind) and the allocator's first blocks.
      for (int i = 0; i < kWarmupSteps; ++i) step(s);
    }
    ctx.synchronize();
    if (c.device.is_cuda()) gpu::reset_peak_stats(c.device.index);
    auto timer = make_timer(ctx);
    double seconds = 0;
    for (auto _ : state) {
      timer->start();
      step(s);
      const double t = timer->stop();
      state.SetIterationTime(t);
      seconds += t;
    }
    const double iters = static_cast<double>(state.iterations());
    if (seconds <= 0 || iters <= 0) return;
    const double per_step = seconds / iters;
    state.counters["ms_per_step"] = per_step * 1e3;
    state.counters["images/s"] = static_cast<double>(c.batch) / per_step;
    state.counters["FLOP/s"] = 3.0 * c.forward_flops / per_step;
    const double ceiling = peak(c.device, Peak::kFp32);
    if (ceiling > 0) state.counters["peak_frac"] = 3.0 * c.forward_flops / per_step / ceiling;
    const MemoryStats mem =
        c.device.is_cuda() ? gpu::memory_stats(c.device.index) : cpu_memory_stats();
    state.counters["peak_mem_bytes"] = static_cast<double>(mem.peak_bytes);
  } catch (const std::exception& e) {
    model_slot() = ModelSlot{};
    state.SkipWithError(e.what());
  }
}

void add_step_case(const std::string& op, const StepCase& c) {
  const std::string name =
      case_name(op, c.device, "fp32", shape_str({c.batch, c.channels, c.hw, c.hw}));
  benchmark::RegisterBenchmark(name.c_str(),
                               [name, c](benchmark::State& s) { run_step_case(s, name, c); })
      ->UseManualTime()
      ->Unit(benchmark::kMillisecond);
}

}  // namespace

void register_models() {
  add_step_case("wrn28_10_train_step",
                {"wrn-28-10", Device::cuda(), 128, 3, 32, 10, wrn_forward_flops(28, 10, 128, 10)});
  add_step_case("lenet5_train_step",
                {"lenet5", Device::cpu(), 128, 1, 28, 10, lenet_forward_flops(128, 10)});
}

void release_models() { model_slot() = ModelSlot{}; }

}  // namespace cyclone::bench
