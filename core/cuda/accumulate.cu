// Gradient accumulation for the autograd engine: dst += src, 16 bytes per access where aligned.
// Cost: 3 * n * sizeof(T) bytes.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "cyclone/core/cuda/accumulate.h"
#include "cyclone/core/cuda/runtime.h"
#include "cyclone/core/error.h"

namespace cyclone::gpu {
namespace {
// V elements of T as one 16-byte access.
template <class T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

// Elements stored as T add in M (float for bfloat16, rounded once). V > 1: packs of V elements
// (both pointers 16-byte aligned), then the last n % V one by one.
template <class T, int V, class M = math_t<T>>
__global__ void accumulate_kernel(T* dst, const T* src, int64_t n) {
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t first = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  const int64_t packs = n / V;
  auto* dp = reinterpret_cast<Pack<T, V>*>(dst);
  const auto* sp = reinterpret_cast<const Pack<T, V>*>(src);
  for (int64_t i = first; i < packs; i += stride) {
    Pack<T, V> d = dp[i];
    const Pack<T, V> a = sp[i];
#pragma unroll
    for (int j = 0; j < V; ++j) d.v[j] = T(M(d.v[j]) + M(a.v[j]));
    dp[i] = d;
  }
  for (int64_t i = packs * V + first; i < n; i += stride) dst[i] = T(M(dst[i]) + M(src[i]));
}

template <class T>
void launch(void* dst, const void* src, int64_t n, cudaStream_t s) {
  constexpr int kWide = 16 / static_cast<int>(sizeof(T));
  const bool wide =
      reinterpret_cast<uintptr_t>(dst) % 16 == 0 && reinterpret_cast<uintptr_t>(src) % 16 == 0;
  const int block = 256;
  const int64_t work = wide ? n / kWide + 1 : n;
  const int grid = static_cast<int>(std::min<int64_t>((work + block - 1) / block, 65535));
  if (wide)
    accumulate_kernel<T, kWide>
        <<<grid, block, 0, s>>>(static_cast<T*>(dst), static_cast<const T*>(src), n);
  else
    accumulate_kernel<T, 1>
        <<<grid, block, 0, s>>>(static_cast<T*>(dst), static_cast<const T*>(src), n);
}
}  // namespace

void accumulate(DType dtype, void* dst, const void* src, int64_t n, void* stream) {
  if (n == 0) return;
  auto s = static_cast<cudaStream_t>(stream);
  if (dtype == DType::kFloat64)
    launch<double>(dst, src, n, s);
  else if (dtype == DType::kBFloat16)
    launch<bfloat16>(dst, src, n, s);
  else if (dtype == DType::kFloat16)
    launch<float16>(dst, src, n, s);
  else if (dtype == DType::kFloat32)
    launch<float>(dst, src, n, s);
  else
    CYCLONE_THROW("autograd accumulate: dtype ", dtype_name(dtype),
                  " has no gradient (float32, float64, bfloat16 or float16 expected)");
  check_launch("autograd accumulate", stream);
}
}  // namespace cyclone::gpu
