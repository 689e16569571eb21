// Hand-written CUDA batch norm (kernels/batchnorm.h). Per-channel sums run in two deterministic
// stages: a grid of (P blocks per channel) x C writes partial sums in double, then one warp per
// channel combines its P partials in a fixed order. The elementwise passes (normalize, dx) are
// grid-stride loops that find the channel as (i / inner) % C, like the broadcast binary kernels.
//
// Inputs whose channel is the innermost axis (inner = 1: [N, C], and channels-last activations
// seen as [N H W, C], layers/layout.h) would read a channel with stride C, uncoalesced; their
// partial sums use blocks of rows x lanes threads instead, a lane reading V adjacent channels of a
// row (a whole row per block where it fits: sums_launch), the rows combined in a fixed tree.
// Their elementwise passes (normalize_rows_kernel, backward_dx_rows_kernel) keep each thread on
// one set of V channels, whose parameters it reads once.
//
// Every kernel reads and writes V elements at a time (16 bytes: 8 bfloat16 / float16, 4 float, 2
// double) when the layout allows it: NCHW-like inputs whose inner size is a multiple of V, or
// channel-innermost ones whose channel count is, with every operand 16-byte aligned; V = 1
// otherwise. A thread then sums its V values in order before moving on, so the summation order is
// a function of the shape and of that choice.
//
// The fused ReLU (batch_norm_relu_*): normalize_kernel applies it, and the backward kernels mask dy
// with ReluMask, which recomputes the pre-activation with the forward's expression in P.
//
// Measured against PyTorch's kernels on an H200: benchmarks/results/2026-11-27-h200-*/ (bench.json
// and the WRN-28-10 step's profile_cyclone.txt / profile_pytorch.txt); not against cuDNN's
// cudnnBatchNormalizationForwardTraining / BackwardEx.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <numeric>
#include <type_traits>

#include "cyclone/kernels/cuda/batchnorm.h"
#include "cyclone/kernels/cuda/launch.cuh"

