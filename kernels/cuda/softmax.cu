// Row-wise softmax family on the GPU. A "group" of threads owns one row: a warp (32 threads, 8
// rows per 256-thread block) when the row has at most kWarpClasses entries, else a whole block of
// kBlockGroup threads. Each thread strides over the row's columns; max and sums are combined with
// warp shuffles (then shared memory across the warps of a block). Every thread of the group ends
// with the same reduced value, so results are deterministic run to run.
#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <type_traits>

#include "cyclone/core/cuda/check.h"
#include "cyclone/kernels/cuda/elementwise.h"
#include "cyclone/kernels/cuda/launch.cuh"
#include "cyclone/kernels/cuda/softmax.h"

namespace cyclone::kernels::cuda {

namespace {

constexpr int kWarp = 32;
constexpr int64_t kWarpClasses = 1024;  // up to 32 elements per lane
constexpr int kBlockGroup = 512;

__device__ __forceinline__ float dev_exp(float v) { return expf(v); }
__device__ __forceinline__ double dev_exp(double v) { return exp(v); }
__device__ __forceinline__ float dev_log(float v) { return logf(v); }
__device__ __forceinline__ double dev_log(double v) { return log(v); }

template <class T>
__device__ __forceinline__ T nan_of() {
  return std::numeric_limits<T>::quiet_NaN();
}

// NaN-ignoring max (commutative, so every lane of a butterfly gets the same answer); a NaN in the
// row still reaches the output through the sum of exponentials.
struct MaxFn {
  template <class T>
  __device__ __forceinline__ T operator()(T a, T b) const {
    return fmax(a, b);
  }
};
struct SumFn {
  template <class T>
  __device__ __forceinline__ T operator()(T a, T b) const {
    return a + b;
  }
};

// Threads of one row: the lane within the group, and the rows a group visits.
template <int kGroup>
struct RowMap {
  static constexpr int kThreads = kGroup == kWarp ? 256 : kGroup;
  static constexpr int kRowsPerBlock = kThreads / kGroup;
  __device__ static int lane() { return static_cast<int>(threadIdx.x) % kGroup; }
  __device__ static int64_t first_row() {
    return int64_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / kGroup;
  }
  __device__ static int64_t row_step() { return int64_t(gridDim.x) * kRowsPerBlock; }
  static int blocks(int64_t rows) {
    return static_cast<int>(
        std::clamp<int64_t>((rows + kRowsPerBlock - 1) / kRowsPerBlock, 1, 65535));
  }
};

// All-reduce over the group; every thread of the group must call it (a block-uniform row loop).
template <int kGroup, class T, class Op>
__device__ __forceinline__ T group_reduce(T v, Op op) {
  for (int o = kWarp / 2; o > 0; o /= 2) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  if constexpr (kGroup == kWarp) {
    return v;
  } else {
    __shared__ T partial[kGroup / kWarp];
    __syncthreads();  // the previous call's readers are done with `partial`
    if (threadIdx.x % kWarp == 0) partial[threadIdx.x / kWarp] = v;
    __syncthreads();
    v = partial[0];
    for (int i = 1; i < kGroup / kWarp; ++i) v = op(v, partial[i]);
    return v;
  }
}

// Orders logits as torch.topk / argmax do: NaN above every number, NaNs equal to each other.
template <class T>
__device__ __forceinline__ bool above(T a, T b) {
  return (a != a && b == b) || a > b;
}
template <class T>
__device__ __forceinline__ bool same(T a, T b) {
  return a == b || (a != a && b != b);
}

template <class T, int kGroup, bool kLog>
__global__ void __launch_bounds__(RowMap<kGroup>::kThreads)
    softmax_forward_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t rows,
                           int64_t classes) {
  using M = RowMap<kGroup>;
  for (int64_t r = M::first_row(); r < rows; r += M::row_step()) {
    const T* px = x + r * classes;
    T* py = y + r * classes;
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t c = M::lane(); c < classes; c += kGroup) m = fmax(m, px[c]);
    m = group_reduce<kGroup>(m, MaxFn{});
    T s = 0;
    for (int64_t c = M::lane(); c < classes; c += kGroup) s += dev_exp(px[c] - m);
    s = group_reduce<kGroup>(s, SumFn{});
    if constexpr (kLog) {
      const T log_s = dev_log(s);  // (x - m) - log s: no rounding at |m|'s scale (see the CPU)
      for (int64_t c = M::lane(); c < classes; c += kGroup) py[c] = (px[c] - m) - log_s;
    } else {
      const T inv = T(1) / s;
      for (int64_t c = M::lane(); c < classes; c += kGroup) py[c] = dev_exp(px[c] - m) * inv;
    }
  }
}

