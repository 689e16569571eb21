// CYCLONE_CUDA_FN(declaration): declares a function implemented in a .cu/.cpp file of a cuda/
// folder. In a build without the CUDA backend the same line defines it inline to throw "built
// without CUDA", so dispatch code calls CUDA implementations with no #ifdef of its own.
#pragma once

#include "cyclone/core/error.h"

namespace cyclone::detail {
[[noreturn]] inline void throw_no_cuda() {
  CYCLONE_THROW("this build of Cyclone has no CUDA backend (rebuild with -DCYCLONE_CUDA=ON)");
}
}  // namespace cyclone::detail

#if CYCLONE_CUDA
#define CYCLONE_CUDA_FN(...) __VA_ARGS__;
#else
#define CYCLONE_CUDA_FN(...) \
  [[noreturn]] inline __VA_ARGS__ { ::cyclone::detail::throw_no_cuda(); }
#endif
