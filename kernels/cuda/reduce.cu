// CUDA reductions: tree reductions (warp shuffles, then one shared-memory slot per warp), no
// atomics, launch shapes that depend on the tensor shapes only - so every result is bit-identical
// run to run. Three layouts of [outer, len, inner]:
//   - short contiguous rows (inner == 1, len <= 256): one warp per row;
//   - long contiguous rows: one block per row, or, when there are too few rows to fill the GPU, a
//     two-pass split (per-block partials of each row, then one block per row combines them);
//   - strided (inner > 1): 32 outputs per block along inner (coalesced), 8 threads splitting len;
//     a few long columns (outer == 1, inner <= 32) take the two-pass split instead.
// reduce_all and reduce_channels always take the two-pass path (segments = 1 or C).
// float32 sums accumulate in double: these kernels are bound by memory bandwidth, and the double
// adds keep the result as accurate as the CPU's pairwise sum however long a thread's run is.
#include <algorithm>
#include <climits>
#include <cmath>

#include "cyclone/kernels/cuda/launch.cuh"
#include "cyclone/kernels/cuda/reduce.h"

namespace cyclone::kernels::cuda {

namespace {

constexpr int kStridedRows = 8;  // threads along len in the strided kernel (x 32 along inner)
constexpr int kShortRow = 256;   // rows up to this long get one warp each
constexpr int kReduceTargetBlocks = 1024;  // enough blocks to fill an H100 (132 SMs) several times
constexpr int64_t kReduceMinPerBlock =
    kBlock * 4;  // fewer elements than this per block is not worth it

// ---- reduction policies: Acc is the running state, load() turns element k into one ----

template <class T>
struct SumOp {
  using Acc = double;
  using Out = T;
  __device__ static Acc identity() { return 0.0; }
  __device__ static Acc load(T v, int64_t) { return static_cast<Acc>(v); }
  __device__ static Acc combine(Acc a, Acc b) { return a + b; }
  // div is 1 for a sum and the element count for a mean.
  __device__ static Out finalize(Acc a, double div) { return static_cast<T>(a / div); }
};

template <class T>
struct MaxOp {
  using Acc = T;
  using Out = T;
  __device__ static Acc identity() { return static_cast<T>(-INFINITY); }
  __device__ static Acc load(T v, int64_t) { return v; }
  // Propagates NaN from either side (torch.max): comparisons with NaN are false.
  __device__ static Acc combine(Acc a, Acc b) { return (a != a || a > b) ? a : b; }
  __device__ static Out finalize(Acc a, double) { return a; }
};

template <class T>
struct ArgPair {
  T v;
  int i;
};

template <class T>
struct ArgMaxOp {
  using Acc = ArgPair<T>;
  using Out = int32_t;
  __device__ static Acc identity() { return {static_cast<T>(-INFINITY), INT_MAX}; }
  __device__ static Acc load(T v, int64_t k) { return {v, static_cast<int>(k)}; }
  // NaN beats any number, a larger value beats a smaller, and ties go to the smaller index, so
  // the result is the first maximum whatever order the tree combines in.
  __device__ static Acc combine(Acc a, Acc b) {
    const bool an = a.v != a.v, bn = b.v != b.v;
    if (an != bn) return an ? a : b;
    if (!an && a.v != b.v) return a.v > b.v ? a : b;
    return a.i < b.i ? a : b;
  }
  __device__ static Out finalize(Acc a, double) { return a.i; }
};

__device__ inline float shfl_down(float v, int off) {
  return __shfl_down_sync(0xffffffffu, v, off);
}
__device__ inline double shfl_down(double v, int off) {
  return __shfl_down_sync(0xffffffffu, v, off);
}
template <class T>
__device__ inline ArgPair<T> shfl_down(ArgPair<T> p, int off) {
  return {shfl_down(p.v, off), __shfl_down_sync(0xffffffffu, p.i, off)};
}

// The whole warp must call; lane 0 gets the result.
template <class Op>
__device__ typename Op::Acc warp_reduce(typename Op::Acc a) {
  for (int off = kWarpSize / 2; off > 0; off /= 2) a = Op::combine(a, shfl_down(a, off));
  return a;
}

// The whole block (a multiple of 32 threads, at most 1024) must call; thread 0 gets the result.
// Safe to call repeatedly in a loop: it synchronises before returning.
template <class Op>
__device__ typename Op::Acc block_reduce(typename Op::Acc a) {
  using Acc = typename Op::Acc;
  __shared__ __align__(16) unsigned char raw[kWarpSize * sizeof(Acc)];
  Acc* slots = reinterpret_cast<Acc*>(raw);
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  a = warp_reduce<Op>(a);
  if (lane == 0) slots[warp] = a;
  __syncthreads();
  if (warp == 0) {
    const int warps = blockDim.x / kWarpSize;
    a = warp_reduce<Op>(lane < warps ? slots[lane] : Op::identity());
  }
  __syncthreads();
  return a;
}

// One warp per contiguous row of len elements.
template <class Op, class T>
__global__ void rows_warp_kernel(const T* __restrict__ x, typename Op::Out* __restrict__ out,
                                 int64_t rows, int64_t len, double div) {
  const int lane = threadIdx.x % kWarpSize;
  const int64_t warps = int64_t(gridDim.x) * (blockDim.x / kWarpSize);
  for (int64_t r = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) / kWarpSize; r < rows;
       r += warps) {
    const T* row = x + r * len;
    typename Op::Acc a = Op::identity();
    for (int64_t k = lane; k < len; k += kWarpSize) a = Op::combine(a, Op::load(row[k], k));
    a = warp_reduce<Op>(a);
    if (lane == 0) out[r] = Op::finalize(a, div);
  }
}

// One block per contiguous row.
template <class Op, class T>
__global__ void rows_block_kernel(const T* __restrict__ x, typename Op::Out* __restrict__ out,
                                  int64_t rows, int64_t len, double div) {
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const T* row = x + r * len;
    typename Op::Acc a = Op::identity();
    for (int64_t k = threadIdx.x; k < len; k += blockDim.x) a = Op::combine(a, Op::load(row[k], k));
    a = block_reduce<Op>(a);
    if (threadIdx.x == 0) out[r] = Op::finalize(a, div);
  }
}