template <class T, int kGroup, bool kLog>
__global__ void __launch_bounds__(RowMap<kGroup>::kThreads)
    softmax_backward_kernel(const T* __restrict__ y, const T* __restrict__ dy, T* dx, int64_t rows,
                            int64_t classes) {
  using M = RowMap<kGroup>;
  for (int64_t r = M::first_row(); r < rows; r += M::row_step()) {
    const int64_t o = r * classes;
    T s = 0;
    for (int64_t c = M::lane(); c < classes; c += kGroup)
      s += kLog ? dy[o + c] : dy[o + c] * y[o + c];
    s = group_reduce<kGroup>(s, SumFn{});
    for (int64_t c = M::lane(); c < classes; c += kGroup) {
      if constexpr (kLog)
        dx[o + c] = dy[o + c] - dev_exp(y[o + c]) * s;
      else
        dx[o + c] = y[o + c] * (dy[o + c] - s);
    }
  }
}

// Per row: lse and the smoothed loss (see the CPU reference for the max-relative form). A label
// outside [0, classes) makes the row's loss NaN and, when `bad` is given, records the lowest such
// row there.
template <class T, int kGroup>
__global__ void __launch_bounds__(RowMap<kGroup>::kThreads)
    cross_entropy_rows_kernel(const T* __restrict__ x, const int32_t* __restrict__ labels, T on,
                              T off, T* __restrict__ lse, double* __restrict__ row_loss, int* bad,
                              int64_t rows, int64_t classes) {
  using M = RowMap<kGroup>;
  for (int64_t r = M::first_row(); r < rows; r += M::row_step()) {
    const T* px = x + r * classes;
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t c = M::lane(); c < classes; c += kGroup) m = fmax(m, px[c]);
    m = group_reduce<kGroup>(m, MaxFn{});
    T s = 0, sum_shifted = 0;
    for (int64_t c = M::lane(); c < classes; c += kGroup) {
      const T d = px[c] - m;
      s += dev_exp(d);
      sum_shifted += d;
    }
    s = group_reduce<kGroup>(s, SumFn{});
    sum_shifted = group_reduce<kGroup>(sum_shifted, SumFn{});
    if (M::lane() == 0) {
      const int32_t label = labels[r];
      const bool valid = label >= 0 && label < classes;
      const T log_s = dev_log(s);
      lse[r] = m + log_s;
      const T x_label = valid ? px[label] : nan_of<T>();
      // No smoothing: no off term (0 * -inf from a masked logit would be NaN), as on the CPU.
      const T smooth = off != T(0) ? off * sum_shifted : T(0);
      row_loss[r] = static_cast<double>(log_s - on * (x_label - m) - smooth);
      if (!valid && bad != nullptr) atomicMin(bad, static_cast<int>(r));
    }
  }
}

// One block: the mean of the per-row losses, summed in double in a fixed order.
template <class T>
__global__ void __launch_bounds__(kBlockGroup)
    mean_kernel(const double* __restrict__ row_loss, int64_t rows, T* loss) {
  double s = 0;
  for (int64_t r = threadIdx.x; r < rows; r += kBlockGroup) s += row_loss[r];
  s = group_reduce<kBlockGroup>(s, SumFn{});
  if (threadIdx.x == 0) *loss = static_cast<T>(s / static_cast<double>(rows));
}

template <class T>
__global__ void cross_entropy_backward_kernel(const T* __restrict__ x,
                                              const int32_t* __restrict__ labels,
                                              const T* __restrict__ lse,
                                              const T* __restrict__ dloss, T on, T off,
                                              T* __restrict__ dx, int64_t rows, int64_t classes) {
  // dloss is read on the device, so a captured graph replays with whatever the upstream wrote.
  const T scale = *dloss / static_cast<T>(rows);
  CYCLONE_GRID_STRIDE(i, rows * classes) {
    const int64_t r = i / classes, c = i - r * classes;
    const int32_t label = labels[r];
    const T q = c == label ? on + off : off;
    const bool valid = label >= 0 && label < classes;
    dx[i] = valid ? (dev_exp(x[i] - lse[r]) - q) * scale : nan_of<T>();
  }
}