namespace cyclone::kernels::cuda {

namespace {

constexpr int kBnTargetBlocks = 2048;  // blocks over all channels: fills 132 SMs many times
constexpr int64_t kBnMinPerBlock = kBlock * 8;  // fewer values than this per block is not worth it

// Blocks per channel: a function of the shape only, so the summation order (and the result) is
// the same on every run.
int blocks_per_channel(const BatchNormDims& d) {
  const int64_t m = d.per_channel();
  const int64_t by_work = (m + kBnMinPerBlock - 1) / kBnMinPerBlock;
  const int64_t by_grid = std::max<int64_t>(1, kBnTargetBlocks / std::max<int64_t>(1, d.c));
  return static_cast<int>(std::clamp<int64_t>(std::min(by_work, by_grid), 1, 65535));
}

// V for these operands: kPack<T> (launch.cuh) when each channel's values (inner > 1) or each row's
// channels (inner = 1) split into whole packs and every pointer is 16-byte aligned; else 1.
template <class T>
int vec_width(const BatchNormDims& d, std::initializer_list<const void*> ptrs) {
  return (d.inner == 1 ? d.c : d.inner) % kPack<T> == 0 && aligned16(ptrs) ? kPack<T> : 1;
}

// The channels-innermost layout (inner = 1), partial sums: a block is lanes x rows threads, lane l
// of row r reading pack l of every rows-th row from r, a pack being V adjacent channels. Where a
// row has at most kBlock / 2 packs (row_v; channels up to 1024 in bfloat16) a block spans the
// whole row, lanes = row_v and rows = kBlock / row_v: every thread works and a warp reads
// contiguous memory across row ends (at 160 bfloat16 channels, 20 packs, the earlier 32-lane tiles
// left 12 lanes of each warp idle). Wider rows are cut into 32-pack tiles, 8 rows a block. The
// grid is (tiles, parts), a part being a range of rows; parts are chosen like blocks_per_channel,
// each thread summing at least ~32 of its rows (fewer left the per-block set-up and reduction a
// large share of the time).
bool rows_layout(const BatchNormDims& d) { return d.inner == 1; }
// The partial sums' launch, either layout: NCHW-like a (parts, C) grid of kBlock threads
// (blocks_per_channel), channels innermost as above; `parts` partials per channel either way.
struct SumsLaunch {
  dim3 grid, block;
  int parts;
};
SumsLaunch sums_launch(const BatchNormDims& d, int v) {
  if (!rows_layout(d)) {
    const int parts = blocks_per_channel(d);
    return {dim3(static_cast<unsigned>(parts), static_cast<unsigned>(d.c)), dim3(kBlock), parts};
  }
  const int64_t row_v = d.c / v;  // c % v == 0 (vec_width)
  int64_t lanes = kWarpSize, rows = 8;
  if (row_v <= kBlock / 2) {
    lanes = row_v;
    rows = kBlock / row_v;
  }
  const int64_t tiles = (row_v + lanes - 1) / lanes;
  const int64_t by_work = (d.per_channel() + rows * 32 - 1) / (rows * 32);
  const int64_t by_grid = std::max<int64_t>(1, kBnTargetBlocks / tiles);
  const int64_t parts = std::clamp<int64_t>(std::min(by_work, by_grid), 1, 65535);
  return {dim3(static_cast<unsigned>(tiles), static_cast<unsigned>(parts)),
          dim3(static_cast<unsigned>(lanes), static_cast<unsigned>(rows)), static_cast<int>(parts)};
}

// Walks a channel's values m = start, start + stride, ... < end of the [N, inner] view without a
// division per step: (n, i) advance by the precomputed (stride / inner, stride % inner).
struct ChannelWalk {
  int64_t n, i, m;
  __device__ ChannelWalk(int64_t start, int64_t inner)
      : n(start / inner), i(start % inner), m(start) {}
  __device__ void advance(int64_t stride, int64_t dn, int64_t di, int64_t inner) {
    m += stride;
    n += dn;
    i += di;
    if (i >= inner) {
      i -= inner;
      ++n;
    }
  }
  __device__ int64_t offset(int64_t c, int64_t channels, int64_t inner) const {
    return (n * channels + c) * inner + i;
  }
};

// The normalised, affine value before the fused ReLU, in P: one expression for the forward and the
// backward's recomputation, so both round it the same way.
template <class P>
__device__ __forceinline__ P pre_activation(P x, P mean, P scale, P shift) {
  return (x - mean) * scale + shift;
}

// The fused ReLU's gradient mask for channel c; with relu off every value passes.
template <class P>
struct ReluMask {
  bool on = false;
  P mean = 0, scale = 0, shift = 0;
  ReluMask() = default;
  __device__ ReluMask(bool relu, const P* m, const P* invstd, const P* weight, const P* bias,
                      int64_t c)
      : on(relu) {
    if (!on) return;
    mean = m[c];
    scale = weight ? invstd[c] * weight[c] : invstd[c];
    shift = bias ? bias[c] : P(0);
  }
  // From the channel's values already at hand (the rows kernels keep them in registers).
  __device__ ReluMask(bool relu, P m, P sc, P sh) : on(relu), mean(m), scale(sc), shift(sh) {}
  // dy where the ReLU passed its input, else 0.
  template <class T>
  __device__ double grad(T x, T dy) const {
    return !on || pre_activation(P(x), mean, scale, shift) > P(0) ? static_cast<double>(dy) : 0.0;
  }
};

// Sums (a, b) over the block in a fixed tree order; thread 0 gets the result.
__device__ void block_sum2(double& a, double& b) {
  __shared__ double sa[kBlock / kWarpSize], sb[kBlock / kWarpSize];
  for (int o = kWarpSize / 2; o > 0; o /= 2) {
    a += __shfl_down_sync(0xffffffffu, a, o);
    b += __shfl_down_sync(0xffffffffu, b, o);
  }
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  if (lane == 0) {
    sa[warp] = a;
    sb[warp] = b;
  }
  __syncthreads();
  if (warp == 0) {
    a = lane < kBlock / kWarpSize ? sa[lane] : 0.0;
    b = lane < kBlock / kWarpSize ? sb[lane] : 0.0;
    for (int o = kWarpSize / 2; o > 0; o /= 2) {
      a += __shfl_down_sync(0xffffffffu, a, o);
      b += __shfl_down_sync(0xffffffffu, b, o);
    }
  }
}

// Block (p, c) sums, over its share of channel c, s1 = sum (x - k) and s2 = sum (x - k)^2 with the
// shift k = x[0, c, 0]: partial[(c * P + p) * 2 + {0, 1}]. The channel is walked in vectors of V
// (inner % V == 0).
template <class T, int V>
__global__ void stats_partial_kernel(const T* __restrict__ x, int64_t channels, int64_t inner,
                                     int64_t per_channel, double* __restrict__ partial) {
  const int64_t c = blockIdx.y;
  const int p = blockIdx.x, parts = gridDim.x;
  const int64_t inner_v = inner / V, per_channel_v = per_channel / V;
  const int64_t chunk = (per_channel_v + parts - 1) / parts;
  const int64_t begin = p * chunk, end = min(per_channel_v, begin + chunk);
  const double k = static_cast<double>(x[c * inner]);
  const auto* xv = reinterpret_cast<const Pack<T, V>*>(x);
  double s1 = 0, s2 = 0;
  const int64_t stride = blockDim.x, dn = stride / inner_v, di = stride % inner_v;
  for (ChannelWalk w(begin + threadIdx.x, inner_v); w.m < end; w.advance(stride, dn, di, inner_v)) {
    const Pack<T, V> in = xv[w.offset(c, channels, inner_v)];
#pragma unroll
    for (int j = 0; j < V; ++j) {
      const double v = static_cast<double>(in.v[j]) - k;
      s1 += v;
      s2 += v * v;
    }
  }
  block_sum2(s1, s2);
  if (threadIdx.x == 0) {
    partial[(c * parts + p) * 2] = s1;
    partial[(c * parts + p) * 2 + 1] = s2;
  }
}

// The rows kernels' end: for each of the thread's V channels c0 + j, the sums (s1, s2) of the
// block's rows of threads, combined in a fixed tree over the rows (row r takes row r + h, h
// halving from the largest power of two below the row count), then written by row 0 to
// partial[((c0 + j) * P + p) * 2 + {0, 1}] (p = blockIdx.y of P).
template <int V>
__device__ void store_column_sums(double (&s1)[V], double (&s2)[V], int64_t c0, bool active,
                                  double* __restrict__ partial) {
  __shared__ double sums[2][V][kBlock];
  const int lanes = blockDim.x, rows = blockDim.y, r = threadIdx.y;
  const int t = r * lanes + threadIdx.x;
#pragma unroll
  for (int j = 0; j < V; ++j) {
    sums[0][j][t] = s1[j];
    sums[1][j][t] = s2[j];
  }
  int h = 1;
  while (h * 2 < rows) h *= 2;
  for (; h > 0; h /= 2) {
    __syncthreads();
    if (r < h && r + h < rows) {
#pragma unroll
      for (int j = 0; j < V; ++j) {
        sums[0][j][t] += sums[0][j][t + h * lanes];
        sums[1][j][t] += sums[1][j][t + h * lanes];
      }
    }
  }
  __syncthreads();
  if (r != 0 || !active) return;
  const int p = blockIdx.y, parts = gridDim.y;
#pragma unroll
  for (int j = 0; j < V; ++j) {
    partial[((c0 + j) * parts + p) * 2] = sums[0][j][t];
    partial[((c0 + j) * parts + p) * 2 + 1] = sums[1][j][t];
  }
}

// stats_partial_kernel for inner = 1: block (tile, p) sums rows [begin, end) of its lanes x V
// channels (sums_launch), each thread V adjacent channels (channels % V == 0).
template <class T, int V>
__global__ void __launch_bounds__(kBlock)
    stats_partial_rows_kernel(const T* __restrict__ x, int64_t channels, int64_t rows,
                              double* __restrict__ partial) {
  const int64_t c0 = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) * V;
  const int p = blockIdx.y, parts = gridDim.y;
  const int64_t chunk = (rows + parts - 1) / parts;
  const int64_t begin = p * chunk, end = min(rows, begin + chunk);
  const bool active = c0 < channels;
  double s1[V], s2[V];
  math_t<T> k[V];  // the shift: row 0's values (exact in math_t)
#pragma unroll
  for (int j = 0; j < V; ++j) {
    s1[j] = s2[j] = 0;
    k[j] = active ? static_cast<math_t<T>>(x[c0 + j]) : math_t<T>(0);
  }
  if (active) {
    const auto* xv = reinterpret_cast<const Pack<T, V>*>(x);
    const int64_t row_v = channels / V;
    for (int64_t m = begin + threadIdx.y; m < end; m += blockDim.y) {
      const Pack<T, V> in = xv[m * row_v + c0 / V];
#pragma unroll
      for (int j = 0; j < V; ++j) {
        const double v = static_cast<double>(in.v[j]) - static_cast<double>(k[j]);
        s1[j] += v;
        s2[j] += v * v;
      }
    }
  }
  store_column_sums<V>(s1, s2, c0, active, partial);
}

// One warp per channel (block c of kWarpSize threads) sums the channel's partials: lane l those
// numbered l, l + 32, ... in order, then the lanes in a fixed tree; lane 0 gets (s1, s2). A
// thread per channel walking hundreds of partials (the channel-innermost layout makes ~400 to
// ~1000) would take longer than the partial sums themselves.
__device__ bool warp_sum_partials(const double* __restrict__ partial, int parts, double& s1,
                                  double& s2) {
  const int64_t c = blockIdx.x;
  const int lane = threadIdx.x;
  s1 = 0;
  s2 = 0;
  for (int p = lane; p < parts; p += kWarpSize) {
    s1 += partial[(c * parts + p) * 2];
    s2 += partial[(c * parts + p) * 2 + 1];
  }
  for (int o = kWarpSize / 2; o > 0; o /= 2) {
    s1 += __shfl_down_sync(0xffffffffu, s1, o);
    s2 += __shfl_down_sync(0xffffffffu, s2, o);
  }
  return lane == 0;
}

// Block c (one warp): combine channel c's partials, save mean / invstd, update the running stats.
template <class T, class P = math_t<T>>
__global__ void stats_finalize_kernel(const T* __restrict__ x, int64_t inner, int64_t per_channel,
                                      const double* __restrict__ partial, int parts,
                                      double momentum, double eps, P* running_mean, P* running_var,
                                      P* save_mean, P* save_invstd) {
  const int64_t c = blockIdx.x;
  double s1, s2;
  if (!warp_sum_partials(partial, parts, s1, s2)) return;
  const double m = static_cast<double>(per_channel);
  const double shifted_mean = s1 / m;
  // The sum of squared deviations, clamped at 0 against rounding; a NaN (from a NaN or an inf in
  // the channel) must survive, as the CPU's var does: fmax would turn it into 0 and a finite
  // invstd and running_var.
  const double diff = s2 - s1 * shifted_mean;
  const double sq = diff < 0.0 ? 0.0 : diff;
  const double mean = static_cast<double>(x[c * inner]) + shifted_mean;
  save_mean[c] = static_cast<P>(mean);
  save_invstd[c] = static_cast<P>(1.0 / sqrt(sq / m + eps));
  if (running_mean) {
    running_mean[c] =
        static_cast<P>((1 - momentum) * static_cast<double>(running_mean[c]) + momentum * mean);
    running_var[c] = static_cast<P>((1 - momentum) * static_cast<double>(running_var[c]) +
                                    momentum * sq / (m - 1));
  }
}

template <class T>
__global__ void eval_stats_kernel(const T* __restrict__ running_mean,
                                  const T* __restrict__ running_var, int64_t channels, double eps,
                                  T* __restrict__ save_mean, T* __restrict__ save_invstd) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= channels) return;
  save_mean[c] = running_mean[c];
  save_invstd[c] = static_cast<T>(1.0 / sqrt(static_cast<double>(running_var[c]) + eps));
}

