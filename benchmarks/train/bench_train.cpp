// cyclone_bench_train: end-to-end training throughput, the side of the comparison that
// benchmarks/pytorch/train.py measures for PyTorch (same workloads, steps, policy, data pool,
// timing and JSON; read that script's docstring for the details both follow):
//   lenet5-train-bs64, lenet5-train-bs128 (1x28x28), resnet56-train-bs128, wrn-28-10-train-bs128
//   (3x32x32), lenet5-range-test-4000 (batch 128, lr 1e-5 -> 1e-1 exponential, momentum 0.9).
// One step: zero the gradients, forward (training mode), cross-entropy, backward, SGD (momentum
// 0.9, weight decay 5e-4) with lr and momentum from 1cycle (max_lr 0.1, 0.95 -> 0.85) set every
// step, through train/step_runner.h: engine "cyclone" replays the step from a CUDA graph and reads
// the losses back every --sync_every steps; "cyclone-eager" launches every kernel (no graph) with
// the same read-back; "cyclone-channels-last" is "cyclone" with NHWC activations
// (layers/layout.h, --channels_last); "cyclone-unfused" (not run by default: an A/B check) is
// "cyclone" with the BN-ReLU pairs as two kernels each way (layers/conv_modules.h
// BnReluFusionScope), to measure what the fusion gives on the networks that have them. The range
// test computes its smoothed loss on the device; like the PyTorch script it never stops early (the
// divergence threshold is off so every step does the same work). Inputs: 8 batches made on the
// device up front, step i uses batch i % 8 (a device-to-device copy into the graph's input buffers
// is part of each step).
//
// Timing: --warmup steps (graph capture, cuDNN's search), then --reps reps of --steps steps each
// timed whole: synchronise, host clock, the steps and their last read-back, synchronise.
// ms_per_step is the median rep over its steps; peak_mem_mb is the caching allocator's peak over
// the timed reps (the CPU allocator's, never reset, on the CPU). Prints one JSON object:
//   {"device", "driver", "cuda", "cudnn", "git_rev", "date", "runs": [{"workload", "engine",
//    "precision", "images_per_s", "ms_per_step", "peak_mem_mb", "steps", "reps",
//    "ms_per_step_reps", "graph", "gflop_per_step", "tflop_per_s"}], "complete"}
// With --out FILE the same object is also written to FILE (atomically) before the first case and
// again after every case, "complete" false until the last: a run killed by a time limit (the GPU
// host's) still leaves every case it finished, which stdout, printed at the end, would not.
// gflop_per_step counts the GEMMs and convolutions of one step (forward and backward,
// kernels/flops.h); tflop_per_s is it over ms_per_step: the achieved rate the bf16 target compares
// with the bf16 GEMM benchmark's (benchmarks/train_report.py --gemm-bench).
// Precisions (train/precision.h): fp32 (IEEE), tf32 (TF32 tensor cores), bf16 (mixed precision:
// convolutions and products in bfloat16, float32 master weights) and fp16 (the same in float16,
// with dynamic loss scaling), as --precision sets them for best_lr and train.
// Flags: --help lists them; every value (a workload, engine or precision name included) is
// checked before the first measurement, one line and exit status 2 for a bad one.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <exception>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "cyclone/core/cuda/caching_allocator.h"
#include "cyclone/core/cuda/runtime.h"
#include "cyclone/core/file_util.h"
#include "cyclone/cyclone.h"
#include "cyclone/kernels/random.h"
#include "cyclone/train/cli.h"
#include "cyclone/train/precision.h"
#include "cyclone/train/snapshot.h"
#include "cyclone/train/step_runner.h"

using namespace cyclone;
using json = nlohmann::json;
using train::UsageError;

namespace {

struct Workload {
  std::string name, model;
  int64_t batch, channels, hw;
  bool range_test;
};

const std::vector<Workload>& workloads() {
  static const std::vector<Workload> w = {
      {"lenet5-train-bs64", "lenet5", 64, 1, 28, false},
      {"lenet5-train-bs128", "lenet5", 128, 1, 28, false},
      {"resnet56-train-bs128", "resnet56", 128, 3, 32, false},
      {"wrn-28-10-train-bs128", "wrn-28-10", 128, 3, 32, false},
      {"lenet5-range-test-4000", "lenet5", 128, 1, 28, true},
  };
  return w;
}

const std::vector<std::string> kEngines = {"cyclone", "cyclone-eager", "cyclone-channels-last",
                                           "cyclone-unfused"};

struct Args {
  std::string device = "auto", workloads, engines = "cyclone,cyclone-eager,cyclone-channels-last",
              precisions = "fp32,tf32,bf16,fp16", device_name, driver, git_rev, out;
  int64_t steps = 100, reps = 5, warmup = 20, range_steps = 4000, range_reps = 3, sync_every = 50;
};

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string t; std::getline(ss, t, ',');)
    if (!t.empty()) out.push_back(t);
  return out;
}

