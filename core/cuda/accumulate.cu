// Gradient accumulation for the autograd engine: dst += src. Cost: 3 * n * sizeof(T) bytes.
#include <cuda_runtime.h>

#include "cyclone/core/cuda/accumulate.h"
#include "cyclone/core/cuda/runtime.h"
#include "cyclone/core/error.h"

namespace cyclone::gpu {
namespace {
// Elements stored as T add in M (float for bfloat16, rounded once).
template <class T, class M = math_t<T>>
__global__ void accumulate_kernel(T* dst, const T* src, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = T(M(dst[i]) + M(src[i]));
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
  else if (dtype == DType::kBFloat16)
    accumulate_kernel<<<grid, block, 0, s>>>(static_cast<bfloat16*>(dst),
                                             static_cast<const bfloat16*>(src), n);
  else if (dtype == DType::kFloat16)
    accumulate_kernel<<<grid, block, 0, s>>>(static_cast<float16*>(dst),
                                             static_cast<const float16*>(src), n);
  else if (dtype == DType::kFloat32)
    accumulate_kernel<<<grid, block, 0, s>>>(static_cast<float*>(dst),
                                             static_cast<const float*>(src), n);
  else
    CYCLONE_THROW("autograd accumulate: dtype ", dtype_name(dtype),
                  " has no gradient (float32, float64, bfloat16 or float16 expected)");
  check_launch("autograd accumulate", stream);
}
}  // namespace cyclone::gpu
