// Pooling on the GPU: one thread per output element (forward) or per input element (backward,
// a gather over the windows that cover it: no atomics, so results are deterministic and every
// element of dx is written). The math is kernels/pool_math.h, shared with the CPU loops.
#include <cstdint>

#include "cyclone/core/cuda/check.h"
#include "cyclone/kernels/cuda/launch.cuh"
#include "cyclone/kernels/cuda/pool.h"
#include "cyclone/kernels/pool_math.h"

namespace cyclone::kernels::cuda {

namespace {

template <class T>
__global__ void max_pool_forward_kernel(const T* __restrict__ x, T* __restrict__ y,
                                        int32_t* __restrict__ index, Pool2dGeometry g, int64_t n) {
  const int64_t out_plane = g.h_out * g.w_out;
  CYCLONE_GRID_STRIDE(i, n) {
    const int64_t q = i / out_plane, r = i % out_plane;
    pool::max_window(x + q * g.h * g.w, g, r / g.w_out, r % g.w_out, y + i, index + i);
  }
}

template <class T>
__global__ void max_pool_backward_kernel(const T* __restrict__ dy,
                                         const int32_t* __restrict__ index, T* __restrict__ dx,
                                         Pool2dGeometry g, int64_t n) {
  const int64_t in_plane = g.h * g.w, out_plane = g.h_out * g.w_out;
  CYCLONE_GRID_STRIDE(i, n) {
    const int64_t q = i / in_plane, r = i % in_plane;
    dx[i] = pool::max_backward_at(dy + q * out_plane, index + q * out_plane, g, r / g.w, r % g.w);
  }
}

template <class T>
__global__ void avg_pool_forward_kernel(const T* __restrict__ x, T* __restrict__ y,
                                        Pool2dGeometry g, int64_t n) {
  const int64_t out_plane = g.h_out * g.w_out;
  CYCLONE_GRID_STRIDE(i, n) {
    const int64_t q = i / out_plane, r = i % out_plane;
    y[i] = pool::avg_window(x + q * g.h * g.w, g, r / g.w_out, r % g.w_out);
  }
}

template <class T>
__global__ void avg_pool_backward_kernel(const T* __restrict__ dy, T* __restrict__ dx,
                                         Pool2dGeometry g, int64_t n) {
  const int64_t in_plane = g.h * g.w, out_plane = g.h_out * g.w_out;
  CYCLONE_GRID_STRIDE(i, n) {
    const int64_t q = i / in_plane, r = i % in_plane;
    dx[i] = pool::avg_backward_at(dy + q * out_plane, g, r / g.w, r % g.w);
  }
}

}  // namespace

void max_pool2d_forward(Context& ctx, const Pool2dGeometry& g, const Tensor& x, const Tensor& y,
                        const Tensor& indices) {
  const int64_t n = y.numel();
  CYCLONE_DISPATCH_FLOAT(x.dtype(), T, [&] {
    max_pool_forward_kernel<T><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(
        x.data<T>(), y.data<T>(), indices.data<int32_t>(), g, n);
  });
  gpu::check_launch("max_pool2d_forward", ctx.stream());
}

void max_pool2d_backward(Context& ctx, const Pool2dGeometry& g, const Tensor& dy,
                         const Tensor& indices, const Tensor& dx) {
  const int64_t n = dx.numel();
  CYCLONE_DISPATCH_FLOAT(dy.dtype(), T, [&] {
    max_pool_backward_kernel<T><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(
        dy.data<T>(), indices.data<int32_t>(), dx.data<T>(), g, n);
  });
  gpu::check_launch("max_pool2d_backward", ctx.stream());
}

void avg_pool2d_forward(Context& ctx, const Pool2dGeometry& g, const Tensor& x, const Tensor& y) {
  const int64_t n = y.numel();
  CYCLONE_DISPATCH_FLOAT(x.dtype(), T, [&] {
    avg_pool_forward_kernel<T>
        <<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(x.data<T>(), y.data<T>(), g, n);
  });
  gpu::check_launch("avg_pool2d_forward", ctx.stream());
}

void avg_pool2d_backward(Context& ctx, const Pool2dGeometry& g, const Tensor& dy,
                         const Tensor& dx) {
  const int64_t n = dx.numel();
  CYCLONE_DISPATCH_FLOAT(dy.dtype(), T, [&] {
    avg_pool_backward_kernel<T>
        <<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(dy.data<T>(), dx.data<T>(), g, n);
  });
  gpu::check_launch("avg_pool2d_backward", ctx.stream());
}

}  // namespace cyclone::kernels::cuda
