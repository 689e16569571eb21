#include "bench_util.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <random>
#include <sstream>

#include "cyclone/core/error.h"
#include "cyclone/kernels/elementwise.h"
#include "cyclone/kernels/random.h"

namespace cyclone::bench {

namespace {

// Three untimed calls: the first loads modules and creates library handles, the others let
// cuBLAS settle on its algorithm and the caching allocator on its blocks.
constexpr int kWarmupCalls = 3;
// Bytes one rotation through the input sets must exceed (see bench_util.h).
constexpr size_t kRotationBytes = size_t{128} << 20;
constexpr int kMaxSets = 32;

class HostTimer final : public Timer {
 public:
  explicit HostTimer(Context& ctx) : ctx_(ctx) {}
  void start() override {
    ctx_.synchronize();
    t0_ = std::chrono::steady_clock::now();
  }
  double stop() override {
    ctx_.synchronize();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }

 private:
  Context& ctx_;
  std::chrono::steady_clock::time_point t0_;
};

double env_or(const char* name, double fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const double x = std::strtod(v, &end);
  return (end != v && x > 0) ? x : fallback;
}

struct Slot {
  std::string name;
  std::function<void(int64_t)> op;
};
Slot& current_slot() {
  static Slot slot;
  return slot;
}

}  // namespace

std::unique_ptr<Timer> make_timer(Context& ctx) {
  if (ctx.device().is_cuda()) return make_cuda_timer(ctx);
  return std::make_unique<HostTimer>(ctx);
}

Tensor random_tensor(const Shape& shape, Device device, uint64_t seed, double lo, double hi) {
  Tensor t = Tensor::empty(shape, DType::kFloat32, device);
  kernels::uniform_(Context::current(device), t, lo, hi, seed, /*offset=*/0);
  return t;
}

Tensor random_tensor_as(const Shape& shape, DType dtype, Device device, uint64_t seed) {
  const Tensor f = random_tensor(shape, device, seed);
  if (dtype == DType::kFloat32) return f;
  Tensor t = Tensor::empty(shape, dtype, device);
  kernels::cast(Context::current(device), f, t);
  return t;
}

DType precision_dtype(const std::string& precision) {
  return precision == "bf16" ? DType::kBFloat16 : DType::kFloat32;
}

Tensor random_labels(int64_t rows, int64_t classes, Device device, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(classes - 1));
  std::vector<int32_t> labels(static_cast<size_t>(rows));
  for (auto& l : labels) l = pick(rng);
  return Tensor::from_vector(labels, Shape{rows}, device);
}

int rotation_sets(size_t set_bytes) {
  if (set_bytes == 0) return 1;
  const size_t n = (kRotationBytes + set_bytes - 1) / set_bytes;
  return static_cast<int>(std::clamp<size_t>(n, 1, kMaxSets));
}

std::vector<std::vector<Tensor>> rotated_sets(std::vector<Tensor> first) {
  size_t bytes = 0;
  for (const Tensor& t : first) bytes += t.nbytes();
  const int count = rotation_sets(bytes);
  std::vector<std::vector<Tensor>> sets;
  sets.reserve(static_cast<size_t>(count));
  for (int i = 1; i < count; ++i) {
    std::vector<Tensor> copy;
    for (const Tensor& t : first) copy.push_back(t.clone());
    sets.push_back(std::move(copy));
  }
  sets.push_back(std::move(first));
  return sets;
}

double peak(Device device, Peak which) {
  if (device.is_cuda()) {
    switch (which) {
      case Peak::kFp32:
        return env_or("CYCLONE_PEAK_FP32_TFLOPS", 67.0) * 1e12;
      case Peak::kTf32:
        return env_or("CYCLONE_PEAK_TF32_TFLOPS", 494.7) * 1e12;
      case Peak::kBf16:
        return env_or("CYCLONE_PEAK_BF16_TFLOPS", 989.4) * 1e12;
      case Peak::kBandwidth:
        return env_or("CYCLONE_PEAK_GBPS", 3350.0) * 1e9;
    }
  }
  switch (which) {
    case Peak::kFp32:
    case Peak::kTf32:
    case Peak::kBf16:
      return env_or("CYCLONE_CPU_PEAK_GFLOPS", 0.0) * 1e9;
    case Peak::kBandwidth:
      return env_or("CYCLONE_CPU_PEAK_GBPS", 0.0) * 1e9;
  }
  return 0;
}