// The range test's workload is named by its step count (--range_steps): "lenet5-range-test" or
// "lenet5-range-test-<N>" selects it.
bool is_range_test_name(const std::string& x) {
  const std::string stem = "lenet5-range-test";
  return x == stem || (x.rfind(stem + "-", 0) == 0 && x.size() > stem.size() + 1 &&
                       x.find_first_not_of("0123456789", stem.size() + 1) == std::string::npos);
}

bool listed(const std::string& list, const Workload& w) {
  if (list.empty()) return true;
  for (const std::string& x : split(list))
    if (x == w.name || (w.range_test && is_range_test_name(x))) return true;
  return false;
}

// The 1cycle schedule a case runs (over warm-up and every rep), or the range test's ramp.
std::unique_ptr<schedulers::Policy> case_policy(const Args& a, bool range_test) {
  if (range_test)
    return schedulers::make_policy(json{
        {"policy", "range_test"},
        {"start_lr", 1e-5},
        {"end_lr", 1e-1},
        {"num_steps", a.range_steps},
        {"mode", "exp"}}.dump());
  return schedulers::make_policy(json{
      {"policy", "one_cycle"},
      {"max_lr", 0.1},
      {"total_steps", a.warmup + a.reps * a.steps},
      {"base_momentum", 0.85},
      {"max_momentum", 0.95}}.dump());
}

// Every flag is checked here, before the first measurement: a typo in the last engine or
// precision must not cost the measurements of the cases before it.
std::optional<Args> parse(int argc, char** argv) {
  Args a;
  train::ArgParser p("cyclone_bench_train",
                     "End-to-end training throughput (benchmarks/README.md): one JSON object on "
                     "stdout, progress on stderr.");
  std::string names;
  for (const Workload& w : workloads()) names += (names.empty() ? "" : ", ") + w.name;
  p.add_flag("device", &a.device, "auto, cpu, cuda or cuda:N", "DEV");
  p.add_flag("workloads", &a.workloads, "comma list, default all: " + names, "LIST");
  p.add_flag("engines", &a.engines,
             "comma list of cyclone, cyclone-eager, cyclone-channels-last, cyclone-unfused",
             "LIST");
  p.add_flag("precisions", &a.precisions,
             std::string("comma list of ") + train::precision_choices(), "LIST");
  p.add_flag("steps", &a.steps, "timed steps per rep", "N", train::Bounds::closed(1, 1e7));
  p.add_flag("reps", &a.reps, "timed reps (the median is reported)", "N",
             train::Bounds::closed(1, 1000));
  p.add_flag("warmup", &a.warmup, "untimed steps first", "N", train::Bounds::closed(1, 1e6));
  p.add_flag("range_steps", &a.range_steps, "the range test's steps", "N",
             train::Bounds::closed(2, 1e7));
  p.add_flag("range_reps", &a.range_reps, "the range test's reps", "N",
             train::Bounds::closed(1, 1000));
  // The step runner's window is at most 2^20 steps (train/step_runner.h).
  p.add_flag("sync_every", &a.sync_every, "read the losses back every N steps", "N",
             train::Bounds::closed(1, 1 << 20));
  p.add_flag("device_name", &a.device_name, "the JSON's device (default: what was found)");
  p.add_flag("driver", &a.driver, "the JSON's driver");
  p.add_flag("git_rev", &a.git_rev, "the JSON's git_rev");
  p.add_flag("out", &a.out,
             "also write the JSON to this file, rewritten after every case (\"complete\": false "
             "until the last)",
             "FILE");
  train::reject_positional("cyclone_bench_train", p.parse(argc, argv));
  if (p.help_requested()) {
    std::printf("%s", p.help().c_str());
    return std::nullopt;
  }
  if (!device_spec_well_formed(a.device))
    throw UsageError("--device: '" + a.device + "' is not auto, cpu, cuda or cuda:N");
  for (const std::string& x : split(a.workloads)) {
    bool known = is_range_test_name(x);
    for (const Workload& w : workloads()) known |= x == w.name;
    if (!known)
      throw UsageError("--workloads: '" + x + "' is not one of " + names +
                       " (the range test: lenet5-range-test, its steps set by --range_steps)");
  }
  if (split(a.engines).empty()) throw UsageError("--engines: '" + a.engines + "' names no engine");
  for (const std::string& e : split(a.engines)) train::check_choice("engines", e, kEngines);
  if (split(a.precisions).empty())
    throw UsageError("--precisions: '" + a.precisions + "' names no precision");
  for (const std::string& x : split(a.precisions))
    if (!train::parse_precision(x))
      throw UsageError("--precisions: '" + x + "' is not one of " + train::precision_choices());
  try {
    (void)case_policy(a, false);
  } catch (const Error& e) {
    throw UsageError(
        "--warmup=" + std::to_string(a.warmup) + " + --reps=" + std::to_string(a.reps) +
        " x --steps=" + std::to_string(a.steps) +
        " steps are too few for the 1cycle schedule: raise --steps (" + e.message() + ")");
  }
  try {
    (void)case_policy(a, true);
  } catch (const Error& e) {
    throw UsageError("--range_steps=" + std::to_string(a.range_steps) + ": " + e.message());
  }
  return a;
}

