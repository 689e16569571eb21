#include "cyclone/train/startup.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include <unistd.h>

#include "cyclone/core/resource_limits.h"
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

void prepare_for_limits(const char* program) {
  std::signal(SIGXFSZ, SIG_IGN);
  const std::optional<uint64_t> stack = stack_limit();
  if (!stack || *stack >= kMinStackBytes) return;
  // write(), not fprintf: printing to unbuffered stderr takes an 8 KiB buffer off the stack, which
  // under ulimit -s 16 is more than is left.
  const std::string line = std::string(program) + ": the stack limit (ulimit -s) is " +
                           size_text(*stack) + ", less than the " + size_text(kMinStackBytes) +
                           " the program and each of its threads need; raise it (ulimit -s 8192 "
                           "is the usual default)\n";
  [[maybe_unused]] const ssize_t n = ::write(2, line.data(), line.size());
  // As in exit_if_blas_cannot_run: no exit handlers (OpenBLAS's joins its threads).
  std::_Exit(1);
}

}  // namespace cyclone::train