const char* peak_source(Device device) {
  return device.is_cuda() ? "H100 SXM5 datasheet unless CYCLONE_PEAK_* set"
                          : "CYCLONE_CPU_PEAK_GFLOPS / CYCLONE_CPU_PEAK_GBPS";
}

std::string case_name(const std::string& op, Device device, const std::string& precision,
                      const std::string& shape) {
  return "BM_" + op + "/" + (device.is_cuda() ? "cuda" : "cpu") + "/" + precision + "/" + shape;
}

std::string size_str(int64_t n) {
  if (n >= (1 << 20) && n % (1 << 20) == 0) return std::to_string(n >> 20) + "M";
  if (n >= (1 << 10) && n % (1 << 10) == 0 && n > 4096) return std::to_string(n >> 10) + "K";
  return std::to_string(n);
}

std::string shape_str(const Shape& shape) {
  std::string s;
  for (int i = 0; i < shape.rank(); ++i) {
    if (i > 0) s += 'x';
    s += std::to_string(shape[i]);
  }
  return s;
}

void run_case(benchmark::State& state, Device device, const Cost& cost,
              const std::function<void(int64_t)>& op) {
  Context& ctx = Context::current(device);
  auto timer = make_timer(ctx);
  int64_t call = 0;
  for (int i = 0; i < kWarmupCalls; ++i) op(call++);
  ctx.synchronize();

  double seconds = 0;
  for (auto _ : state) {
    timer->start();
    op(call++);
    const double s = timer->stop();
    state.SetIterationTime(s);
    seconds += s;
  }
  // Rates from the measured device time (the mean over iterations), computed here rather than
  // through Google Benchmark's rate counters so that they use exactly the time reported.
  const double iters = static_cast<double>(state.iterations());
  if (seconds <= 0 || iters <= 0) return;
  const double flops = cost.flops * iters / seconds;
  const double bytes = cost.bytes * iters / seconds;
  // One rate per case, the one its peak is about: FLOP/s for GEMM, bytes/s for memory-bound ops.
  const bool compute_bound = cost.peak != Peak::kBandwidth;
  state.counters[compute_bound ? "FLOP/s" : "bytes/s"] = compute_bound ? flops : bytes;
  const double ceiling = peak(device, cost.peak);
  if (ceiling > 0) state.counters["peak_frac"] = (compute_bound ? flops : bytes) / ceiling;
}

void register_case(const std::string& name, Device device, const Cost& cost,
                   std::function<std::function<void(int64_t)>()> setup) {
  auto body = [name, device, cost, setup = std::move(setup)](benchmark::State& state) {
    if (device.is_cuda() && !cuda_available()) {
      state.SkipWithError("no CUDA device");
      return;
    }
    try {
      Slot& slot = current_slot();
      if (slot.name != name) {
        slot = Slot{};  // free the previous case's tensors before allocating this one's
        slot.op = setup();
        slot.name = name;
      }
      run_case(state, device, cost, slot.op);
    } catch (const std::exception& e) {
      // A failing kernel fails its case, not the whole run: the other numbers are still worth
      // having, and the JSON carries the message.
      current_slot() = Slot{};
      state.SkipWithError(e.what());
    }
  };
  benchmark::RegisterBenchmark(name.c_str(), body)->UseManualTime()->Unit(benchmark::kMicrosecond);
}

void release_cases() { current_slot() = Slot{}; }

}  // namespace cyclone::bench
