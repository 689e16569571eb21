// RAII cudaStream_t, always non-blocking (created by gpu::stream_create): no implicit
// synchronisation with the legacy default stream, so work on it can be captured as a CUDA graph.
// Include only from files of a cuda/ folder (needs the CUDA headers).
#pragma once

#include <cuda_runtime.h>

#include <utility>

#include "cyclone/core/cuda/check.h"
#include "cyclone/core/cuda/event.h"
#include "cyclone/core/cuda/runtime.h"

namespace cyclone {

class Stream {
 public:
  Stream() = default;  // no stream (get() == nullptr)
  explicit Stream(int device)
      : stream_(static_cast<cudaStream_t>(gpu::stream_create(device))), device_(device) {}
  ~Stream() { gpu::stream_destroy(stream_); }  // drains the stream first; never throws
  Stream(Stream&& o) noexcept
      : stream_(std::exchange(o.stream_, nullptr)), device_(std::exchange(o.device_, -1)) {}
  Stream& operator=(Stream&& o) noexcept {
    if (this != &o) {
      gpu::stream_destroy(stream_);
      stream_ = std::exchange(o.stream_, nullptr);
      device_ = std::exchange(o.device_, -1);
    }
    return *this;
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  cudaStream_t get() const { return stream_; }
  void* opaque() const { return stream_; }  // the form core/cuda/runtime.h functions take
  int device() const { return device_; }
  explicit operator bool() const { return stream_ != nullptr; }

  void synchronize() const { CUDA_CHECK(cudaStreamSynchronize(stream_)); }
  // True when all work enqueued so far has completed (never blocks).
  bool query() const {
    cudaError_t e = cudaStreamQuery(stream_);
    if (e == cudaErrorNotReady) {
      (void)cudaGetLastError();
      return false;
    }
    CUDA_CHECK(e);
    return true;
  }
  // Makes this stream wait (on the device) for the work `e` recorded.
  void wait(const Event& e) const { e.block(stream_); }

 private:
  cudaStream_t stream_ = nullptr;
  int device_ = -1;
};

}  // namespace cyclone