// [outer, len, inner] with inner > 1; block (32, kStridedRows). Output j = o * inner + i: threads
// with consecutive threadIdx.x read consecutive i, so loads are coalesced.
template <class Op, class T>
__global__ void strided_kernel(const T* __restrict__ x, typename Op::Out* __restrict__ out,
                               int64_t outer, int64_t len, int64_t inner, double div) {
  using Acc = typename Op::Acc;
  __shared__ __align__(16) unsigned char raw[kStridedRows * kWarpSize * sizeof(Acc)];
  Acc* slots = reinterpret_cast<Acc*>(raw);
  const int64_t m = outer * inner;
  for (int64_t base = blockIdx.x * int64_t(kWarpSize); base < m;
       base += int64_t(gridDim.x) * kWarpSize) {
    const int64_t j = base + threadIdx.x;
    Acc a = Op::identity();
    if (j < m) {
      const int64_t o = j / inner, i = j - o * inner;
      const T* p = x + o * len * inner + i;
      for (int64_t k = threadIdx.y; k < len; k += kStridedRows)
        a = Op::combine(a, Op::load(p[k * inner], k));
    }
    slots[threadIdx.y * kWarpSize + threadIdx.x] = a;
    __syncthreads();
    if (threadIdx.y == 0 && j < m) {
      for (int r = 1; r < kStridedRows; ++r) a = Op::combine(a, slots[r * kWarpSize + threadIdx.x]);
      out[j] = Op::finalize(a, div);
    }
    __syncthreads();
  }
}

