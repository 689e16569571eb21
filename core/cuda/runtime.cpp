// The CUDA runtime facade of core/cuda/runtime.h. Every call is checked; functions that release
// something (destroy / free) never throw, because they run from destructors and deleters (see
// detail::teardown in guard.h).
#include "cyclone/core/cuda/runtime.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <library_types.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "cyclone/core/cuda/caching_allocator.h"
#include "cyclone/core/cuda/check.h"
#include "cyclone/core/cuda/guard.h"

namespace cyclone::gpu {

namespace detail {
void check_device(int device) {
  const int n = device_count_noexcept();
  CYCLONE_CHECK(device >= 0 && device < n, "no CUDA device cuda:", device, ": this machine has ", n,
                " usable CUDA device(s)",
                n == 0 ? " (no GPU, no driver, or CUDA_VISIBLE_DEVICES hides them)" : "");
}
}  // namespace detail

namespace {

cudaStream_t as_stream(void* s) { return static_cast<cudaStream_t>(s); }

// cuBLAS workspace per handle, owned by the caching allocator. Why not cuBLAS's default: the
// default pool is allocated by cuBLAS itself, and while a stream is being captured into a CUDA
// graph cuBLAS allocates a fresh workspace for every capture (memory that grows with each graph,
// outside our stats and our cap). A workspace of our own, set after cublasSetStream (which resets
// the workspace to the default pool), makes every GEMM of a captured step use memory the
// allocator accounts for. Sizes are the cuBLAS guide's recommendation: 32 MiB on Hopper, 4 MiB
// before.
struct CublasWorkspaces {
  std::mutex mutex;
  std::unordered_map<cublasHandle_t, void*> by_handle;
};
CublasWorkspaces& cublas_workspaces() {
  // Leaked on purpose: a Context destroyed during static destruction may still release its
  // handle after this function's statics would be gone.
  static CublasWorkspaces& w = *std::make_unique<CublasWorkspaces>().release();
  return w;
}

size_t cublas_workspace_bytes(int device) {
  int major = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  return major >= 9 ? (size_t{32} << 20) : (size_t{4} << 20);
}

bool sync_after_launch() {
  static const bool on = [] {
    const char* v = std::getenv("CYCLONE_SYNC");
    return v != nullptr && std::strcmp(v, "0") != 0 && v[0] != '\0';
  }();
  return on;
}

}  // namespace

int device_count_noexcept() {
  // Probed once: the set of visible devices is fixed when the runtime initialises.
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      (void)cudaGetLastError();  // no driver / no device: clear it so no later check reports it
      return 0;
    }
    return n;
  }();
  return count;
}

const char* versions() {
  static const std::string text = [] {
    int runtime = 0, driver = 0, major = 0, minor = 0, patch = 0;
    if (cudaRuntimeGetVersion(&runtime) != cudaSuccess) runtime = 0;
    if (cudaDriverGetVersion(&driver) != cudaSuccess) driver = 0;  // 0 also means "no driver"
    (void)cudaGetLastError();
    int cublas = 0;
    if (cublasGetProperty(MAJOR_VERSION, &major) == CUBLAS_STATUS_SUCCESS &&
        cublasGetProperty(MINOR_VERSION, &minor) == CUBLAS_STATUS_SUCCESS &&
        cublasGetProperty(PATCH_LEVEL, &patch) == CUBLAS_STATUS_SUCCESS) {
      cublas = major * 10000 + minor * 100 + patch;
    }
    return cyclone::detail::str_cat("cuda runtime ", runtime, ", driver ",
                                    driver ? std::to_string(driver) : std::string("none"),
                                    ", cublas ", cublas, ", cudnn ", cudnnGetVersion());
  }();
  return text.c_str();
}

void set_device(int device) {
  detail::check_device(device);
  CUDA_CHECK(cudaSetDevice(device));
}

size_t device_total_memory(int device) {
  detail::check_device(device);
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  return prop.totalGlobalMem;
}

std::string device_name(int device) {
  detail::check_device(device);
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  return prop.name;
}

int current_device() {
  int d = 0;
  CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

void make_current(int device) {
  int d = 0;
  CUDA_CHECK(cudaGetDevice(&d));
  if (d != device) set_device(device);
}

void* stream_create(int device) {
  detail::DeviceGuard guard(device);
  cudaStream_t s = nullptr;
  // Non-blocking: no implicit synchronisation with the legacy default stream, which would both
  // serialise unrelated work and break graph capture.
  CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return s;
}

void stream_destroy(void* stream) {
  if (stream == nullptr) return;
  detail::teardown("stream_destroy", [&] {
    // Drain first: the caching allocator keys free blocks by stream handle, and the driver may
    // hand the same handle value to the next stream created. Once the old stream's work is done,
    // a block cached under that value is idle and safe for whoever reuses the handle.
    cudaError_t e = cudaStreamSynchronize(as_stream(stream));
    if (e == cudaErrorCudartUnloading) return;
    CUDA_CHECK(e);
    CUDA_CHECK(cudaStreamDestroy(as_stream(stream)));
  });
}

void stream_synchronize(void* stream) { CUDA_CHECK(cudaStreamSynchronize(as_stream(stream))); }

void device_synchronize(int device) {
  detail::DeviceGuard guard(device);
  CUDA_CHECK(cudaDeviceSynchronize());
}

void memcpy_async(void* dst, const void* src, size_t nbytes, void* stream) {
  if (nbytes == 0) return;
  CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDefault, as_stream(stream)));
}

