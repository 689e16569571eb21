// The CUDA events the loader orders its copies with (data/loader.cpp): host-to-device copies run on
// the loader's own stream, the compute stream waits for them on the device, and a pinned buffer is
// refilled only once its copy has completed. Opaque pointers (cudaEvent_t, cudaStream_t), so the
// loader needs no CUDA header; in a build without CUDA these throw (core/cuda_decl.h) and the
// loader never calls them (its device is then the CPU).
#pragma once

#include "cyclone/core/cuda_decl.h"

namespace cyclone::data::cuda {

// An event for ordering only (no timing).
CYCLONE_CUDA_FN(void* event_create(int device))
CYCLONE_CUDA_FN(void event_destroy(void* event))
CYCLONE_CUDA_FN(void event_record(void* event, void* stream))
// `stream` waits on the device for the work `event` recorded.
CYCLONE_CUDA_FN(void stream_wait_event(void* stream, void* event))
// The host waits for the work `event` recorded.
CYCLONE_CUDA_FN(void event_synchronize(void* event))

}  // namespace cyclone::data::cuda