// y = (x - mean) * invstd * weight + bias, computed in P (float for bfloat16 x and y); relu: then
// max(y, 0), NaN kept. V elements per step: of one channel (inner % V == 0) or, channels innermost,
// of V adjacent channels (channels % V == 0); n_v = numel / V.
template <class T, int V, class P = math_t<T>>
__global__ void normalize_kernel(const T* __restrict__ x, const P* __restrict__ mean,
                                 const P* __restrict__ invstd, const P* __restrict__ weight,
                                 const P* __restrict__ bias, T* __restrict__ y, int64_t n_v,
                                 int64_t channels, int64_t inner, bool relu) {
  const auto* xv = reinterpret_cast<const Pack<T, V>*>(x);
  auto* yv = reinterpret_cast<Pack<T, V>*>(y);
  CYCLONE_GRID_STRIDE(i, n_v) {
    const int64_t e = i * V;
    const int64_t c0 = inner == 1 ? e % channels : (e / inner) % channels;
    const Pack<T, V> in = xv[i];
    Pack<T, V> out;
#pragma unroll
    for (int j = 0; j < V; ++j) {
      const int64_t c = inner == 1 ? c0 + j : c0;
      const P scale = weight ? invstd[c] * weight[c] : invstd[c];
      const P v = pre_activation(P(in.v[j]), mean[c], scale, bias ? bias[c] : P(0));
      out.v[j] = T(relu && !(v > P(0)) && v == v ? P(0) : v);
    }
    yv[i] = out;
  }
}

