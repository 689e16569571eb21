// RAII for cuBLAS / cuDNN handles and cuDNN descriptors. Contexts hold their handles as opaque
// pointers (core/context.h, created by gpu::cublas_create / cudnn_create); these wrappers are
// for kernels that need a descriptor for one call, so none leaks when a check throws.
// Include only from files of a cuda/ folder (needs the CUDA headers).
#pragma once

#include <cublas_v2.h>
#include <cudnn.h>

#include <utility>

#include "cyclone/core/cuda/check.h"
#include "cyclone/core/cuda/runtime.h"

namespace cyclone {

// A cuBLAS handle bound to `stream` with a workspace from the caching allocator.
class CublasHandle {
 public:
  CublasHandle(int device, cudaStream_t stream)
      : h_(static_cast<cublasHandle_t>(gpu::cublas_create(device, stream))) {}
  ~CublasHandle() { gpu::cublas_destroy(h_); }
  CublasHandle(CublasHandle&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  CublasHandle& operator=(CublasHandle&& o) noexcept {
    if (this != &o) {
      gpu::cublas_destroy(h_);
      h_ = std::exchange(o.h_, nullptr);
    }
    return *this;
  }
  cublasHandle_t get() const { return h_; }

 private:
  cublasHandle_t h_ = nullptr;
};

class CudnnHandle {
 public:
  CudnnHandle(int device, cudaStream_t stream)
      : h_(static_cast<cudnnHandle_t>(gpu::cudnn_create(device, stream))) {}
  ~CudnnHandle() { gpu::cudnn_destroy(h_); }
  CudnnHandle(CudnnHandle&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  CudnnHandle& operator=(CudnnHandle&& o) noexcept {
    if (this != &o) {
      gpu::cudnn_destroy(h_);
      h_ = std::exchange(o.h_, nullptr);
    }
    return *this;
  }
  cudnnHandle_t get() const { return h_; }

 private:
  cudnnHandle_t h_ = nullptr;
};

// One template for every cuDNN descriptor kind: T is the descriptor type, Create / Destroy its
// cudnnCreate*/cudnnDestroy* pair.
template <class T, cudnnStatus_t (*Create)(T*), cudnnStatus_t (*Destroy)(T)>
class CudnnDescriptor {
 public:
  CudnnDescriptor() { CUDNN_CHECK(Create(&d_)); }
  ~CudnnDescriptor() {
    // A failing destroy is a sticky fault that the next checked call reports.
    if (d_ != nullptr) (void)Destroy(d_);
  }
  CudnnDescriptor(CudnnDescriptor&& o) noexcept : d_(std::exchange(o.d_, nullptr)) {}
  CudnnDescriptor& operator=(CudnnDescriptor&& o) noexcept {
    if (this != &o) {
      if (d_ != nullptr) (void)Destroy(d_);
      d_ = std::exchange(o.d_, nullptr);
    }
    return *this;
  }
  CudnnDescriptor(const CudnnDescriptor&) = delete;
  CudnnDescriptor& operator=(const CudnnDescriptor&) = delete;
  T get() const { return d_; }
  operator T() const { return d_; }  // pass straight to cudnn* calls

 private:
  T d_ = nullptr;
};

using CudnnTensorDescriptor = CudnnDescriptor<cudnnTensorDescriptor_t, cudnnCreateTensorDescriptor,
                                              cudnnDestroyTensorDescriptor>;
using CudnnDropoutDescriptor =
    CudnnDescriptor<cudnnDropoutDescriptor_t, cudnnCreateDropoutDescriptor,
                    cudnnDestroyDropoutDescriptor>;
// cuDNN 9 marks the legacy filter / convolution / pooling / activation API deprecated (in favour
// of the graph API) but still ships and supports it; naming it once here keeps the warnings out
// of every kernel that uses it.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
using CudnnFilterDescriptor = CudnnDescriptor<cudnnFilterDescriptor_t, cudnnCreateFilterDescriptor,
                                              cudnnDestroyFilterDescriptor>;
using CudnnConvolutionDescriptor =
    CudnnDescriptor<cudnnConvolutionDescriptor_t, cudnnCreateConvolutionDescriptor,
                    cudnnDestroyConvolutionDescriptor>;
using CudnnPoolingDescriptor =
    CudnnDescriptor<cudnnPoolingDescriptor_t, cudnnCreatePoolingDescriptor,
                    cudnnDestroyPoolingDescriptor>;
using CudnnActivationDescriptor =
    CudnnDescriptor<cudnnActivationDescriptor_t, cudnnCreateActivationDescriptor,
                    cudnnDestroyActivationDescriptor>;
#pragma GCC diagnostic pop

}  // namespace cyclone
