// cyclone_bench_allreduce: all-reduce bandwidth of the communicator data-parallel training uses,
// in the manner of nccl-tests' all_reduce_perf, and the bucketed gradient reduction of a
// WRN-28-10 step (36,479,194 float32 gradients, 146 MB) as the trainer does it.
//
//   mpirun -np 8 ./bin/cyclone_bench_allreduce --device=cuda --out=allreduce.json   # NCCL
//   mpirun -np 2 ./bin/cyclone_bench_allreduce --device=cpu                          # MPI
//
// Every rank runs the same fixed number of iterations (a collective cannot let each rank size
// its own loop, as Google Benchmark would), rank 0 reports. For n ranks and S bytes in time t:
//   algbw = S / t      busbw = algbw x 2 (n - 1) / n
// busbw is the rate each rank's link carries in a ring all-reduce, comparable across n and with
// the hardware's link bandwidth (nccl-tests' PERFORMANCE.md). A world of one has busbw 0: there
// is nothing to exchange, and the time is the communicator's fixed cost.
// Times are the slowest rank's (max over ranks of the per-iteration mean).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "cyclone/core/context.h"
#include "cyclone/core/cuda/runtime.h"
#include "cyclone/core/device.h"
#include "cyclone/dist/grad_reducer.h"
#include "cyclone/dist/world.h"

namespace {

using namespace cyclone;
using Clock = std::chrono::steady_clock;

constexpr int64_t kWrnParams = 36479194;  // WRN-28-10 for CIFAR-10 (benchmarks/bench_optim.cpp)

// WRN-28-10's parameter shapes in registration order (bench_optim.cpp's list, flattened).
std::vector<int64_t> wrn_28_10_sizes() {
  std::vector<int64_t> s = {16 * 3 * 3 * 3};
  int64_t in = 16;
  for (int64_t width : {160, 320, 640})
    for (int block = 0; block < 4; ++block) {
      s.insert(s.end(), {in, in, width * in * 9, width, width, width * width * 9});
      if (in != width) s.push_back(width * in);
      in = width;
    }
  s.insert(s.end(), {640, 640, 10 * 640, 10});
  return s;
}

struct Row {
  std::string what;
  int64_t bytes = 0;
  double seconds = 0;
};

double timed(Device device, int warmup, int iters, const std::function<void()>& op) {
  Context& ctx = Context::current(device);
  dist::World& w = dist::world();
  for (int i = 0; i < warmup; ++i) op();
  ctx.synchronize();
  w.host().barrier();
  const auto t0 = Clock::now();
  for (int i = 0; i < iters; ++i) op();
  ctx.synchronize();
  const double mine = std::chrono::duration<double>(Clock::now() - t0).count() / iters;
  return w.all_reduce(mine, dist::ReduceOp::kMax);
}

}  // namespace

int main(int argc, char** argv) {
  std::string device_name = "auto", out;
  int iters = 20;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--device=", 0) == 0) {
      device_name = a.substr(9);
    } else if (a.rfind("--out=", 0) == 0) {
      out = a.substr(6);
    } else if (a.rfind("--iters=", 0) == 0) {
      iters = std::atoi(a.c_str() + 8);
    } else {
      std::fprintf(stderr,
                   "cyclone_bench_allreduce: unknown argument '%s' (--device=cpu|cuda|auto "
                   "--iters=N --out=FILE.json)\n",
                   a.c_str());
      return 2;
    }
  }
  if (iters < 1) {
    std::fprintf(stderr, "cyclone_bench_allreduce: --iters must be >= 1\n");
    return 2;
  }
  int rc = 0;
  try {
    dist::World& w = dist::world();
    const Device device = w.device_for(resolve_device(device_name));
    if (device.is_cuda()) gpu::set_device(device.index);  // launches need it current
    dist::Communicator& comm = w.communicator(device);
    const int n = w.size();
    const double bus = n > 1 ? 2.0 * (n - 1) / n : 0.0;
    std::vector<Row> rows;

    std::vector<int64_t> sizes;
    for (int64_t b = int64_t{1} << 20; b <= (int64_t{256} << 20); b *= 4) sizes.push_back(b);
    sizes.push_back(kWrnParams * 4);
    std::sort(sizes.begin(), sizes.end());
    for (int64_t bytes : sizes) {
      Tensor t = Tensor::zeros(Shape{bytes / 4}, DType::kFloat32, device);
      const std::string what =
          bytes == kWrnParams * 4 ? "all_reduce wrn-28-10 gradient" : "all_reduce";
      rows.push_back({what, bytes,
                      timed(device, 3, iters, [&] { comm.all_reduce(t, dist::ReduceOp::kAvg); })});
    }
    // The trainer's path: 80 gradients packed into 25 MiB buckets, copied in and out.
    std::vector<Tensor> params;
    for (int64_t s : wrn_28_10_sizes()) {
      Tensor p = Tensor::zeros(Shape{s}, DType::kFloat32, device);
      p.set_requires_grad(true);
      p.set_grad(Tensor::zeros(Shape{s}, DType::kFloat32, device));
      params.push_back(p);
    }
    dist::GradReducer reducer(comm, params);
    rows.push_back({"grad_reducer wrn-28-10 (" + std::to_string(reducer.num_buckets()) +
                        " buckets of <= 25 MiB)",
                    kWrnParams * 4, timed(device, 3, iters, [&] {
                      reducer.prepare();
                      reducer.finish();
                    })});

    if (w.is_root()) {
      std::printf("# %s, %d rank(s), backend %s, %d iterations each (slowest rank's mean)\n",
                  device.str().c_str(), n, comm.backend().c_str(), iters);
      std::printf("%-52s %12s %12s %12s %12s\n", "what", "bytes", "time_us", "algbw_GB/s",
                  "busbw_GB/s");
      std::string json = "{\"device\": \"" + device.str() + "\", \"ranks\": " + std::to_string(n) +
                         ", \"backend\": \"" + comm.backend() +
                         "\", \"iterations\": " + std::to_string(iters) + ", \"rows\": [";
      for (size_t i = 0; i < rows.size(); ++i) {
        const Row& r = rows[i];
        const double alg = r.bytes / r.seconds / 1e9;
        std::printf("%-52s %12lld %12.1f %12.2f %12.2f\n", r.what.c_str(),
                    static_cast<long long>(r.bytes), r.seconds * 1e6, alg, alg * bus);
        char buf[256];
        std::snprintf(buf, sizeof buf,
                      "%s{\"what\": \"%s\", \"bytes\": %lld, \"seconds\": %.9g, "
                      "\"algbw_gbps\": %.6g, \"busbw_gbps\": %.6g}",
                      i ? ", " : "", r.what.c_str(), static_cast<long long>(r.bytes), r.seconds,
                      alg, alg * bus);
        json += buf;
      }
      json += "]}\n";
      if (!out.empty()) {
        std::ofstream f(out);
        f << json;
        if (!f) throw Error("cannot write '" + out + "'");
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cyclone_bench_allreduce: %s%s\n", dist::rank_prefix().c_str(), e.what());
    rc = 1;
    if (dist::world().abort(rc)) return rc;
  }
  dist::world().finalize();
  return rc;
}
