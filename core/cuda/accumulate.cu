// Gradient accumulation for the autograd engine: dst += src. Cost: 3 * n * sizeof(T) bytes.
#include <cuda_runtime.h>

#include "cyclone/core/cuda/accumulate.h"
#include "cyclone/core/cuda/runtime.h"

namespace cyclone::gpu {
namespace {
template <class T>
__global__ void accumulate_kernel(T* dst, const T* src, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    dst[i] += src[i];
}
}  // namespace

void accumulate(DType dtype, void* dst, const void* src, int64_t n, void* stream) {
  if (n == 0) return;
  const int block = 256;
  const int grid = static_cast<int>(std::min<int64_t>((n + block - 1) / block, 65535));
  auto s = static_cast<cudaStream_t>(stream);
  if (dtype == DType::kFloat64)
    accumulate_kernel<<<grid, block, 0, s>>>(static_cast<double*>(dst),
                                             static_cast<const double*>(src), n);
  else
    accumulate_kernel<<<grid, block, 0, s>>>(static_cast<float*>(dst),
                                             static_cast<const float*>(src), n);
  check_launch("autograd accumulate", stream);
}
}  // namespace cyclone::gpu