// normalize_kernel for inner = 1 (channels innermost): launched by rows_stride_blocks, so the
// grid's stride is a multiple of row_v (= channels / V, the packs of one row) and every pack a
// thread visits holds the same V channels c0 .. c0 + V - 1. Their parameters are read once, into
// registers; the generic kernel read four per element (V channels per pack) and did a 64-bit
// modulo per pack, which made channels-last batch norm half as fast as NCHW on the H200. The same
// float expressions as normalize_kernel.
template <class T, int V, class P = math_t<T>>
__global__ void normalize_rows_kernel(const T* __restrict__ x, const P* __restrict__ mean,
                                      const P* __restrict__ invstd, const P* __restrict__ weight,
                                      const P* __restrict__ bias, T* __restrict__ y, int64_t n_v,
                                      int64_t row_v, bool relu) {
  const int64_t first = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (first >= n_v) return;
  const int64_t c0 = first % row_v * V;
  P mu[V], scale[V], shift[V];
#pragma unroll
  for (int j = 0; j < V; ++j) {
    const int64_t c = c0 + j;
    mu[j] = mean[c];
    scale[j] = weight ? invstd[c] * weight[c] : invstd[c];
    shift[j] = bias ? bias[c] : P(0);
  }
  const auto* xv = reinterpret_cast<const Pack<T, V>*>(x);
  auto* yv = reinterpret_cast<Pack<T, V>*>(y);
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = first; i < n_v; i += stride) {
    const Pack<T, V> in = xv[i];
    Pack<T, V> out;
#pragma unroll
    for (int j = 0; j < V; ++j) {
      const P v = pre_activation(P(in.v[j]), mu[j], scale[j], shift[j]);
      out.v[j] = T(relu && !(v > P(0)) && v == v ? P(0) : v);
    }
    yv[i] = out;
  }
}