void memset_async(void* dst, int value, size_t nbytes, void* stream) {
  if (nbytes == 0) return;
  CUDA_CHECK(cudaMemsetAsync(dst, value, nbytes, as_stream(stream)));
}

void* host_alloc_pinned(size_t nbytes) {
  if (nbytes == 0) return nullptr;
  void* p = nullptr;
  // Portable: pinned for every device's context, so multi-GPU data loading can share buffers.
  cudaError_t e = cudaHostAlloc(&p, nbytes, cudaHostAllocPortable);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();  // not sticky; keep it from resurfacing at the next launch check
    CYCLONE_THROW("cannot allocate ", nbytes, " bytes of pinned host memory: ", cudaGetErrorName(e),
                  " (", cudaGetErrorString(e), ")");
  }
  return p;
}

void host_free_pinned(void* p) {
  if (p == nullptr) return;
  detail::teardown("host_free_pinned", [&] {
    cudaError_t e = cudaFreeHost(p);
    if (e == cudaErrorCudartUnloading) return;
    CUDA_CHECK(e);
  });
}

void* cublas_create(int device, void* stream) {
  detail::DeviceGuard guard(device);
  cublasHandle_t h = nullptr;
  CUBLAS_CHECK(cublasCreate(&h));
  void* workspace = nullptr;
  try {
    CUBLAS_CHECK(cublasSetStream(h, as_stream(stream)));
    // bfloat16 / float16 GEMMs sum split-K partials in float too, so C is rounded once
    // (kernels/gemm.h); TF32 stays chosen per call by the compute type.
    CUBLAS_CHECK(cublasSetMathMode(
        h, static_cast<cublasMath_t>(CUBLAS_DEFAULT_MATH |
                                     CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)));
    // After cublasSetStream, which resets the workspace to cuBLAS's own pool.
    const size_t bytes = cublas_workspace_bytes(device);
    workspace = caching_malloc(bytes, device, stream);
    CUBLAS_CHECK(cublasSetWorkspace(h, workspace, bytes));
    auto& w = cublas_workspaces();
    std::lock_guard lock(w.mutex);
    w.by_handle[h] = workspace;
  } catch (...) {
    (void)cublasDestroy(h);  // already failing: the first error is the one worth reporting
    if (workspace) caching_free(workspace);
    throw;
  }
  return h;
}

void cublas_destroy(void* handle) {
  if (handle == nullptr) return;
  auto h = static_cast<cublasHandle_t>(handle);
  void* workspace = nullptr;
  {
    auto& w = cublas_workspaces();
    std::lock_guard lock(w.mutex);
    if (auto it = w.by_handle.find(h); it != w.by_handle.end()) {
      workspace = it->second;
      w.by_handle.erase(it);
    }
  }
  detail::teardown("cublas_destroy", [&] { CUBLAS_CHECK(cublasDestroy(h)); });
  // The workspace was allocated on the handle's stream and only used there, so stream order
  // makes returning it to that stream's free list safe without a sync.
  if (workspace) caching_free(workspace);
}

void* cudnn_create(int device, void* stream) {
  detail::DeviceGuard guard(device);
  cudnnHandle_t h = nullptr;
  CUDNN_CHECK(cudnnCreate(&h));
  cudnnStatus_t st = cudnnSetStream(h, as_stream(stream));
  if (st != CUDNN_STATUS_SUCCESS) {
    (void)cudnnDestroy(h);  // already failing: report the first error
    CUDNN_CHECK(st);
  }
  return h;
}

void cudnn_destroy(void* handle) {
  if (handle == nullptr) return;
  detail::teardown("cudnn_destroy",
                   [&] { CUDNN_CHECK(cudnnDestroy(static_cast<cudnnHandle_t>(handle))); });
}

void check_launch(const char* what, void* stream) {
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) [[unlikely]] {
    CYCLONE_THROW("kernel launch of ", what, " failed: ", cudaGetErrorName(e), " (",
                  cudaGetErrorString(e), ")");
  }
  if (sync_after_launch()) {
    // Synchronising a stream under graph capture is illegal (it would invalidate the capture),
    // and a captured kernel has not run anyway: the check happens at replay.
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    CUDA_CHECK(cudaStreamIsCapturing(as_stream(stream), &status));
    if (status != cudaStreamCaptureStatusNone) return;
    e = cudaStreamSynchronize(as_stream(stream));
    if (e != cudaSuccess) {
      CYCLONE_THROW("kernel ", what, " failed (found by CYCLONE_SYNC=1 right after its launch): ",
                    cudaGetErrorName(e), " (", cudaGetErrorString(e), ")");
    }
  }
}

}  // namespace cyclone::gpu
