#include "cyclone/train/startup.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cyclone/kernels/gemm.h"

namespace cyclone::train {

void exit_if_blas_cannot_run(const char* program, bool multiplies) {
  const std::string problem = kernels::check_blas_address_space(multiplies);
  if (problem.empty()) return;
  std::fprintf(stderr, "%s: %s\n", program, problem.c_str());
  std::fflush(stdout);
  std::fflush(stderr);
  // Not exit(): OpenBLAS's exit handler joins its worker threads, and one that could not get its
  // buffer never returns. Nothing has been written yet, so nothing is left half done.
  std::_Exit(1);
}

void report_file_size_limit_as_errors() { std::signal(SIGXFSZ, SIG_IGN); }

}  // namespace cyclone::train