// Pass 1 of the two-pass reduction. Segment c (of C) holds m = N * inner elements; element
// e = n * inner + i sits at (n * C + c) * inner + i (at c * inner + e when N == 1, kContiguous).
// gridDim.x = slices per segment; block (s, c) reduces elements s*blockDim + t + k*slices*blockDim
// into partial[c * slices + s].
template <class Op, class T, bool kContiguous>
__global__ void segment_partial_kernel(const T* __restrict__ x,
                                       typename Op::Acc* __restrict__ partial, int64_t batch,
                                       int64_t segments, int64_t inner) {
  const int64_t m = batch * inner;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t c = blockIdx.y; c < segments; c += gridDim.y) {
    typename Op::Acc a = Op::identity();
    for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < m; e += stride) {
      int64_t at;
      if constexpr (kContiguous) {
        at = c * inner + e;
      } else {
        const int64_t n = e / inner;
        at = (n * segments + c) * inner + (e - n * inner);
      }
      a = Op::combine(a, Op::load(x[at], e));
    }
    a = block_reduce<Op>(a);
    if (threadIdx.x == 0) partial[c * gridDim.x + blockIdx.x] = a;
  }
}

// Pass 2: one block per segment combines its `slices` partials in a fixed order.
template <class Op>
__global__ void segment_final_kernel(const typename Op::Acc* __restrict__ partial,
                                     typename Op::Out* __restrict__ out, int64_t segments,
                                     int slices, double div) {
  for (int64_t c = blockIdx.x; c < segments; c += gridDim.x) {
    typename Op::Acc a = Op::identity();
    for (int s = threadIdx.x; s < slices; s += blockDim.x)
      a = Op::combine(a, partial[c * slices + s]);
    a = block_reduce<Op>(a);
    if (threadIdx.x == 0) out[c] = Op::finalize(a, div);
  }
}

template <class T>
__global__ void broadcast_axis_kernel(const T* __restrict__ src, T* __restrict__ out, int64_t n,
                                      int64_t len, int64_t inner) {
  CYCLONE_GRID_STRIDE(j, n) {
    const int64_t o = j / (len * inner), i = j % inner;
    out[j] = src[o * inner + i];
  }
}

// An index outside [0, len) writes no gradient anywhere (the CPU path throws; the indices come
// from argmax_axis, so that would be a bug upstream).
template <class T>
__global__ void scatter_axis_kernel(const T* __restrict__ src, const int32_t* __restrict__ index,
                                    T* __restrict__ out, int64_t n, int64_t len, int64_t inner) {
  CYCLONE_GRID_STRIDE(j, n) {
    const int64_t i = j % inner, ok = j / inner, k = ok % len, o = ok / len;
    const int64_t s = o * inner + i;
    out[j] = index[s] == k ? src[s] : T(0);
  }
}

// `blocks` blocks, capped like every grid-stride launch (launch.cuh).
int grid_cap(int64_t blocks) { return grid_for(blocks, 1); }

// The two-pass path: `segments` results from segments of batch * inner elements each.
template <class Op, class T>
void run_segments(Context& ctx, const T* x, typename Op::Out* out, int64_t batch, int64_t segments,
                  int64_t inner, double div) {
  using Acc = typename Op::Acc;
  const int64_t m = batch * inner;
  const int64_t by_size = (m + kReduceMinPerBlock - 1) / kReduceMinPerBlock;
  const int64_t by_fill = (kReduceTargetBlocks + segments - 1) / segments;
  const int slices = static_cast<int>(std::clamp<int64_t>(std::min(by_size, by_fill), 1, 1024));
  const int ys = static_cast<int>(std::min<int64_t>(segments, 65535));
  // Scratch from the caching allocator on ctx's stream (which need not be the current context's):
  // freeing it at the end of this function is stream-ordered after the kernels below.
  Tensor scratch = Tensor::empty(
      Shape{static_cast<int64_t>(segments * slices * static_cast<int64_t>(sizeof(Acc)))},
      DType::kUInt8, ctx);
  Acc* partial = static_cast<Acc*>(scratch.raw_data());
  if (batch == 1)
    segment_partial_kernel<Op, T, true>
        <<<dim3(slices, ys), kBlock, 0, stream_of(ctx)>>>(x, partial, batch, segments, inner);
  else
    segment_partial_kernel<Op, T, false>
        <<<dim3(slices, ys), kBlock, 0, stream_of(ctx)>>>(x, partial, batch, segments, inner);
  gpu::check_launch("reduce (two-pass, partials)", ctx.stream());
  const int threads =
      slices >= kBlock ? kBlock : kWarpSize * ((slices + kWarpSize - 1) / kWarpSize);
  segment_final_kernel<Op>
      <<<grid_cap(segments), threads, 0, stream_of(ctx)>>>(partial, out, segments, slices, div);
  gpu::check_launch("reduce (two-pass, final)", ctx.stream());
}