// Blocks for a rows kernel over n_v packs of rows of row_v packs: grid_for's count rounded up to
// make the thread count (blocks x kBlock) a multiple of row_v; 0 where that takes more blocks than
// grid_for's cap (a large odd channel count): the generic kernel then runs.
unsigned rows_stride_blocks(int64_t n_v, int64_t row_v) {
  const int64_t q = row_v / std::gcd(int64_t{kBlock}, row_v);
  if (q > kMaxGrid) return 0;
  return static_cast<unsigned>((grid_for(n_v) + q - 1) / q * q);
}

// Block (p, c): s1 = sum g, s2 = sum g * xhat over its share of channel c (g: dy, masked by the
// fused ReLU when there is one), walked in vectors of V (inner % V == 0).
template <class T, int V, class P = math_t<T>>
__global__ void backward_partial_kernel(const T* __restrict__ x, const T* __restrict__ dy,
                                        const P* __restrict__ mean, const P* __restrict__ invstd,
                                        const P* __restrict__ weight, const P* __restrict__ bias,
                                        bool relu, int64_t channels, int64_t inner,
                                        int64_t per_channel, double* __restrict__ partial) {
  const int64_t c = blockIdx.y;
  const int p = blockIdx.x, parts = gridDim.x;
  const int64_t inner_v = inner / V, per_channel_v = per_channel / V;
  const int64_t chunk = (per_channel_v + parts - 1) / parts;
  const int64_t begin = p * chunk, end = min(per_channel_v, begin + chunk);
  const double mu = static_cast<double>(mean[c]), is = static_cast<double>(invstd[c]);
  const ReluMask<P> mask(relu, mean, invstd, weight, bias, c);
  const auto* xv = reinterpret_cast<const Pack<T, V>*>(x);
  const auto* dyv = reinterpret_cast<const Pack<T, V>*>(dy);
  double s1 = 0, s2 = 0;
  const int64_t stride = blockDim.x, dn = stride / inner_v, di = stride % inner_v;
  for (ChannelWalk w(begin + threadIdx.x, inner_v); w.m < end; w.advance(stride, dn, di, inner_v)) {
    const int64_t o = w.offset(c, channels, inner_v);
    const Pack<T, V> xs = xv[o], gs = dyv[o];
#pragma unroll
    for (int j = 0; j < V; ++j) {
      const double g = mask.grad(xs.v[j], gs.v[j]);
      s1 += g;
      s2 += g * (static_cast<double>(xs.v[j]) - mu) * is;
    }
  }
  block_sum2(s1, s2);
  if (threadIdx.x == 0) {
    partial[(c * parts + p) * 2] = s1;
    partial[(c * parts + p) * 2 + 1] = s2;
  }
}

// backward_partial_kernel for inner = 1 (see stats_partial_rows_kernel). Each element's g * xhat
// is formed in P (float beside 16-bit data; backward_dx_kernel's xhat expression) and summed in
// double, and the ReLU mask is built from the channel terms in registers: the double version
// held 122 registers a thread, too few threads in flight for what is a streaming read.
template <class T, int V, class P = math_t<T>>
__global__ void __launch_bounds__(kBlock)
    backward_partial_rows_kernel(const T* __restrict__ x, const T* __restrict__ dy,
                                 const P* __restrict__ mean, const P* __restrict__ invstd,
                                 const P* __restrict__ weight, const P* __restrict__ bias,
                                 bool relu, int64_t channels, int64_t rows,
                                 double* __restrict__ partial) {
  const int64_t c0 = (blockIdx.x * int64_t(blockDim.x) + threadIdx.x) * V;
  const int p = blockIdx.y, parts = gridDim.y;
  const int64_t chunk = (rows + parts - 1) / parts;
  const int64_t begin = p * chunk, end = min(rows, begin + chunk);
  const bool active = c0 < channels;
  double s1[V], s2[V];
  P mu[V], is[V], scale[V], shift[V];
#pragma unroll
  for (int j = 0; j < V; ++j) {
    s1[j] = s2[j] = 0;
    mu[j] = is[j] = scale[j] = shift[j] = P(0);
    if (active) {
      const int64_t c = c0 + j;
      mu[j] = mean[c];
      is[j] = invstd[c];
      scale[j] = weight ? invstd[c] * weight[c] : invstd[c];  // as ReluMask's
      shift[j] = bias ? bias[c] : P(0);
    }
  }
  if (active) {
    const auto* xv = reinterpret_cast<const Pack<T, V>*>(x);
    const auto* dyv = reinterpret_cast<const Pack<T, V>*>(dy);
    const int64_t row_v = channels / V;
    for (int64_t m = begin + threadIdx.y; m < end; m += blockDim.y) {
      const int64_t o = m * row_v + c0 / V;
      const Pack<T, V> xs = xv[o], gs = dyv[o];
#pragma unroll
      for (int j = 0; j < V; ++j) {
        // g * xhat in P (dx's own xhat expression), summed in double.
        const P g =
            static_cast<P>(ReluMask<P>(relu, mu[j], scale[j], shift[j]).grad(xs.v[j], gs.v[j]));
        s1[j] += static_cast<double>(g);
        s2[j] += static_cast<double>(g * ((P(xs.v[j]) - mu[j]) * is[j]));
      }
    }
  }
  store_column_sums<V>(s1, s2, c0, active, partial);
}