template <class T, int kGroup>
__global__ void __launch_bounds__(RowMap<kGroup>::kThreads)
    argmax_rows_kernel(const T* __restrict__ x, int32_t* __restrict__ out, int64_t rows,
                       int64_t classes) {
  using M = RowMap<kGroup>;
  for (int64_t r = M::first_row(); r < rows; r += M::row_step()) {
    const T* px = x + r * classes;
    T best = -std::numeric_limits<T>::infinity();
    int idx = INT_MAX;  // no element yet: loses to any real one
    for (int64_t c = M::lane(); c < classes; c += kGroup) {
      if (idx == INT_MAX || above(px[c], best)) {
        best = px[c];
        idx = static_cast<int>(c);
      }
    }
    // Combine (value, index) pairs: the larger value wins, ties go to the lower index.
    auto take = [](T& bv, int& bi, T v, int i) {
      if (above(v, bv) || (same(v, bv) && i < bi)) {
        bv = v;
        bi = i;
      }
    };
    for (int o = kWarp / 2; o > 0; o /= 2)
      take(best, idx, __shfl_xor_sync(0xffffffffu, best, o), __shfl_xor_sync(0xffffffffu, idx, o));
    if constexpr (kGroup != kWarp) {
      __shared__ T pv[kGroup / kWarp];
      __shared__ int pi[kGroup / kWarp];
      __syncthreads();
      if (threadIdx.x % kWarp == 0) {
        pv[threadIdx.x / kWarp] = best;
        pi[threadIdx.x / kWarp] = idx;
      }
      __syncthreads();
      best = pv[0];
      idx = pi[0];
      for (int i = 1; i < kGroup / kWarp; ++i) take(best, idx, pv[i], pi[i]);
    }
    if (M::lane() == 0) out[r] = idx;
  }
}

// Counts rows whose label ranks among the top k (see the CPU reference). A bad label counts as
// wrong.
template <class T, int kGroup>
__global__ void __launch_bounds__(RowMap<kGroup>::kThreads)
    topk_correct_kernel(const T* __restrict__ x, const int32_t* __restrict__ labels, int k,
                        int* count, int64_t rows, int64_t classes) {
  using M = RowMap<kGroup>;
  for (int64_t r = M::first_row(); r < rows; r += M::row_step()) {
    const T* px = x + r * classes;
    const int32_t label = labels[r];
    const bool valid = label >= 0 && label < classes;
    const T target = valid ? px[label] : T(0);
    int before = 0;
    for (int64_t c = M::lane(); c < classes; c += kGroup)
      before += above(px[c], target) || (c < label && same(px[c], target));
    before = group_reduce<kGroup>(before, SumFn{});
    if (M::lane() == 0 && valid && before < k) atomicAdd(count, 1);
  }
}

// Launches kernel<kGroup> with the group size the row length calls for.
template <class Launch>
void by_group(int64_t classes, Launch&& launch) {
  if (classes <= kWarpClasses)
    launch(std::integral_constant<int, kWarp>{});
  else
    launch(std::integral_constant<int, kBlockGroup>{});
}

struct RowsView {
  int64_t rows, classes;
  explicit RowsView(const Tensor& x) : rows(x.numel() / x.dim(-1)), classes(x.dim(-1)) {}
};

// Bad labels are looked for on the host only in debug mode (CYCLONE_SYNC=1, as check_launch) and
// outside graph capture: the check costs a synchronisation.
bool check_labels_on_host(Context& ctx) {
  static const bool debug = [] {
    const char* v = std::getenv("CYCLONE_SYNC");
    return v != nullptr && v[0] != '\0' && std::strcmp(v, "0") != 0;
  }();
  if (!debug) return false;
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  CUDA_CHECK(cudaStreamIsCapturing(stream_of(ctx), &status));
  return status == cudaStreamCaptureStatusNone;
}

}  // namespace

void softmax_forward(Context& ctx, const Tensor& x, const Tensor& y, bool log) {
  const RowsView v(x);
  if (v.rows == 0) return;
  CYCLONE_DISPATCH_FLOAT(x.dtype(), T, [&] {
    by_group(v.classes, [&](auto group) {
      constexpr int G = decltype(group)::value;
      using M = RowMap<G>;
      if (log)
        softmax_forward_kernel<T, G, true><<<M::blocks(v.rows), M::kThreads, 0, stream_of(ctx)>>>(
            x.data<T>(), y.data<T>(), v.rows, v.classes);
      else
        softmax_forward_kernel<T, G, false><<<M::blocks(v.rows), M::kThreads, 0, stream_of(ctx)>>>(
            x.data<T>(), y.data<T>(), v.rows, v.classes);
    });
  });
  gpu::check_launch(log ? "log_softmax" : "softmax", ctx.stream());
}

void softmax_backward(Context& ctx, const Tensor& y, const Tensor& dy, const Tensor& dx, bool log) {
  const RowsView v(y);
  if (v.rows == 0) return;
  CYCLONE_DISPATCH_FLOAT(y.dtype(), T, [&] {
    by_group(v.classes, [&](auto group) {
      constexpr int G = decltype(group)::value;
      using M = RowMap<G>;
      if (log)
        softmax_backward_kernel<T, G, true><<<M::blocks(v.rows), M::kThreads, 0, stream_of(ctx)>>>(
            y.data<T>(), dy.data<T>(), dx.data<T>(), v.rows, v.classes);
      else
        softmax_backward_kernel<T, G, false><<<M::blocks(v.rows), M::kThreads, 0, stream_of(ctx)>>>(
            y.data<T>(), dy.data<T>(), dx.data<T>(), v.rows, v.classes);
    });
  });
  gpu::check_launch(log ? "log_softmax_backward" : "softmax_backward", ctx.stream());
}