// [outer, len, inner] -> outer * inner results, choosing the layout's kernel.
template <class Op, class T>
void run_axis(Context& ctx, const T* x, typename Op::Out* out, const ReduceDims& d, double div,
              const char* name) {
  const int64_t rows = d.outer;
  if (d.inner > 1 && d.outer == 1 && d.inner <= kWarpSize && d.len > 16 * kReduceMinPerBlock) {
    // A few long columns ([len, inner] over axis 0): the strided kernel would have one block with
    // inner * 8 busy threads; as [N = len, C = inner, 1] the two-pass split spreads it out.
    return run_segments<Op, T>(ctx, x, out, d.len, d.inner, 1, div);
  } else if (d.inner > 1) {
    const int64_t blocks = (rows * d.inner + kWarpSize - 1) / kWarpSize;
    strided_kernel<Op, T><<<grid_cap(blocks), dim3(kWarpSize, kStridedRows), 0, stream_of(ctx)>>>(
        x, out, rows, d.len, d.inner, div);
  } else if (d.len <= kShortRow) {
    const int64_t blocks = (rows * kWarpSize + kBlock - 1) / kBlock;
    rows_warp_kernel<Op, T>
        <<<grid_cap(blocks), kBlock, 0, stream_of(ctx)>>>(x, out, rows, d.len, div);
  } else if (rows >= kReduceTargetBlocks / 4 || d.len <= kReduceMinPerBlock) {
    rows_block_kernel<Op, T>
        <<<grid_cap(rows), kBlock, 0, stream_of(ctx)>>>(x, out, rows, d.len, div);
  } else {
    // Few long rows: one block each would leave most of the GPU idle.
    return run_segments<Op, T>(ctx, x, out, 1, rows, d.len, div);
  }
  gpu::check_launch(name, ctx.stream());
}

}  // namespace

void reduce_axis(Context& ctx, ReduceOp op, const Tensor& x, const ReduceDims& d,
                 const Tensor& out) {
  const double div = op == ReduceOp::kMean ? static_cast<double>(d.len) : 1.0;
  CYCLONE_DISPATCH_FLOAT(x.dtype(), T, [&] {
    if (op == ReduceOp::kMax)
      run_axis<MaxOp<T>, T>(ctx, x.data<T>(), out.data<T>(), d, div, "reduce_axis");
    else
      run_axis<SumOp<T>, T>(ctx, x.data<T>(), out.data<T>(), d, div, "reduce_axis");
  });
}

void reduce_all(Context& ctx, ReduceOp op, const Tensor& x, const Tensor& out) {
  const int64_t n = x.numel();
  const double div = op == ReduceOp::kMean ? static_cast<double>(n) : 1.0;
  CYCLONE_DISPATCH_FLOAT(x.dtype(), T, [&] {
    if (op == ReduceOp::kMax)
      run_segments<MaxOp<T>, T>(ctx, x.data<T>(), out.data<T>(), 1, 1, n, div);
    else
      run_segments<SumOp<T>, T>(ctx, x.data<T>(), out.data<T>(), 1, 1, n, div);
  });
}

// ---- sum_squares: a partial per block of each tensor, then one block sums the partials ----

