// CPU reductions. Sums are pairwise (Higham, "The accuracy of floating point summation", 1993;
// NumPy's pairwise_sum): the rounding error grows as O(eps log n) instead of the O(eps n) of a
// running sum, so a float32 sum of 1e7 values keeps ~6 correct digits without a double
// accumulator. Contiguous runs use NumPy's base case (blocks of 128 summed with 8 accumulators,
// which the compiler vectorises); strided reductions ([outer, len, inner], inner > 1) sum whole
// rows pairwise so that memory is still read in order.
#include "cyclone/kernels/cpu/reduce.h"

#include <algorithm>
#include <vector>

namespace cyclone::kernels::cpu {

namespace {

constexpr int64_t kPairwiseBlock = 128;  // contiguous base case
constexpr int64_t kRowBlock = 8;         // rows summed in a run before splitting

// max that propagates NaN from either side, as torch.max: NaN > y and y > NaN are both false.
template <class T>
inline T nan_max(T a, T b) {
  return (a != a || a > b) ? a : b;
}

template <class T>
T pairwise_sum(const T* x, int64_t n) {
  if (n < 8) {
    T s = 0;
    for (int64_t i = 0; i < n; ++i) s += x[i];
    return s;
  }
  if (n <= kPairwiseBlock) {
    T r[8];
    for (int j = 0; j < 8; ++j) r[j] = x[j];
    int64_t i = 8;
    for (; i + 8 <= n; i += 8)
      for (int j = 0; j < 8; ++j) r[j] += x[i + j];
    T s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) s += x[i];
    return s;
  }
  int64_t half = n / 2;
  half -= half % 8;
  return pairwise_sum(x, half) + pairwise_sum(x + half, n - half);
}

// out[i] = sum over k < len of x[k * inner + i], pairwise over rows. scratch holds
// inner * (depth + 1) values, depth = ceil(log2(len / kRowBlock)): each level of the recursion
// keeps its right half's partial row there.
template <class T>
void pairwise_rows(const T* x, int64_t len, int64_t inner, T* out, T* scratch) {
  if (len <= kRowBlock) {
    if (len == 0) {
      std::fill(out, out + inner, T(0));
      return;
    }
    std::copy(x, x + inner, out);
    for (int64_t k = 1; k < len; ++k) {
      const T* row = x + k * inner;
      for (int64_t i = 0; i < inner; ++i) out[i] += row[i];
    }
    return;
  }
  const int64_t half = len / 2;
  pairwise_rows(x, half, inner, out, scratch);
  pairwise_rows(x + half * inner, len - half, inner, scratch, scratch + inner);
  for (int64_t i = 0; i < inner; ++i) out[i] += scratch[i];
}

int64_t row_depth(int64_t len) {
  int64_t depth = 1;
  for (int64_t l = len; l > kRowBlock; l = (l + 1) / 2) ++depth;
  return depth;
}

// mean = sum / len, divided in double so that a len beyond 2^24 stays exact for float32.
template <class T>
inline T mean_of(T sum, int64_t len) {
  return static_cast<T>(static_cast<double>(sum) / static_cast<double>(len));
}

}  // namespace

void reduce_axis(Context&, ReduceOp op, const Tensor& x, const ReduceDims& d, const Tensor& out) {
  const int64_t len = d.len, inner = d.inner;
  CYCLONE_DISPATCH_FLOAT(x.dtype(), T, [&] {
    const T* px = x.data<T>();
    T* po = out.data<T>();
    if (op == ReduceOp::kMax) {
      for (int64_t o = 0; o < d.outer; ++o) {
        const T* slab = px + o * len * inner;
        T* dst = po + o * inner;
        std::copy(slab, slab + inner, dst);
        for (int64_t k = 1; k < len; ++k)
          for (int64_t i = 0; i < inner; ++i) dst[i] = nan_max(dst[i], slab[k * inner + i]);
      }
      return;
    }
    if (inner == 1) {
      for (int64_t o = 0; o < d.outer; ++o) po[o] = pairwise_sum(px + o * len, len);
    } else {
      std::vector<T> scratch(static_cast<size_t>(inner * row_depth(len)));
      for (int64_t o = 0; o < d.outer; ++o)
        pairwise_rows(px + o * len * inner, len, inner, po + o * inner, scratch.data());
    }
    if (op == ReduceOp::kMean)
      for (int64_t j = 0; j < d.outer * inner; ++j) po[j] = mean_of(po[j], len);
  });
}

