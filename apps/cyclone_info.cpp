// cyclone_info: what this build of Cyclone is and what it finds at run time, one fact a line, for
// the head of every GPU log (scripts/gpu_run.sh): the libraries printed are those actually loaded,
// which on a GPU host come from LD_LIBRARY_PATH rather than from the build machine.
#include <cstdio>
#include <exception>

#include "cyclone/core/cuda/runtime.h"
#include "cyclone/core/device.h"
#include "cyclone/kernels/gemm.h"
#include "cyclone/train/cli.h"
#include "cyclone/train/startup.h"

#ifndef CYCLONE_VERSION_STRING
#define CYCLONE_VERSION_STRING "unknown"
#endif

int main(int argc, char** argv) {
  cyclone::train::prepare_for_limits("cyclone_info");
  cyclone::train::exit_if_blas_cannot_run("cyclone_info", /*multiplies=*/false);
  try {
    cyclone::train::ArgParser p("cyclone_info",
                                "Prints what this build of Cyclone is and what it finds at run "
                                "time, one fact a line.");
    cyclone::train::reject_positional("cyclone_info", p.parse(argc, argv));
    if (p.help_requested()) {
      std::printf("%s", p.help().c_str());
      return 0;
    }
    std::printf("cyclone %s\n", CYCLONE_VERSION_STRING);
    std::printf("cuda backend: %s\n", cyclone::built_with_cuda() ? "built" : "not built");
    std::printf("cuda devices: %d\n", cyclone::cuda_device_count());
    std::printf("libraries: %s\n", cyclone::gpu::versions());
    std::printf("cpu blas: %s\n", cyclone::kernels::cpu_blas_kernels().c_str());
    std::printf("default device: %s\n", cyclone::default_device().str().c_str());
  } catch (const cyclone::train::UsageError& e) {
    std::fprintf(stderr, "cyclone_info: %s (see --help)\n", e.message().c_str());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cyclone_info: %s\n", e.what());
    return 1;
  }
  return 0;
}
