// Launch helpers shared by the CUDA kernels of kernels/cuda/.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <type_traits>

#include "cyclone/core/context.h"
#include "cyclone/core/cuda/runtime.h"
#include "cyclone/core/tensor.h"

namespace cyclone::kernels::cuda {

constexpr int kBlock = 256;
constexpr int kWarpSize = 32;

// Grid for a grid-stride loop over n elements: enough blocks to fill the GPU several times over,
// capped so huge tensors reuse threads instead of launching millions of blocks.
constexpr int kMaxGrid = 132 * 32;
inline int grid_for(int64_t n, int block = kBlock) {
  const int64_t blocks = (n + block - 1) / block;
  return static_cast<int>(std::clamp<int64_t>(blocks, 1, kMaxGrid));
}

inline cudaStream_t stream_of(Context& ctx) { return static_cast<cudaStream_t>(ctx.stream()); }

// ---- 16-byte accesses: V elements of T loaded or stored as one ----
template <class T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};
// The widest V for T: 16 bytes.
template <class T>
constexpr int kPack = sizeof(T) >= 16 ? 1 : 16 / static_cast<int>(sizeof(T));
// Whether every pointer is 16-byte aligned (whole tensors are: the allocator's blocks are; a
// view at an odd offset may not be). A null pointer counts as aligned.
inline bool aligned16(std::initializer_list<const void*> ptrs) {
  for (const void* p : ptrs)
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) return false;
  return true;
}
// Calls f(std::integral_constant<int, V>) with V = kPack<T> if `wide`, else 1: a kernel templated
// on V launched for the width the operands allow.
template <class T, class F>
void with_pack(bool wide, F&& f) {
  if (wide)
    f(std::integral_constant<int, kPack<T>>{});
  else
    f(std::integral_constant<int, 1>{});
}

// The data of an optional operand (running statistics, an affine weight), or null when undefined.
template <class T>
T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

#define CYCLONE_GRID_STRIDE(i, n)                                           \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); \
       i += int64_t(gridDim.x) * blockDim.x)

}  // namespace cyclone::kernels::cuda
