// Shared machinery of cyclone_bench: device timers, random inputs, input-set rotation and the
// counters every case reports. Cases call the shipped kernels through their public headers only.
//
// How a case is timed (GPU.md, "Measuring on the GPU"):
//   - inputs are random (a Philox uniform fill), never zeros, which can hide unwritten outputs and
//     run faster than real data;
//   - a few warm-up calls keep module loading, cuBLAS handle creation and workspace allocation out
//     of the numbers;
//   - each iteration times exactly one call of the op: with CUDA events on the context's stream for
//     CUDA (UseManualTime), with a host clock for the CPU (whose kernels are synchronous, and the
//     context is synchronised before the clock is read anyway);
//   - inputs rotate among enough copies that one pass over all of them exceeds the last-level
//     cache (128 MiB, over the 50 MiB L2 of an H100), so memory-bound ops are measured against
//     device memory rather than cache; PyTorch's script does the same.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cyclone/core/context.h"
#include "cyclone/core/device.h"
#include "cyclone/core/tensor.h"

namespace cyclone::bench {

// Times device work enqueued between start() and stop().
class Timer {
 public:
  virtual ~Timer() = default;
  virtual void start() = 0;
  // Seconds of device work since start(); waits for that work to finish.
  virtual double stop() = 0;
};

// A CUDA-event timer for a CUDA context, a host-clock timer for the CPU.
std::unique_ptr<Timer> make_timer(Context& ctx);
// The CUDA one: benchmarks/cuda/event_timer.cpp with the CUDA backend, else a stub that throws
// (benchmarks/no_cuda_timer.cpp; CMake picks one, so no source needs an #ifdef).
std::unique_ptr<Timer> make_cuda_timer(Context& ctx);

// A float32 tensor of `shape` on `device` filled with uniform values in [lo, hi) (Philox stream
// `seed`, so every run sees the same data).
Tensor random_tensor(const Shape& shape, Device device, uint64_t seed, double lo = -1.0,
                     double hi = 1.0);
// The same values rounded to `dtype` (bfloat16 cases; float32 returns random_tensor's own).
Tensor random_tensor_as(const Shape& shape, DType dtype, Device device, uint64_t seed);
// The dtype of a case's precision name: "bf16" -> bfloat16, "fp32" and "tf32" -> float32.
DType precision_dtype(const std::string& precision);
// int32 class labels in [0, classes).
Tensor random_labels(int64_t rows, int64_t classes, Device device, uint64_t seed);

// How many copies of a case's working set (inputs and outputs, `set_bytes` together) to rotate
// through so that the rotation exceeds the cache: at least 1, at most 32.
int rotation_sets(size_t set_bytes);
// `first` (a case's tensors) followed by copies of it (clone(): same values, other memory), as many
// sets as rotation_sets() asks for. Iteration i uses sets[i % sets.size()].
std::vector<std::vector<Tensor>> rotated_sets(std::vector<Tensor> first);

// Peak rates the counters compare against. CUDA defaults are the H100 SXM5 datasheet's dense
// figures (fp32 CUDA cores 67 TFLOP/s, TF32 tensor cores 494.7 TFLOP/s, BF16 tensor cores
// 989.4 TFLOP/s, HBM3 3.35 TB/s); the environment overrides them (CYCLONE_PEAK_FP32_TFLOPS,
// CYCLONE_PEAK_TF32_TFLOPS, CYCLONE_PEAK_BF16_TFLOPS, CYCLONE_PEAK_GBPS; scripts/gpu_run.sh sets
// 4800 GB/s on an H200). The CPU has no stated default
// (it varies too much between hosts): set CYCLONE_CPU_PEAK_GFLOPS / CYCLONE_CPU_PEAK_GBPS to get a
// fraction there. 0 means "no stated peak".
enum class Peak { kFp32, kTf32, kBf16, kBandwidth };
double peak(Device device, Peak which);
const char* peak_source(Device device);

// The name of a case: "BM_<op>/<device>/<precision>/<shape>", e.g. "BM_gemm/cuda/fp32/1024".
std::string case_name(const std::string& op, Device device, const std::string& precision,
                      const std::string& shape);
// "1M" for 1 << 20, "16M", "256"; "128x64x32x32" for a shape.
std::string size_str(int64_t n);
std::string shape_str(const Shape& shape);

// What one iteration costs, for the counters: flops and the fewest bytes it must move. `peak` says
// which ceiling bounds the case: a compute peak reports FLOP/s, kBandwidth reports bytes/s.
struct Cost {
  double flops = 0;
  double bytes = 0;
  Peak peak = Peak::kBandwidth;
};

// Runs one case: warm-up, then per iteration one call of op(i) timed on the device, i counting
// from 0 (to pick the input set). Reports FLOP/s or bytes/s (see Cost) and the fraction of the
// stated peak.
void run_case(benchmark::State& state, Device device, const Cost& cost,
              const std::function<void(int64_t)>& op);

// Registers a case under `name` with manual (device) time in microseconds. `setup` allocates and
// fills the inputs and returns the op to time. Google Benchmark calls a case several times while
// it sizes the iteration count, so the op (and the tensors it holds) is kept until another case
// runs: setup runs once per case, and only one case's tensors are alive at a time.
void register_case(const std::string& name, Device device, const Cost& cost,
                   std::function<std::function<void(int64_t)>()> setup);
// Frees the tensors of the last case; call before main returns, while the device contexts live.
void release_cases();

// The per-family registrations (explicit, no static initialisers: DESIGN.md habit 9).
void register_gemm();
void register_elementwise();
void register_batchnorm();
void register_reduce();
void register_softmax();
void register_optim();
void register_data();
void register_conv();
void register_pool();
void register_models();
// Frees the model cases' last model (bench_models.cpp); call beside release_cases().
void release_models();

}  // namespace cyclone::bench