std::string version_of(const std::string& versions, const std::string& key) {
  const auto p = versions.find(key + " ");
  if (p == std::string::npos) return "";
  const auto b = p + key.size() + 1;
  return versions.substr(b, versions.find(',', b) - b);
}

std::string cpu_name() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string l; std::getline(in, l);)
    if (l.rfind("model name", 0) == 0) return "cpu: " + l.substr(l.find(':') + 2);
  return "cpu";
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// The range test is named by its step count, in its rows and its error rows alike.
std::string workload_name(const Args& a, const Workload& w) {
  return w.range_test ? "lenet5-range-test-" + std::to_string(a.range_steps) : w.name;
}

// --out's copy of the JSON so far. Before the first case a failure is a usage error (nothing has
// been measured yet); later one only warns, since stdout still gets every row at the end.
void write_out(const Args& a, const json& out, bool first) {
  if (a.out.empty()) return;
  try {
    write_file_atomic(a.out, out.dump(2) + "\n");
  } catch (const Error& e) {
    if (first) throw UsageError("--out: " + e.message());
    std::fprintf(stderr,
                 "cyclone_bench_train: warning: --out: %s (the JSON still goes to stdout)\n",
                 e.message().c_str());
  }
}

json run_case(const Args& a, const Workload& w, Device dev, const std::string& engine,
              const std::string& precision) {
  json row = {{"workload", workload_name(a, w)}, {"engine", engine}, {"precision", precision}};
  Context& ctx = Context::current(dev);
  ModelOptions mo;
  mo.in_channels = static_cast<int>(w.channels);
  mo.height = mo.width = static_cast<int>(w.hw);
  mo.num_classes = 10;
  mo.device = dev;
  mo.seed = 1;
  auto model = make_model(w.model, mo);
  model->train();
  train::apply_precision(*model, dev, *train::parse_precision(precision));
  model->set_channels_last(engine == "cyclone-channels-last");
  std::optional<BnReluFusionScope> unfused;  // for the capture and every step
  if (engine == "cyclone-unfused") unfused.emplace(false);
  auto opt = optim::make_optimizer("sgd", model->named_parameters(),
                                   R"({"lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4})");
  std::vector<data::Batch> pool;
  for (uint64_t i = 0; i < 8; ++i) {
    data::Batch b;
    b.images = Tensor::empty({w.batch, w.channels, w.hw, w.hw}, DType::kFloat32, dev);
    kernels::uniform_(ctx, b.images, -1, 1, 2, i << 32);
    Tensor u = Tensor::empty({w.batch}, DType::kFloat32, dev);
    kernels::uniform_(ctx, u, 0, 10, 3, i << 32);
    b.labels = Tensor::empty({w.batch}, DType::kInt32, dev);
    kernels::cast(ctx, u, b.labels);  // truncation: uniform over 0..9
    pool.push_back(b);
  }
  const int64_t steps = w.range_test ? a.range_steps : a.steps;
  const int64_t reps = w.range_test ? a.range_reps : a.reps;
  const std::unique_ptr<schedulers::Policy> policy = case_policy(a, w.range_test);
  train::StepRunnerOptions ro;
  ro.sync_every = a.sync_every;
  ro.cuda_graph = engine != "cyclone-eager";
  ro.accuracy = !w.range_test;
  ro.halt_on_nonfinite_loss = !w.range_test;
  train::StepRunner runner(*model, *opt, ro);
  int64_t clock = 0;       // the policy's step: continues across warm-up and reps, as PyTorch's
  double step_flops = -1;  // the GEMM and convolution FLOPs of one step (kernels/flops.h)
  auto one = [&](int64_t i) {
    const int64_t t = w.range_test ? i : clock++;
    opt->set_lr(policy->lr(t));
    opt->set_momentum(policy->momentum(t).value_or(0.9));
    // The first step runs eagerly (the runner captures a graph later), so its launches count.
    std::optional<kernels::FlopCounter> counter;
    if (step_flops < 0) counter.emplace();
    runner.enqueue(pool[static_cast<size_t>(i % 8)]);
    if (counter) step_flops = counter->flops();
    if (runner.due()) runner.drain();
  };
  train::StateSnapshot start(*model, *opt);
  for (int64_t i = 0; i < std::min(a.warmup, steps); ++i) one(i);
  runner.drain();
  ctx.synchronize();
  if (dev.is_cuda()) gpu::reset_peak_stats(dev.index);
  std::vector<double> ms;
  for (int64_t r = 0; r < reps; ++r) {
    if (w.range_test) start.restore(*model, *opt);  // every rep runs the same ramp (untimed)
    ctx.synchronize();
    const double t0 = now_s();
    for (int64_t i = 0; i < steps; ++i) one(i);
    runner.drain();
    ctx.synchronize();
    ms.push_back((now_s() - t0) * 1e3 / static_cast<double>(steps));
    std::fprintf(stderr, "cyclone_bench_train: %s %s %s rep %lld: %.3f ms/step\n", w.name.c_str(),
                 engine.c_str(), precision.c_str(), static_cast<long long>(r + 1), ms.back());
  }
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  const double med = sorted.size() % 2
                         ? sorted[sorted.size() / 2]
                         : (sorted[sorted.size() / 2 - 1] + sorted[sorted.size() / 2]) / 2;
  const MemoryStats mem = dev.is_cuda() ? gpu::memory_stats(dev.index) : cpu_memory_stats();
  row["ms_per_step"] = med;
  row["images_per_s"] = static_cast<double>(w.batch) / (med / 1e3);
  row["gflop_per_step"] = step_flops / 1e9;
  row["tflop_per_s"] = step_flops / (med / 1e3) / 1e12;
  row["peak_mem_mb"] = static_cast<double>(mem.peak_bytes) / (1 << 20);
  row["steps"] = steps;
  row["reps"] = reps;
  row["ms_per_step_reps"] = ms;
  row["graph"] = runner.graph_status();
  ctx.set_allow_tf32(false);
  return row;
}

}  // namespace