// Block c (one warp): means[c] = (sum dy / M, sum dy * xhat / M), each divided in double and
// rounded once to P, the per-channel terms of dx (computed here once, not per element: the
// channel-innermost dx kernel would otherwise divide twice per element, V channels per step);
// dbias / dweight if wanted. (g for dy where the fused ReLU masks it.)
template <class P>
__global__ void backward_finalize_kernel(const double* __restrict__ partial, int parts,
                                         double per_channel, P* __restrict__ means,
                                         P* __restrict__ dweight, P* __restrict__ dbias) {
  const int64_t c = blockIdx.x;
  double s1, s2;
  if (!warp_sum_partials(partial, parts, s1, s2)) return;
  means[c * 2] = static_cast<P>(s1 / per_channel);
  means[c * 2 + 1] = static_cast<P>(s2 / per_channel);
  if (dbias) dbias[c] = static_cast<P>(s1);
  if (dweight) dweight[c] = static_cast<P>(s2);
}

// dx = weight * invstd * (g - mean_g - xhat * mean_g_xhat) with means[c] = (mean_g, mean_g_xhat);
// means == nullptr in eval mode, where dx = g * weight * invstd (g: dy, masked by the fused ReLU
// when there is one). V elements per step as normalize_kernel's; n_v = numel / V.
template <class T, int V, class P = math_t<T>>
__global__ void backward_dx_kernel(const T* __restrict__ x, const T* __restrict__ dy,
                                   const P* __restrict__ mean, const P* __restrict__ invstd,
                                   const P* __restrict__ weight, const P* __restrict__ bias,
                                   bool relu, const P* __restrict__ means, T* __restrict__ dx,
                                   int64_t n_v, int64_t channels, int64_t inner) {
  const auto* xv = reinterpret_cast<const Pack<T, V>*>(x);
  const auto* dyv = reinterpret_cast<const Pack<T, V>*>(dy);
  auto* dxv = reinterpret_cast<Pack<T, V>*>(dx);
  CYCLONE_GRID_STRIDE(i, n_v) {
    const int64_t e = i * V;
    const int64_t c0 = inner == 1 ? e % channels : (e / inner) % channels;
    const Pack<T, V> xs = xv[i], gs = dyv[i];
    Pack<T, V> out;
#pragma unroll
    for (int j = 0; j < V; ++j) {
      const int64_t c = inner == 1 ? c0 + j : c0;
      const P is = invstd[c];
      const P scale = weight ? is * weight[c] : is;
      const P g =
          static_cast<P>(ReluMask<P>(relu, mean, invstd, weight, bias, c).grad(xs.v[j], gs.v[j]));
      if (means) {
        const P xhat = (P(xs.v[j]) - mean[c]) * is;
        out.v[j] = T(scale * (g - means[c * 2] - xhat * means[c * 2 + 1]));
      } else {
        out.v[j] = T(scale * g);
      }
    }
    dxv[i] = out;
  }
}