namespace {

// Blocks for n elements: ~16 per thread, at most 1024: a function of n only (deterministic).
int64_t squares_blocks(int64_t n) {
  if (n == 0) return 0;
  return std::clamp<int64_t>((n + kBlock * 16 - 1) / (kBlock * 16), 1, 1024);
}

// Block b sums float(x[i])^2 over its contiguous share of x in double: partial[b].
template <class T>
__global__ void squares_partial_kernel(const T* __restrict__ x, int64_t n,
                                       double* __restrict__ partial) {
  const int64_t chunk = (n + gridDim.x - 1) / gridDim.x;
  const int64_t begin = blockIdx.x * chunk, end = min(n, begin + chunk);
  double a = 0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) {
    const float v = static_cast<float>(x[i]);
    a += static_cast<double>(v * v);
  }
  a = block_reduce<SumOp<float>>(a);
  if (threadIdx.x == 0) partial[blockIdx.x] = a;
}

// One block: out = the sum of count partials (thread t takes t, t + blockDim, ... in order).
__global__ void squares_final_kernel(const double* __restrict__ partial, int64_t count,
                                     float* __restrict__ out) {
  double a = 0;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) a += partial[i];
  a = block_reduce<SumOp<float>>(a);
  if (threadIdx.x == 0) *out = static_cast<float>(a);
}

}  // namespace

void sum_squares(Context& ctx, const std::vector<Tensor>& xs, const Tensor& out) {
  int64_t total = 0;
  for (const Tensor& x : xs) total += squares_blocks(x.numel());
  const Tensor partial = Tensor::empty({std::max<int64_t>(total, 1)}, DType::kFloat64, ctx);
  const cudaStream_t stream = stream_of(ctx);
  int64_t offset = 0;
  for (const Tensor& x : xs) {
    const int64_t blocks = squares_blocks(x.numel());
    if (blocks == 0) continue;
    CYCLONE_DISPATCH_FLOATING(x.dtype(), T, [&] {
      squares_partial_kernel<T><<<static_cast<unsigned>(blocks), kBlock, 0, stream>>>(
          x.data<T>(), x.numel(), partial.data<double>() + offset);
    });
    offset += blocks;
  }
  gpu::check_launch("sum_squares partials", ctx.stream());
  squares_final_kernel<<<1, kBlock, 0, stream>>>(partial.data<double>(), total, out.data<float>());
  gpu::check_launch("sum_squares", ctx.stream());
}

void reduce_channels(Context& ctx, ReduceOp op, const Tensor& x, const ReduceDims& d,
                     const Tensor& out) {
  const double div = op == ReduceOp::kMean ? static_cast<double>(d.outer * d.inner) : 1.0;
  CYCLONE_DISPATCH_FLOAT(x.dtype(), T, [&] {
    if (op == ReduceOp::kMax)
      run_segments<MaxOp<T>, T>(ctx, x.data<T>(), out.data<T>(), d.outer, d.len, d.inner, div);
    else
      run_segments<SumOp<T>, T>(ctx, x.data<T>(), out.data<T>(), d.outer, d.len, d.inner, div);
  });
}

void argmax_axis(Context& ctx, const Tensor& x, const ReduceDims& d, const Tensor& out) {
  CYCLONE_DISPATCH_FLOAT(x.dtype(), T, [&] {
    run_axis<ArgMaxOp<T>, T>(ctx, x.data<T>(), out.data<int32_t>(), d, 1.0, "argmax_axis");
  });
}

void broadcast_axis(Context& ctx, const Tensor& src, const ReduceDims& d, const Tensor& out) {
  const int64_t n = out.numel();
  CYCLONE_DISPATCH_FLOAT(src.dtype(), T, [&] {
    broadcast_axis_kernel<T><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(
        src.data<T>(), out.data<T>(), n, d.len, d.inner);
  });
  gpu::check_launch("broadcast_axis", ctx.stream());
}

void scatter_axis(Context& ctx, const Tensor& src, const Tensor& index, const ReduceDims& d,
                  const Tensor& out) {
  const int64_t n = out.numel();
  CYCLONE_DISPATCH_FLOAT(src.dtype(), T, [&] {
    scatter_axis_kernel<T><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(
        src.data<T>(), index.data<int32_t>(), out.data<T>(), n, d.len, d.inner);
  });
  gpu::check_launch("scatter_axis", ctx.stream());
}

}  // namespace cyclone::kernels::cuda