void sum_squares(Context&, const std::vector<Tensor>& xs, const Tensor& out) {
  double total = 0;
  for (const Tensor& x : xs) {
    const int64_t n = x.numel();
    if (n == 0) continue;
    CYCLONE_DISPATCH_FLOATING(x.dtype(), T, [&] {
      const T* px = x.data<T>();
      double a = 0;
      for (int64_t i = 0; i < n; ++i) {
        const float v = static_cast<float>(px[i]);
        a += static_cast<double>(v * v);
      }
      total += a;
    });
  }
  out.data<float>()[0] = static_cast<float>(total);
}

void reduce_all(Context&, ReduceOp op, const Tensor& x, const Tensor& out) {
  const int64_t n = x.numel();
  CYCLONE_DISPATCH_FLOAT(x.dtype(), T, [&] {
    const T* px = x.data<T>();
    T r;
    if (op == ReduceOp::kMax) {
      r = px[0];
      for (int64_t i = 1; i < n; ++i) r = nan_max(r, px[i]);
    } else {
      r = pairwise_sum(px, n);
      if (op == ReduceOp::kMean) r = mean_of(r, n);
    }
    out.data<T>()[0] = r;
  });
}

void reduce_channels(Context&, ReduceOp op, const Tensor& x, const ReduceDims& d,
                     const Tensor& out) {
  const int64_t batch = d.outer, channels = d.len, inner = d.inner;
  CYCLONE_DISPATCH_FLOAT(x.dtype(), T, [&] {
    const T* px = x.data<T>();
    T* po = out.data<T>();
    std::vector<T> partial(static_cast<size_t>(batch));
    for (int64_t c = 0; c < channels; ++c) {
      if (op == ReduceOp::kMax) {
        T r = px[c * inner];
        for (int64_t b = 0; b < batch; ++b) {
          const T* run = px + (b * channels + c) * inner;
          for (int64_t i = 0; i < inner; ++i) r = nan_max(r, run[i]);
        }
        po[c] = r;
        continue;
      }
      // Pairwise within each contiguous run, then pairwise over the runs: O(eps log(N*inner)).
      for (int64_t b = 0; b < batch; ++b)
        partial[b] = pairwise_sum(px + (b * channels + c) * inner, inner);
      const T s = pairwise_sum(partial.data(), batch);
      po[c] = op == ReduceOp::kMean ? mean_of(s, batch * inner) : s;
    }
  });
}

void argmax_axis(Context&, const Tensor& x, const ReduceDims& d, const Tensor& out) {
  const int64_t len = d.len, inner = d.inner;
  int32_t* po = out.data<int32_t>();
  CYCLONE_DISPATCH_FLOAT(x.dtype(), T, [&] {
    const T* px = x.data<T>();
    std::vector<T> best(static_cast<size_t>(inner));
    for (int64_t o = 0; o < d.outer; ++o) {
      const T* slab = px + o * len * inner;
      int32_t* idx = po + o * inner;
      std::copy(slab, slab + inner, best.begin());
      std::fill(idx, idx + inner, 0);
      // Strictly greater keeps the first maximum; a NaN wins once and is never replaced.
      for (int64_t k = 1; k < len; ++k) {
        const T* row = slab + k * inner;
        for (int64_t i = 0; i < inner; ++i) {
          const T b = best[i], v = row[i];
          if (b == b && (v != v || v > b)) {
            best[i] = v;
            idx[i] = static_cast<int32_t>(k);
          }
        }
      }
    }
  });
}

void broadcast_axis(Context&, const Tensor& src, const ReduceDims& d, const Tensor& out) {
  const int64_t len = d.len, inner = d.inner;
  CYCLONE_DISPATCH_FLOAT(src.dtype(), T, [&] {
    const T* ps = src.data<T>();
    T* po = out.data<T>();
    for (int64_t o = 0; o < d.outer; ++o)
      for (int64_t k = 0; k < len; ++k)
        std::copy(ps + o * inner, ps + (o + 1) * inner, po + (o * len + k) * inner);
  });
}

void scatter_axis(Context&, const Tensor& src, const Tensor& index, const ReduceDims& d,
                  const Tensor& out) {
  const int64_t len = d.len, inner = d.inner;
  const int32_t* pi = index.data<int32_t>();
  for (int64_t j = 0; j < d.outer * inner; ++j)
    CYCLONE_CHECK(pi[j] >= 0 && pi[j] < len, "scatter_axis: index ", pi[j], " at position ", j,
                  " is out of range for an axis of length ", len);
  CYCLONE_DISPATCH_FLOAT(src.dtype(), T, [&] {
    const T* ps = src.data<T>();
    T* po = out.data<T>();
    for (int64_t o = 0; o < d.outer; ++o)
      for (int64_t k = 0; k < len; ++k)
        for (int64_t i = 0; i < inner; ++i) {
          const int64_t j = o * inner + i;
          po[(o * len + k) * inner + i] = pi[j] == k ? ps[j] : T(0);
        }
  });
}

}  // namespace cyclone::kernels::cpu