// backward_dx_kernel for inner = 1, launched as normalize_rows_kernel (one set of V channels per
// thread, their terms in registers). Same expressions as backward_dx_kernel.
template <class T, int V, class P = math_t<T>>
__global__ void backward_dx_rows_kernel(const T* __restrict__ x, const T* __restrict__ dy,
                                        const P* __restrict__ mean, const P* __restrict__ invstd,
                                        const P* __restrict__ weight, const P* __restrict__ bias,
                                        bool relu, const P* __restrict__ means, T* __restrict__ dx,
                                        int64_t n_v, int64_t row_v) {
  const int64_t first = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (first >= n_v) return;
  const int64_t c0 = first % row_v * V;
  P mu[V], is[V], scale[V], shift[V], m0[V], m1[V];
#pragma unroll
  for (int j = 0; j < V; ++j) {
    const int64_t c = c0 + j;
    mu[j] = mean[c];
    is[j] = invstd[c];
    scale[j] = weight ? is[j] * weight[c] : is[j];
    shift[j] = relu && bias ? bias[c] : P(0);
    m0[j] = means ? means[c * 2] : P(0);
    m1[j] = means ? means[c * 2 + 1] : P(0);
  }
  const auto* xv = reinterpret_cast<const Pack<T, V>*>(x);
  const auto* dyv = reinterpret_cast<const Pack<T, V>*>(dy);
  auto* dxv = reinterpret_cast<Pack<T, V>*>(dx);
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  for (int64_t i = first; i < n_v; i += stride) {
    const Pack<T, V> xs = xv[i], gs = dyv[i];
    Pack<T, V> out;
#pragma unroll
    for (int j = 0; j < V; ++j) {
      const P g =
          static_cast<P>(ReluMask<P>(relu, mu[j], scale[j], shift[j]).grad(xs.v[j], gs.v[j]));
      if (means) {
        const P xhat = (P(xs.v[j]) - mu[j]) * is[j];
        out.v[j] = T(scale[j] * (g - m0[j] - xhat * m1[j]));
      } else {
        out.v[j] = T(scale[j] * g);
      }
    }
    dxv[i] = out;
  }
}

int channel_grid(int64_t channels) { return static_cast<int>((channels + kBlock - 1) / kBlock); }

}  // namespace

void batch_norm_forward(Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& bias,
                        const Tensor& running_mean, const Tensor& running_var, bool training,
                        double momentum, double eps, const Tensor& y, const Tensor& save_mean,
                        const Tensor& save_invstd, bool relu) {
  const BatchNormDims d = batch_norm_dims(x.shape());
  // Only the NCHW partial sums put channels on grid.y; the channel-innermost ones use grid.x.
  CYCLONE_CHECK(rows_layout(d) || d.c <= 65535 || !training,
                "batch_norm: at most 65535 channels on CUDA, got ", d.c);
  const cudaStream_t stream = stream_of(ctx);
  CYCLONE_DISPATCH_FLOATING(x.dtype(), T, [&] {
    using P = math_t<T>;  // per-channel tensors: float32 beside bfloat16 activations
    // The sums read x alone, so their width (and summation order: the statistics' bits) does not
    // depend on y's alignment or on whether y is written at all (sync BN's statistics pass).
    const int sums_width = vec_width<T>(d, {x.raw_data()});
    const int width = vec_width<T>(d, {x.raw_data(), y.defined() ? y.raw_data() : nullptr});
    if (training) {
      const SumsLaunch sl = sums_launch(d, sums_width);
      const int parts = sl.parts;
      const Tensor partial = Tensor::empty({d.c, parts, 2}, DType::kFloat64, ctx);
      with_pack<T>(sums_width > 1, [&](auto v) {
        constexpr int V = decltype(v)::value;
        if (rows_layout(d))
          stats_partial_rows_kernel<T, V><<<sl.grid, sl.block, 0, stream>>>(
              x.data<T>(), d.c, d.per_channel(), partial.data<double>());
        else
          stats_partial_kernel<T, V><<<sl.grid, sl.block, 0, stream>>>(
              x.data<T>(), d.c, d.inner, d.per_channel(), partial.data<double>());
      });
      gpu::check_launch("batch_norm stats", ctx.stream());
      stats_finalize_kernel<T><<<static_cast<unsigned>(d.c), kWarpSize, 0, stream>>>(
          x.data<T>(), d.inner, d.per_channel(), partial.data<double>(), parts, momentum, eps,
          ptr_or_null<P>(running_mean), ptr_or_null<P>(running_var), save_mean.data<P>(),
          save_invstd.data<P>());
      gpu::check_launch("batch_norm finalize", ctx.stream());
    } else {
      eval_stats_kernel<P><<<channel_grid(d.c), kBlock, 0, stream>>>(
          running_mean.data<P>(), running_var.data<P>(), d.c, eps, save_mean.data<P>(),
          save_invstd.data<P>());
      gpu::check_launch("batch_norm eval stats", ctx.stream());
    }
    const int64_t n = x.numel();
    if (n == 0 || !y.defined()) return;  // no elements, or the statistics alone
    with_pack<T>(width > 1, [&](auto v) {
      constexpr int V = decltype(v)::value;
      const unsigned rows = rows_layout(d) ? rows_stride_blocks(n / V, d.c / V) : 0;
      if (rows > 0)
        normalize_rows_kernel<T, V><<<rows, kBlock, 0, stream>>>(
            x.data<T>(), save_mean.data<P>(), save_invstd.data<P>(), ptr_or_null<P>(weight),
            ptr_or_null<P>(bias), y.data<T>(), n / V, d.c / V, relu);
      else
        normalize_kernel<T, V><<<grid_for(n / V), kBlock, 0, stream>>>(
            x.data<T>(), save_mean.data<P>(), save_invstd.data<P>(), ptr_or_null<P>(weight),
            ptr_or_null<P>(bias), y.data<T>(), n / V, d.c, d.inner, relu);
    });
    gpu::check_launch("batch_norm normalize", ctx.stream());
  });
}

