// Small helpers shared by the CUDA files of core/: a device guard and the policy for errors met
// while tearing down (destructors and deleters must not throw). Internal to core/cuda/.
#pragma once

#include <cuda_runtime.h>

#include <cstdio>
#include <exception>

#include "cyclone/core/cuda/check.h"

namespace cyclone::gpu::detail {

// Throws a clear Error unless 0 <= device < number of usable devices (the raw CUDA error for a
// bad ordinal or a missing driver says much less).
void check_device(int device);

// Makes `device` current for a scope and restores the previous one: every entry point that takes
// a device argument must not leave the caller's thread on another device.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    check_device(device);
    CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device) {
      CUDA_CHECK(cudaSetDevice(device));
    } else {
      previous_ = -1;
    }
  }
  ~DeviceGuard() {
    // Restoring can only fail on a context already broken by an earlier (reported) error.
    if (previous_ >= 0) (void)cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

// Runs a release step from a destructor or a deleter. A throw there would call std::terminate,
// so the error is printed instead: a sticky device fault also resurfaces at the next checked
// call, where it can be caught. cudaErrorCudartUnloading (release after the runtime has shut
// down at process exit) is expected and silent; callers test for it before checking.
template <class F>
void teardown(const char* what, F&& f) noexcept {
  try {
    f();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cyclone: %s failed during release: %s\n", what, e.what());
  } catch (...) {
    std::fprintf(stderr, "cyclone: %s failed during release\n", what);
  }
}

}  // namespace cyclone::gpu::detail
