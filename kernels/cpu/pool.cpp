#include "cyclone/kernels/cpu/pool.h"

#include <algorithm>
#include <cstdint>

#include "cyclone/core/parallel.h"
#include "cyclone/kernels/pool_math.h"

namespace cyclone::kernels::cpu {

namespace {

// Runs f(plane) over the N*C planes in parallel, with chunks of at least ~64K elements of work
// so that small tensors stay on one thread.
template <class F>
void over_planes(const Pool2dGeometry& g, int64_t work_per_plane, F&& f) {
  const int64_t grain =
      std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(work_per_plane, 1));
  parallel_for(g.planes(), grain, [&](int64_t lo, int64_t hi) {
    for (int64_t q = lo; q < hi; ++q) f(q);
  });
}

// The windows of one output row that lie inside the columns, ow in [lo, hi): folded in element
// by element across up to kChunk outputs at a time (window element outer, ow inner) into local
// arrays, so that the compiler can vectorize the compare and select. A per-window loop with a
// branch per compare (pool::max_window) mispredicts half the time on real data and made max
// pooling 13% of a LeNet-5 CPU step. The same elements in the same row-major window order as
// pool::max_window, so the same maximum, tie and NaN winner. kStride: the column stride when it
// is known at compile time (1, 2), else 0 and p.stride_w is read.
template <int kStride, class T>
void max_pool_interior(const T* x, const Pool2dGeometry& g, pool::Range r, int64_t lo, int64_t hi,
                       T* y, int32_t* index) {
  constexpr int64_t kChunk = 64;
  const Pool2dParams& p = g.p;
  const int64_t s = kStride > 0 ? kStride : p.stride_w;
  T best[kChunk];
  int32_t win[kChunk];
  for (int64_t ow0 = lo; ow0 < hi; ow0 += kChunk) {
    const int64_t n = std::min(kChunk, hi - ow0);
    // Element (ih, j) of window ow0 + c is x[ih w + j - pad_w + (ow0 + c) s], inside the plane.
    const int64_t first = r.lo * g.w - p.pad_w + ow0 * s;
    for (int64_t c = 0; c < n; ++c) {
      best[c] = x[first + c * s];
      win[c] = static_cast<int32_t>(first + c * s);
    }
    for (int64_t ih = r.lo; ih < r.hi; ++ih)
      for (int64_t j = ih == r.lo ? 1 : 0; j < p.kw; ++j) {
        const int64_t base = ih * g.w + j - p.pad_w + ow0 * s;
        const T* xs = x + base;
        for (int64_t c = 0; c < n; ++c) {
          const T v = xs[c * s];
          const bool take = (v > best[c]) | ((v != v) & (best[c] == best[c]));
          best[c] = take ? v : best[c];
          win[c] = take ? static_cast<int32_t>(base + c * s) : win[c];
        }
      }
    std::copy(best, best + n, y + ow0);
    std::copy(win, win + n, index + ow0);
  }
}

// One output row of max pooling: the edge windows (those with a padded column) one by one, the
// others by max_pool_interior.
template <class T>
void max_pool_row(const T* x, const Pool2dGeometry& g, int64_t oh, int64_t in_lo, int64_t in_hi,
                  T* y, int32_t* index) {
  for (int64_t ow = 0; ow < in_lo; ++ow) pool::max_window(x, g, oh, ow, y + ow, index + ow);
  for (int64_t ow = in_hi; ow < g.w_out; ++ow) pool::max_window(x, g, oh, ow, y + ow, index + ow);
  if (in_lo >= in_hi) return;
  const pool::Range r = pool::clip(oh * g.p.stride_h - g.p.pad_h, g.p.kh, g.h);
  switch (g.p.stride_w) {
    case 1:
      return max_pool_interior<1>(x, g, r, in_lo, in_hi, y, index);
    case 2:
      return max_pool_interior<2>(x, g, r, in_lo, in_hi, y, index);
    default:
      return max_pool_interior<0>(x, g, r, in_lo, in_hi, y, index);
  }
}

}  // namespace

