// The throwing half of core/cuda/check.h, out of line so that the check macros stay one branch
// at each call site and the message is built only on failure.
#include "cyclone/core/cuda/check.h"

#include <string>

namespace cyclone::detail {

void throw_cuda_error(const char* call, cudaError_t e, const char* file, int line) {
  // The runtime also keeps `e` as its "last error"; once it is reported here, clear it so that
  // the next cudaGetLastError (check_launch after a kernel) does not blame an innocent launch.
  // A sticky error (a device fault) cannot be cleared and rightly keeps resurfacing.
  (void)cudaGetLastError();
  // Both the enum name (greppable, what forums and the CUDA docs use) and the sentence.
  throw Error(str_cat(call, " failed: ", cudaGetErrorName(e), " (", cudaGetErrorString(e), ")"),
              where(file, line));
}

void throw_library_error(const char* library, const char* call, int code, const char* message,
                         const char* file, int line) {
  throw Error(str_cat(call, " failed: ", library, " status ", code, " (",
                      message ? message : "no message", ")"),
              where(file, line));
}

}  // namespace cyclone::detail
