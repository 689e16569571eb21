// RAII cudaEvent_t: ordering between streams (record on one, block another) and timing of device
// work (elapsed_ms between two timing events, as GPU.md asks timings to be taken).
// Include only from files of a cuda/ folder (needs the CUDA headers).
#pragma once

#include <cuda_runtime.h>

#include <utility>

#include "cyclone/core/cuda/check.h"

namespace cyclone {

class Event {
 public:
  // timing=false (cudaEventDisableTiming) makes record/wait cheaper: use it for pure ordering.
  explicit Event(bool timing = false) {
    CUDA_CHECK(
        cudaEventCreateWithFlags(&event_, timing ? cudaEventDefault : cudaEventDisableTiming));
  }
  ~Event() { reset(); }
  Event(Event&& o) noexcept : event_(std::exchange(o.event_, nullptr)) {}
  Event& operator=(Event&& o) noexcept {
    if (this != &o) {
      reset();
      event_ = std::exchange(o.event_, nullptr);
    }
    return *this;
  }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  cudaEvent_t get() const { return event_; }

  // Captures the work enqueued on `stream` so far.
  void record(cudaStream_t stream) { CUDA_CHECK(cudaEventRecord(event_, stream)); }
  // Makes `stream` wait (on the device, not the host) for the recorded work.
  void block(cudaStream_t stream) const { CUDA_CHECK(cudaStreamWaitEvent(stream, event_, 0)); }
  // Waits on the host for the recorded work.
  void synchronize() const { CUDA_CHECK(cudaEventSynchronize(event_)); }
  // True when the recorded work has completed (never blocks).
  bool query() const {
    cudaError_t e = cudaEventQuery(event_);
    if (e == cudaErrorNotReady) {
      (void)cudaGetLastError();  // "not ready" is an answer, not an error to report later
      return false;
    }
    CUDA_CHECK(e);
    return true;
  }
  // Milliseconds of device time from `start` to this event (both recorded, both timing events).
  float elapsed_ms(const Event& start) const {
    float ms = 0.f;
    CUDA_CHECK(cudaEventElapsedTime(&ms, start.event_, event_));
    return ms;
  }

 private:
  void reset() noexcept {
    // Destruction cannot report: an error here is a sticky fault that the next check raises.
    if (event_ != nullptr) (void)cudaEventDestroy(event_);
    event_ = nullptr;
  }
  cudaEvent_t event_ = nullptr;
};

}  // namespace cyclone
