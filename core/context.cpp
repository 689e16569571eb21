#include "cyclone/core/context.h"

#include <map>

#include "cyclone/core/cuda/runtime.h"
#include "cyclone/core/tensor.h"

namespace cyclone {

struct Context::CudaState {
  void* stream = nullptr;
  void* cublas = nullptr;
  void* cudnn = nullptr;
};

Context::Context(Device device) : device_(device) {
  if (device.is_cuda()) {
    cuda_ = std::make_unique<CudaState>();
    cuda_->stream = gpu::stream_create(device.index);
  }
}

Context::~Context() {
  if (!cuda_) return;
  // The destroy functions never throw (they report on stderr), and stream_destroy waits for the
  // stream's work first, so the handles are always released.
  if (cuda_->cudnn) gpu::cudnn_destroy(cuda_->cudnn);
  if (cuda_->cublas) gpu::cublas_destroy(cuda_->cublas);
  gpu::stream_destroy(cuda_->stream);
}

Context& Context::current(Device device) {
  // One context per device per thread. Contexts live until the thread ends; their streams are
  // what this thread's kernels and allocations are ordered on.
  thread_local std::map<std::pair<int, int>, std::unique_ptr<Context>> contexts;
  const std::pair<int, int> key{static_cast<int>(device.type), device.is_cuda() ? device.index : 0};
  auto it = contexts.find(key);
  if (it == contexts.end()) it = contexts.emplace(key, std::make_unique<Context>(device)).first;
  // The caller is about to work on this device: make it current (ops on cuda:1 from a thread
  // whose current device is 0 would otherwise fail to launch).
  if (device.is_cuda()) gpu::make_current(device.index);
  return *it->second;
}

Context& Context::of(const Tensor& t) { return current(t.device()); }

void* Context::stream() const { return cuda_ ? cuda_->stream : nullptr; }

void* Context::cublas() {
  if (!cuda_) return nullptr;
  if (!cuda_->cublas) cuda_->cublas = gpu::cublas_create(device_.index, cuda_->stream);
  return cuda_->cublas;
}

void* Context::cudnn() {
  if (!cuda_) return nullptr;
  if (!cuda_->cudnn) cuda_->cudnn = gpu::cudnn_create(device_.index, cuda_->stream);
  return cuda_->cudnn;
}

void Context::synchronize() const {
  if (cuda_) gpu::stream_synchronize(cuda_->stream);
}

}  // namespace cyclone
