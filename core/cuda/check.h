// Throwing checks for CUDA, cuBLAS, cuDNN and NCCL return codes. Include only from files of a
// cuda/ folder (they need the CUDA headers). Each throws cyclone::Error with the call, the code's
// name and message, and file:line.
#pragma once

#include <cuda_runtime.h>

#include "cyclone/core/error.h"

namespace cyclone::detail {
[[noreturn]] void throw_cuda_error(const char* call, cudaError_t e, const char* file, int line);
[[noreturn]] void throw_library_error(const char* library, const char* call, int code,
                                      const char* message, const char* file, int line);
}  // namespace cyclone::detail

#define CUDA_CHECK(call)                                                            \
  do {                                                                              \
    cudaError_t cyclone_err_ = (call);                                              \
    if (cyclone_err_ != cudaSuccess) [[unlikely]]                                   \
      ::cyclone::detail::throw_cuda_error(#call, cyclone_err_, __FILE__, __LINE__); \
  } while (0)

// cuBLAS / cuDNN / NCCL: include <cublas_v2.h> / <cudnn.h> / <nccl.h> before using these.
#define CUBLAS_CHECK(call)                                                                   \
  do {                                                                                       \
    cublasStatus_t cyclone_st_ = (call);                                                     \
    if (cyclone_st_ != CUBLAS_STATUS_SUCCESS) [[unlikely]]                                   \
      ::cyclone::detail::throw_library_error("cuBLAS", #call, static_cast<int>(cyclone_st_), \
                                             cublasGetStatusString(cyclone_st_), __FILE__,   \
                                             __LINE__);                                      \
  } while (0)

#define CUDNN_CHECK(call)                                                                   \
  do {                                                                                      \
    cudnnStatus_t cyclone_st_ = (call);                                                     \
    if (cyclone_st_ != CUDNN_STATUS_SUCCESS) [[unlikely]]                                   \
      ::cyclone::detail::throw_library_error("cuDNN", #call, static_cast<int>(cyclone_st_), \
                                             cudnnGetErrorString(cyclone_st_), __FILE__,    \
                                             __LINE__);                                     \
  } while (0)

#define NCCL_CHECK(call)                                                                           \
  do {                                                                                             \
    ncclResult_t cyclone_st_ = (call);                                                             \
    if (cyclone_st_ != ncclSuccess) [[unlikely]]                                                   \
      ::cyclone::detail::throw_library_error("NCCL", #call, static_cast<int>(cyclone_st_),         \
                                             ncclGetErrorString(cyclone_st_), __FILE__, __LINE__); \
  } while (0)
