// CUDA grids for the elementwise functors of kernels/functors.h: grid-stride loops, one
// instantiation per (op, dtype). Full-size operands take a separate path without index math, in
// 16-byte packs where aligned (packed_loop).
#include <cstdint>

#include "cyclone/kernels/cast.h"
#include "cyclone/kernels/cuda/elementwise.h"
#include "cyclone/kernels/cuda/launch.cuh"

namespace cyclone::kernels::cuda {

namespace {

// The full-size kernels below run over V-element packs (launch.cuh), then the last n % V elements
// one by one; V = kPack when every operand is 16-byte aligned, else 1. A bfloat16 add then moves
// 16 bytes per load instead of 2.
template <int V, class F>
__device__ __forceinline__ void packed_loop(int64_t n, F&& pack, /* tail */ auto&& one) {
  const int64_t packs = n / V;
  CYCLONE_GRID_STRIDE(i, packs) { pack(i); }
  if constexpr (V > 1) {
    CYCLONE_GRID_STRIDE(i, n - packs * V) { one(packs * V + i); }
  }
}
// Elements stored as T are computed in M = math_t<T> (float for bfloat16).
template <UnaryOp kOp, class T, int V, class M = math_t<T>>
__global__ void unary_kernel(const T* __restrict__ x, T* __restrict__ out, int64_t n, M a, M b) {
  const auto* xp = reinterpret_cast<const Pack<T, V>*>(x);
  auto* op = reinterpret_cast<Pack<T, V>*>(out);
  packed_loop<V>(
      n,
      [&](int64_t i) {
        const Pack<T, V> in = xp[i];
        Pack<T, V> r;
#pragma unroll
        for (int j = 0; j < V; ++j) r.v[j] = T(unary_fn<kOp, M>(M(in.v[j]), a, b));
        op[i] = r;
      },
      [&](int64_t i) { out[i] = T(unary_fn<kOp, M>(M(x[i]), a, b)); });
}

// No __restrict__: out may alias an input for in-place updates (each element is read before it
// is written, by the same thread).
template <BinaryOp kOp, class T, int V, class M = math_t<T>>
__global__ void binary_full_kernel(const T* x, const T* y, T* out, int64_t n) {
  const auto* xp = reinterpret_cast<const Pack<T, V>*>(x);
  const auto* yp = reinterpret_cast<const Pack<T, V>*>(y);
  auto* op = reinterpret_cast<Pack<T, V>*>(out);
  packed_loop<V>(
      n,
      [&](int64_t i) {
        const Pack<T, V> a = xp[i], b = yp[i];
        Pack<T, V> r;
#pragma unroll
        for (int j = 0; j < V; ++j) r.v[j] = T(binary_fn<kOp, M>(M(a.v[j]), M(b.v[j])));
        op[i] = r;
      },
      [&](int64_t i) { out[i] = T(binary_fn<kOp, M>(M(x[i]), M(y[i]))); });
}

template <BinaryOp kOp, class T, class M = math_t<T>>
__global__ void binary_broadcast_kernel(const T* x, BroadcastIndex ix, const T* y,
                                        BroadcastIndex iy, T* out, int64_t n) {
  CYCLONE_GRID_STRIDE(i, n) { out[i] = T(binary_fn<kOp, M>(M(x[ix(i)]), M(y[iy(i)]))); }
}

template <class T>
__global__ void fill_kernel(T* out, int64_t n, T v) {
  CYCLONE_GRID_STRIDE(i, n) { out[i] = v; }
}

__global__ void increment_kernel(int32_t* counter, int64_t n) {
  CYCLONE_GRID_STRIDE(i, n) { ++counter[i]; }
}

// V packs of the wider of the two types.
template <class To, class From, int V>
__global__ void cast_kernel(const From* x, To* out, int64_t n) {
  const auto* xp = reinterpret_cast<const Pack<From, V>*>(x);
  auto* op = reinterpret_cast<Pack<To, V>*>(out);
  packed_loop<V>(
      n,
      [&](int64_t i) {
        const Pack<From, V> in = xp[i];
        Pack<To, V> r;
#pragma unroll
        for (int j = 0; j < V; ++j) r.v[j] = convert<To>(in.v[j]);
        op[i] = r;
      },
      [&](int64_t i) { out[i] = convert<To>(x[i]); });
}

// One thread per 4-byte word of the output (rows of float32 / int32 are whole words); a byte
// kernel for rows that are not.
template <class W>
__global__ void gather_rows_kernel(const W* src, const int32_t* index, W* out, int64_t rows,
                                   int64_t words_per_row, int64_t n) {
  CYCLONE_GRID_STRIDE(i, n) {
    const int64_t b = i / words_per_row, k = i - b * words_per_row;
    const int32_t r = index[b];
    out[i] = (r >= 0 && r < rows) ? src[static_cast<int64_t>(r) * words_per_row + k] : W(0);
  }
}

}  // namespace

void unary(Context& ctx, UnaryOp op, const Tensor& x, const Tensor& out, double a, double b) {
  const int64_t n = x.numel();
  if (n == 0) return;
  CYCLONE_DISPATCH_FLOATING(x.dtype(), T, [&] {
    using M = math_t<T>;
    dispatch_unary(op, [&]<UnaryOp kOp>() {
      with_pack<T>(aligned16({x.raw_data(), out.raw_data()}), [&](auto v) {
        constexpr int V = decltype(v)::value;
        unary_kernel<kOp, T, V><<<grid_for(n / V + 1), kBlock, 0, stream_of(ctx)>>>(
            x.data<T>(), out.data<T>(), n, static_cast<M>(a), static_cast<M>(b));
      });
    });
  });
  gpu::check_launch(unary_op_name(op), ctx.stream());
}

void binary(Context& ctx, BinaryOp op, const Tensor& x, const Tensor& y, const Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  const BroadcastIndex ix = broadcast_index(x, out.shape());
  const BroadcastIndex iy = broadcast_index(y, out.shape());
  const bool full = ix.mode == Broadcast::kFull && iy.mode == Broadcast::kFull;
  CYCLONE_DISPATCH_FLOATING(x.dtype(), T, [&] {
    dispatch_binary(op, [&]<BinaryOp kOp>() {
      if (full)
        with_pack<T>(aligned16({x.raw_data(), y.raw_data(), out.raw_data()}), [&](auto v) {
          constexpr int V = decltype(v)::value;
          binary_full_kernel<kOp, T, V><<<grid_for(n / V + 1), kBlock, 0, stream_of(ctx)>>>(
              x.data<T>(), y.data<T>(), out.data<T>(), n);
        });
      else
        binary_broadcast_kernel<kOp, T><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(
            x.data<T>(), ix, y.data<T>(), iy, out.data<T>(), n);
    });
  });
  gpu::check_launch(binary_op_name(op), ctx.stream());
}

void fill(Context& ctx, const Tensor& out, double value) {
  const int64_t n = out.numel();
  if (n == 0) return;
  CYCLONE_DISPATCH_ALL(out.dtype(), T, [&] {
    fill_kernel<T><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(out.data<T>(), n, convert<T>(value));
  });
  gpu::check_launch("fill", ctx.stream());
}

void increment(Context& ctx, const Tensor& counter) {
  const int64_t n = counter.numel();
  if (n == 0) return;
  increment_kernel<<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(counter.data<int32_t>(), n);
  gpu::check_launch("increment", ctx.stream());
}

void gather_rows(Context& ctx, const Tensor& src, const Tensor& index, const Tensor& out) {
  const int64_t rows = src.dim(0), b = index.numel();
  if (b == 0) return;
  // From out, so a source with no rows still gives zero rows (every entry is out of range).
  const int64_t row_bytes = static_cast<int64_t>(out.nbytes()) / b;
  if (row_bytes == 0) return;
  // Words only where both starts are word-aligned: a slice of a 16-bit tensor may start at 2 mod 4.
  const auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 4 == 0; };
  if (row_bytes % 4 == 0 && aligned(src.raw_data()) && aligned(out.raw_data())) {
    const int64_t w = row_bytes / 4, n = b * w;
    gather_rows_kernel<uint32_t><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(
        static_cast<const uint32_t*>(src.raw_data()), index.data<int32_t>(),
        static_cast<uint32_t*>(out.raw_data()), rows, w, n);
  } else {
    const int64_t n = b * row_bytes;
    gather_rows_kernel<uint8_t><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(
        static_cast<const uint8_t*>(src.raw_data()), index.data<int32_t>(),
        static_cast<uint8_t*>(out.raw_data()), rows, row_bytes, n);
  }
  gpu::check_launch("gather_rows", ctx.stream());
}

void cast(Context& ctx, const Tensor& x, const Tensor& out) {
  const int64_t n = x.numel();
  if (n == 0) return;
  CYCLONE_DISPATCH_ALL(x.dtype(), From, [&] {
    CYCLONE_DISPATCH_ALL(out.dtype(), To, [&] {
      using Wide = std::conditional_t<(sizeof(From) > sizeof(To)), From, To>;
      with_pack<Wide>(aligned16({x.raw_data(), out.raw_data()}), [&](auto v) {
        constexpr int V = decltype(v)::value;
        cast_kernel<To, From, V>
            <<<grid_for(n / V + 1), kBlock, 0, stream_of(ctx)>>>(x.data<From>(), out.data<To>(), n);
      });
    });
  });
  gpu::check_launch("cast", ctx.stream());
}

}  // namespace cyclone::kernels::cuda