void softmax_cross_entropy_forward(Context& ctx, const Tensor& logits, const Tensor& labels,
                                   double label_smoothing, const Tensor& loss, const Tensor& lse) {
  const RowsView v(logits);
  // Scratch on ctx's stream, which need not be the current context's (see Tensor::empty).
  const Tensor row_loss = Tensor::empty({v.rows}, DType::kFloat64, ctx);
  Tensor bad;
  if (check_labels_on_host(ctx)) {
    bad = Tensor::empty({1}, DType::kInt32, ctx);
    cuda::fill(ctx, bad, INT_MAX);
  }
  CYCLONE_DISPATCH_FLOAT(logits.dtype(), T, [&] {
    const T on = static_cast<T>(1 - label_smoothing);
    const T off = static_cast<T>(label_smoothing / static_cast<double>(v.classes));
    by_group(v.classes, [&](auto group) {
      constexpr int G = decltype(group)::value;
      using M = RowMap<G>;
      cross_entropy_rows_kernel<T, G><<<M::blocks(v.rows), M::kThreads, 0, stream_of(ctx)>>>(
          logits.data<T>(), labels.data<int32_t>(), on, off, lse.data<T>(), row_loss.data<double>(),
          bad.defined() ? bad.data<int>() : nullptr, v.rows, v.classes);
    });
    gpu::check_launch("softmax_cross_entropy", ctx.stream());
    mean_kernel<T>
        <<<1, kBlockGroup, 0, stream_of(ctx)>>>(row_loss.data<double>(), v.rows, loss.data<T>());
    gpu::check_launch("softmax_cross_entropy mean", ctx.stream());
  });
  if (bad.defined()) {
    ctx.synchronize();  // item() waits on the current context's stream, which may not be ctx's
    const int row = bad.item<int32_t>();
    if (row != INT_MAX) {
      const int32_t label = labels.slice(row, row + 1).item<int32_t>();
      CYCLONE_THROW("softmax_cross_entropy: label ", label, " of row ", row, " is outside [0, ",
                    v.classes, ")");
    }
  }
}

void softmax_cross_entropy_backward(Context& ctx, const Tensor& logits, const Tensor& labels,
                                    double label_smoothing, const Tensor& lse, const Tensor& dloss,
                                    const Tensor& dlogits) {
  const RowsView v(logits);
  const int64_t n = v.rows * v.classes;
  CYCLONE_DISPATCH_FLOAT(logits.dtype(), T, [&] {
    const T on = static_cast<T>(1 - label_smoothing);
    const T off = static_cast<T>(label_smoothing / static_cast<double>(v.classes));
    cross_entropy_backward_kernel<T><<<grid_for(n), kBlock, 0, stream_of(ctx)>>>(
        logits.data<T>(), labels.data<int32_t>(), lse.data<T>(), dloss.data<T>(), on, off,
        dlogits.data<T>(), v.rows, v.classes);
  });
  gpu::check_launch("softmax_cross_entropy_backward", ctx.stream());
}

void argmax_rows(Context& ctx, const Tensor& x, const Tensor& out) {
  const RowsView v(x);
  CYCLONE_CHECK(v.classes <= INT_MAX, "argmax_rows: ", v.classes, " classes exceed int32 indices");
  CYCLONE_DISPATCH_FLOAT(x.dtype(), T, [&] {
    by_group(v.classes, [&](auto group) {
      constexpr int G = decltype(group)::value;
      using M = RowMap<G>;
      argmax_rows_kernel<T, G><<<M::blocks(v.rows), M::kThreads, 0, stream_of(ctx)>>>(
          x.data<T>(), out.data<int32_t>(), v.rows, v.classes);
    });
  });
  gpu::check_launch("argmax_rows", ctx.stream());
}

void topk_correct(Context& ctx, const Tensor& logits, const Tensor& labels, int k,
                  const Tensor& count) {
  const RowsView v(logits);
  gpu::memset_async(count.raw_data(), 0, sizeof(int32_t), ctx.stream());
  if (v.rows == 0) return;
  CYCLONE_DISPATCH_FLOAT(logits.dtype(), T, [&] {
    by_group(v.classes, [&](auto group) {
      constexpr int G = decltype(group)::value;
      using M = RowMap<G>;
      topk_correct_kernel<T, G><<<M::blocks(v.rows), M::kThreads, 0, stream_of(ctx)>>>(
          logits.data<T>(), labels.data<int32_t>(), k, count.data<int32_t>(), v.rows, v.classes);
    });
  });
  gpu::check_launch("topk_correct", ctx.stream());
}

}  // namespace cyclone::kernels::cuda