void batch_norm_backward(Context& ctx, const Tensor& x, const Tensor& dy, const Tensor& weight,
                         const Tensor& bias, const Tensor& save_mean, const Tensor& save_invstd,
                         bool training, const Tensor& dx, const Tensor& dweight,
                         const Tensor& dbias, bool relu) {
  const BatchNormDims d = batch_norm_dims(x.shape());
  const bool need_sums = dweight.defined() || dbias.defined() || (dx.defined() && training);
  CYCLONE_CHECK(rows_layout(d) || d.c <= 65535 || !need_sums,
                "batch_norm_backward: at most 65535 channels on CUDA, got ", d.c);
  const cudaStream_t stream = stream_of(ctx);
  CYCLONE_DISPATCH_FLOATING(x.dtype(), T, [&] {
    using P = math_t<T>;
    const P* pw = ptr_or_null<P>(weight);
    const P* pb = relu ? ptr_or_null<P>(bias) : nullptr;
    // As in the forward: dweight and dbias's bits do not depend on dx (its alignment, or whether it
    // is wanted at all); the sums' width comes from what they read.
    const int sums_width = vec_width<T>(d, {x.raw_data(), dy.raw_data()});
    const int width =
        vec_width<T>(d, {x.raw_data(), dy.raw_data(), dx.defined() ? dx.raw_data() : nullptr});
    Tensor means;  // per channel: (mean of g, mean of g * xhat), in P
    if (need_sums) {
      means = Tensor::empty({d.c, 2}, save_mean.dtype(), ctx);
      if (d.per_channel() == 0) {
        // Sums over nothing are 0 (the partial kernels would have no work to do); on ctx's
        // stream, like every write of this op (Tensor::zero_ would use the current context's).
        for (const Tensor* t : std::initializer_list<const Tensor*>{&means, &dweight, &dbias})
          if (t->defined()) gpu::memset_async(t->raw_data(), 0, t->nbytes(), ctx.stream());
      } else {
        const SumsLaunch sl = sums_launch(d, sums_width);
        const int parts = sl.parts;
        const Tensor partial = Tensor::empty({d.c, parts, 2}, DType::kFloat64, ctx);
        with_pack<T>(sums_width > 1, [&](auto v) {
          constexpr int V = decltype(v)::value;
          if (rows_layout(d))
            backward_partial_rows_kernel<T, V><<<sl.grid, sl.block, 0, stream>>>(
                x.data<T>(), dy.data<T>(), save_mean.data<P>(), save_invstd.data<P>(), pw, pb, relu,
                d.c, d.per_channel(), partial.data<double>());
          else
            backward_partial_kernel<T, V><<<sl.grid, sl.block, 0, stream>>>(
                x.data<T>(), dy.data<T>(), save_mean.data<P>(), save_invstd.data<P>(), pw, pb, relu,
                d.c, d.inner, d.per_channel(), partial.data<double>());
        });
        gpu::check_launch("batch_norm_backward sums", ctx.stream());
        backward_finalize_kernel<P><<<static_cast<unsigned>(d.c), kWarpSize, 0, stream>>>(
            partial.data<double>(), parts, static_cast<double>(d.per_channel()), means.data<P>(),
            ptr_or_null<P>(dweight), ptr_or_null<P>(dbias));
        gpu::check_launch("batch_norm_backward finalize", ctx.stream());
      }
    }
    const int64_t n = x.numel();
    if (!dx.defined() || n == 0) return;
    with_pack<T>(width > 1, [&](auto v) {
      constexpr int V = decltype(v)::value;
      const P* pm = training ? means.data<P>() : nullptr;
      const unsigned rows = rows_layout(d) ? rows_stride_blocks(n / V, d.c / V) : 0;
      if (rows > 0)
        backward_dx_rows_kernel<T, V><<<rows, kBlock, 0, stream>>>(
            x.data<T>(), dy.data<T>(), save_mean.data<P>(), save_invstd.data<P>(), pw, pb, relu, pm,
            dx.data<T>(), n / V, d.c / V);
      else
        backward_dx_kernel<T, V><<<grid_for(n / V), kBlock, 0, stream>>>(
            x.data<T>(), dy.data<T>(), save_mean.data<P>(), save_invstd.data<P>(), pw, pb, relu, pm,
            dx.data<T>(), n / V, d.c, d.inner);
    });
    gpu::check_launch("batch_norm_backward dx", ctx.stream());
  });
}

}  // namespace cyclone::kernels::cuda
