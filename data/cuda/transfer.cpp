#include "cyclone/data/cuda/transfer.h"

#include <cuda_runtime.h>

#include "cyclone/core/cuda/check.h"

namespace cyclone::data::cuda {

void* event_create(int device) {
  // An event belongs to the device current at its creation: make `device` current for the call
  // and give the caller's thread its own device back.
  int previous = 0;
  CUDA_CHECK(cudaGetDevice(&previous));
  if (previous != device) CUDA_CHECK(cudaSetDevice(device));
  cudaEvent_t e = nullptr;
  const cudaError_t rc = cudaEventCreateWithFlags(&e, cudaEventDisableTiming);
  if (previous != device) (void)cudaSetDevice(previous);
  CUDA_CHECK(rc);
  return e;
}

void event_destroy(void* event) {
  // Never throws (called from destructors): an error here is a sticky fault the next check raises.
  if (event != nullptr) (void)cudaEventDestroy(static_cast<cudaEvent_t>(event));
}

void event_record(void* event, void* stream) {
  CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(event), static_cast<cudaStream_t>(stream)));
}

void stream_wait_event(void* stream, void* event) {
  CUDA_CHECK(
      cudaStreamWaitEvent(static_cast<cudaStream_t>(stream), static_cast<cudaEvent_t>(event), 0));
}

void event_synchronize(void* event) {
  CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(event)));
}

}  // namespace cyclone::data::cuda
