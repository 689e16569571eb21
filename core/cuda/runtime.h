// The core's door to the CUDA runtime, with no CUDA header in sight: everything above core that
// needs a stream, a copy or device memory goes through these, so a build without CUDA compiles
// the same code (each function then throws "no CUDA backend", see core/cuda_decl.h).
// Implemented in core/cuda/runtime.cpp; every CUDA return code is checked (CUDA_CHECK).
#pragma once

#include <cstddef>
#include <string>

#include "cyclone/core/cuda_decl.h"

namespace cyclone::gpu {

#if CYCLONE_CUDA
// Number of usable devices; 0 on no driver / no GPU / an error. Never throws.
int device_count_noexcept();
// Versions of the libraries actually loaded, e.g. "cuda runtime 13000, driver 13000, cublas
// 130100, cudnn 91900".
const char* versions();
#else
inline int device_count_noexcept() { return 0; }
inline const char* versions() { return "no CUDA backend"; }
#endif

CYCLONE_CUDA_FN(void set_device(int device))
CYCLONE_CUDA_FN(int current_device())
// set_device(device) unless it is already the thread's current device (then one cudaGetDevice):
// what Context::current does for each CUDA op, since a kernel launched on a stream of a device
// that is not current fails.
CYCLONE_CUDA_FN(void make_current(int device))
// The device's memory in bytes (cudaDeviceProp::totalGlobalMem).
CYCLONE_CUDA_FN(size_t device_total_memory(int device))
// The device's product name (cudaDeviceProp::name), e.g. "NVIDIA H200": what a run's summary
// and banner record, so a result names the GPU it came from.
CYCLONE_CUDA_FN(std::string device_name(int device))
// A non-blocking stream (cudaStreamNonBlocking) on `device`.
CYCLONE_CUDA_FN(void* stream_create(int device))
CYCLONE_CUDA_FN(void stream_destroy(void* stream))
CYCLONE_CUDA_FN(void stream_synchronize(void* stream))
CYCLONE_CUDA_FN(void device_synchronize(int device))
// cudaMemcpyAsync with cudaMemcpyDefault (unified addressing decides the direction).
CYCLONE_CUDA_FN(void memcpy_async(void* dst, const void* src, size_t nbytes, void* stream))
CYCLONE_CUDA_FN(void memset_async(void* dst, int value, size_t nbytes, void* stream))
// Page-locked host memory (cudaHostAlloc / cudaFreeHost).
CYCLONE_CUDA_FN(void* host_alloc_pinned(size_t nbytes))
CYCLONE_CUDA_FN(void host_free_pinned(void* p))
// Library handles bound to `stream` (cuBLAS with its workspace, cuDNN).
CYCLONE_CUDA_FN(void* cublas_create(int device, void* stream))
CYCLONE_CUDA_FN(void cublas_destroy(void* handle))
CYCLONE_CUDA_FN(void* cudnn_create(int device, void* stream))
CYCLONE_CUDA_FN(void cudnn_destroy(void* handle))
// Raises the error of the last kernel launch, if any, naming `what` (call after every launch);
// with CYCLONE_SYNC=1 in the environment it also synchronises `stream` to localise faults.
CYCLONE_CUDA_FN(void check_launch(const char* what, void* stream))

}  // namespace cyclone::gpu
