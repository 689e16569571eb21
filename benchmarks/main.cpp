// cyclone_bench: the kernel benchmarks on every device this host has (CUDA cases report
// "no CUDA device" as their error where none is usable, and the run still exits 0).
// Run with --benchmark_format=json for benchmarks/compare.py; see benchmarks/README.md.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <exception>

#include "bench_util.h"
#include "cyclone/core/device.h"

int main(int argc, char** argv) {
  try {
    cyclone::bench::register_gemm();
    cyclone::bench::register_elementwise();
    cyclone::bench::register_batchnorm();
    cyclone::bench::register_reduce();
    cyclone::bench::register_softmax();
    cyclone::bench::register_optim();
    cyclone::bench::register_data();
    cyclone::bench::register_conv();
    cyclone::bench::register_pool();
    cyclone::bench::register_models();
    // The device line goes into the JSON's context, next to the numbers it explains.
    benchmark::AddCustomContext("cyclone_device", cyclone::cuda_available() ? "cuda:0" : "cpu");
    benchmark::AddCustomContext(
        "cyclone_peak_source",
        cyclone::bench::peak_source(cyclone::cuda_available() ? cyclone::Device::cuda()
                                                              : cyclone::Device::cpu()));
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
    benchmark::RunSpecifiedBenchmarks();
    cyclone::bench::release_cases();
    cyclone::bench::release_models();
    benchmark::Shutdown();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cyclone_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
