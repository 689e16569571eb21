// Execution context: what a kernel needs besides its tensors. On a GPU that is the stream it
// is enqueued on and the cuBLAS/cuDNN handles bound to that stream; on the CPU, nothing yet.
//
// Each thread has one current context per device. CUDA contexts use a stream created by Cyclone
// (non-blocking), never the legacy default stream, so that steps can be captured as CUDA graphs
// and nothing relies on implicit synchronisation.
#pragma once

#include <memory>

#include "cyclone/core/device.h"

namespace cyclone {

class Stream;  // core/cuda/stream.h (RAII cudaStream_t)

class Context {
 public:
  explicit Context(Device device);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // The calling thread's context for `device` (created on first use). For a CUDA device it also
  // makes that device the thread's current one (as PyTorch's per-op device guard does), so ops
  // on cuda:N work from any thread.
  static Context& current(Device device);
  // The context of the device of t.
  static Context& of(const class Tensor& t);

  Device device() const { return device_; }
  // cudaStream_t / cublasHandle_t / cudnnHandle_t as opaque pointers (nullptr on the CPU). The
  // handles are created on first use and bound to stream().
  void* stream() const;
  void* cublas();
  void* cudnn();
  // Waits for all work enqueued on this context.
  void synchronize() const;

  // TF32 tensor-core math for float32 GEMMs and cuDNN convolutions (off by default: fp32 results
  // stay fp32-accurate).
  bool allow_tf32() const { return allow_tf32_; }
  void set_allow_tf32(bool on) { allow_tf32_ = on; }

 private:
  struct CudaState;  // stream and handles, defined in core/cuda/context.cpp
  Device device_;
  std::unique_ptr<CudaState> cuda_;
  bool allow_tf32_ = false;
};

}  // namespace cyclone
