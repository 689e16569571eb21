// CUDA random fills: one thread per Philox counter in a grid-stride loop, each running the functor
// of kernels/random_ops.h (the same code the CPU loop runs) and storing its V values, as one
// 16-byte vector store when the output is 16-byte aligned. Because a value depends only on
// (seed, counter), the grid size changes the speed, never the bits.
#include <cuda_runtime.h>

#include <algorithm>

#include "cyclone/core/cuda/check.h"
#include "cyclone/core/cuda/runtime.h"
#include "cyclone/core/philox.h"
#include "cyclone/kernels/cuda/random.h"
#include "cyclone/kernels/random_ops.h"

namespace cyclone::kernels::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kBlocksPerSm = 8;  // enough resident warps to hide store latency

// Stores V values of T (V * sizeof(T) == 16 bytes) as one vector.
__device__ __forceinline__ void store16(float* dst, const float* v) {
  *reinterpret_cast<float4*>(dst) = make_float4(v[0], v[1], v[2], v[3]);
}
__device__ __forceinline__ void store16(double* dst, const double* v) {
  *reinterpret_cast<double2*>(dst) = make_double2(v[0], v[1]);
}

template <class T, bool kAligned, class Op>
__global__ void __launch_bounds__(kThreads)
    fill_kernel(T* __restrict__ out, int64_t n, uint64_t seed, uint64_t offset, Op op) {
  constexpr int kV = philox::kValuesPerCounter<T>;
  const int64_t counters = (n + kV - 1) / kV;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < counters;
       j += stride) {
    T v[kV];
    op(seed, offset + static_cast<uint64_t>(j), v);
    T* dst = out + j * kV;
    if ((j + 1) * kV <= n) {
      if constexpr (kAligned) {
        store16(dst, v);
      } else {
#pragma unroll
        for (int k = 0; k < kV; ++k) dst[k] = v[k];
      }
    } else {  // the last, partial counter
      for (int64_t k = 0; k < n - j * kV; ++k) dst[k] = v[k];
    }
  }
}

int multiprocessors(int device) {
  int sms = 0;
  CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  return sms;
}

template <class T, class Op>
void launch(const char* what, Context& ctx, const Tensor& out, uint64_t seed, uint64_t offset,
            const Op& op) {
  constexpr int kV = philox::kValuesPerCounter<T>;
  const int64_t n = out.numel();
  const int64_t counters = (n + kV - 1) / kV;
  const int64_t wanted = (counters + kThreads - 1) / kThreads;
  const int blocks = static_cast<int>(std::min<int64_t>(
      wanted, static_cast<int64_t>(multiprocessors(out.device().index)) * kBlocksPerSm));
  auto stream = static_cast<cudaStream_t>(ctx.stream());
  T* p = out.data<T>();
  if (reinterpret_cast<uintptr_t>(p) % 16 == 0) {
    fill_kernel<T, true><<<blocks, kThreads, 0, stream>>>(p, n, seed, offset, op);
  } else {
    fill_kernel<T, false><<<blocks, kThreads, 0, stream>>>(p, n, seed, offset, op);
  }
  ::cyclone::gpu::check_launch(what, ctx.stream());
}

}  // namespace

void uniform_(Context& ctx, const Tensor& out, double lo, double hi, uint64_t seed,
              uint64_t offset) {
  CYCLONE_DISPATCH_FLOAT(out.dtype(), T, [&] {
    launch<T>("uniform_", ctx, out, seed, offset,
              random_ops::Uniform<T>{static_cast<T>(lo), static_cast<T>(hi - lo)});
  });
}

void normal_(Context& ctx, const Tensor& out, double mean, double std, uint64_t seed,
             uint64_t offset) {
  CYCLONE_DISPATCH_FLOAT(out.dtype(), T, [&] {
    launch<T>("normal_", ctx, out, seed, offset,
              random_ops::Normal<T>{static_cast<T>(mean), static_cast<T>(std)});
  });
}

void bernoulli_(Context& ctx, const Tensor& out, double p, uint64_t seed, uint64_t offset) {
  CYCLONE_DISPATCH_FLOAT(out.dtype(), T, [&] {
    launch<T>("bernoulli_", ctx, out, seed, offset, random_ops::Bernoulli<T>{static_cast<T>(p)});
  });
}

}  // namespace cyclone::kernels::cuda