void max_pool2d_forward(Context&, const Pool2dGeometry& g, const Tensor& x, const Tensor& y,
                        const Tensor& indices) {
  const int64_t in_plane = g.h * g.w, out_plane = g.h_out * g.w_out;
  const Pool2dParams& p = g.p;
  // ow whose window has all its columns inside: ow stride_w >= pad_w and
  // ow stride_w - pad_w + kw <= w.
  const int64_t in_lo = std::min<int64_t>(g.w_out, (p.pad_w + p.stride_w - 1) / p.stride_w);
  const int64_t last = g.w + p.pad_w - p.kw;  // the largest ow stride_w allowed
  const int64_t in_hi =
      last < 0 ? in_lo : std::clamp<int64_t>(last / p.stride_w + 1, in_lo, g.w_out);
  int32_t* pi = indices.data<int32_t>();
  CYCLONE_DISPATCH_FLOAT(x.dtype(), T, [&] {
    const T* px = x.data<T>();
    T* py = y.data<T>();
    over_planes(g, out_plane * p.kh * p.kw, [&](int64_t q) {
      for (int64_t oh = 0; oh < g.h_out; ++oh) {
        const int64_t o = q * out_plane + oh * g.w_out;
        max_pool_row(px + q * in_plane, g, oh, in_lo, in_hi, py + o, pi + o);
      }
    });
  });
}

void max_pool2d_backward(Context&, const Pool2dGeometry& g, const Tensor& dy, const Tensor& indices,
                         const Tensor& dx) {
  const int64_t in_plane = g.h * g.w, out_plane = g.h_out * g.w_out;
  const int32_t* pi = indices.data<int32_t>();
  CYCLONE_DISPATCH_FLOAT(dy.dtype(), T, [&] {
    const T* pdy = dy.data<T>();
    T* pdx = dx.data<T>();
    // A scatter: each output sends its gradient to its argmax (sequential within a plane, so
    // deterministic, and cheaper than the gather the GPU uses).
    over_planes(g, in_plane + out_plane, [&](int64_t q) {
      T* d = pdx + q * in_plane;
      std::fill(d, d + in_plane, T(0));
      for (int64_t o = 0; o < out_plane; ++o) {
        // An index outside the plane (not one max_pool2d_forward wrote) matches no element, as in
        // the GPU's gather: skipped rather than written out of bounds.
        const int32_t k = pi[q * out_plane + o];
        if (k >= 0 && k < in_plane) d[k] += pdy[q * out_plane + o];
      }
    });
  });
}

void avg_pool2d_forward(Context&, const Pool2dGeometry& g, const Tensor& x, const Tensor& y) {
  const int64_t in_plane = g.h * g.w, out_plane = g.h_out * g.w_out;
  CYCLONE_DISPATCH_FLOAT(x.dtype(), T, [&] {
    const T* px = x.data<T>();
    T* py = y.data<T>();
    over_planes(g, out_plane * g.p.kh * g.p.kw, [&](int64_t q) {
      for (int64_t oh = 0; oh < g.h_out; ++oh)
        for (int64_t ow = 0; ow < g.w_out; ++ow)
          py[q * out_plane + oh * g.w_out + ow] = pool::avg_window(px + q * in_plane, g, oh, ow);
    });
  });
}

void avg_pool2d_backward(Context&, const Pool2dGeometry& g, const Tensor& dy, const Tensor& dx) {
  const int64_t in_plane = g.h * g.w, out_plane = g.h_out * g.w_out;
  CYCLONE_DISPATCH_FLOAT(dy.dtype(), T, [&] {
    const T* pdy = dy.data<T>();
    T* pdx = dx.data<T>();
    // The gather of pool_math.h, as on the GPU: the same sums in the same order.
    over_planes(g, in_plane * g.p.kh * g.p.kw, [&](int64_t q) {
      for (int64_t ih = 0; ih < g.h; ++ih)
        for (int64_t iw = 0; iw < g.w; ++iw)
          pdx[q * in_plane + ih * g.w + iw] = pool::avg_backward_at(pdy + q * out_plane, g, ih, iw);
    });
  });
}

}  // namespace cyclone::kernels::cpu