int main(int argc, char** argv) {
  return train::run_program("cyclone_bench_train", [&] {
    const std::optional<Args> parsed = parse(argc, argv);
    if (!parsed) return 0;  // --help
    const Args& a = *parsed;
    const Device dev = resolve_device(a.device);
    const std::string versions = gpu::versions();
    json out;
    out["device"] = !a.device_name.empty() ? a.device_name : dev.is_cuda() ? dev.str() : cpu_name();
    out["driver"] = a.driver;
    out["cuda"] = dev.is_cuda() ? version_of(versions, "cuda runtime") : "";
    out["cudnn"] = dev.is_cuda() ? version_of(versions, "cudnn") : "";
    out["libraries"] = versions;
    out["git_rev"] = a.git_rev;
    char date[16];
    const std::time_t t = std::time(nullptr);
    std::strftime(date, sizeof date, "%Y-%m-%d", std::gmtime(&t));
    out["date"] = date;
    out["runs"] = json::array();
    out["complete"] = false;
    write_out(a, out, true);
    for (const Workload& w : workloads()) {
      if (!listed(a.workloads, w)) continue;
      for (const std::string& engine : split(a.engines)) {
        for (const std::string& precision : split(a.precisions)) {
          if (engine == "cyclone-eager" && !dev.is_cuda() && precision == "tf32") continue;
          std::fprintf(stderr, "cyclone_bench_train: %s %s %s\n", w.name.c_str(), engine.c_str(),
                       precision.c_str());
          try {
            out["runs"].push_back(run_case(a, w, dev, engine, precision));
          } catch (const std::exception& e) {  // one failing case keeps the others' numbers
            out["runs"].push_back({{"workload", workload_name(a, w)},
                                   {"engine", engine},
                                   {"precision", precision},
                                   {"error", e.what()}});
          }
          if (dev.is_cuda()) gpu::empty_cache(dev.index);
          write_out(a, out, false);
        }
      }
    }
    out["complete"] = true;
    write_out(a, out, false);
    std::printf("%s\n", out.dump(2).c_str());
    return 0;
  });
}
