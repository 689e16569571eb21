// The per-element math of kernels/pool.h, written once as __host__ __device__ code: the CPU loops
// (kernels/cpu/pool.cpp) and the CUDA grids (kernels/cuda/pool.cu) call the same functions, so the
// parity tests compare like with like (the same summation order, the same tie and NaN rules).
// Each function handles one plane (x or dx of one (n, c), row-major H x W; y / dy / indices of
// the same plane, Hout x Wout).
#pragma once

#include <cstdint>

#include "cyclone/core/hd.h"
#include "cyclone/kernels/pool.h"

namespace cyclone::kernels::pool {

CYCLONE_HD int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
CYCLONE_HD int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// The in-bounds rows [lo, hi) of a window starting at `start` (may be negative) of size k.
struct Range {
  int64_t lo, hi;
};
CYCLONE_HD Range clip(int64_t start, int64_t k, int64_t size) {
  return {max64(start, 0), min64(start + k, size)};
}

// The outputs [lo, hi) along one dim whose window covers input position i:
// o stride - pad <= i < o stride - pad + k.
CYCLONE_HD Range covering(int64_t i, int64_t k, int64_t stride, int64_t pad, int64_t out) {
  const int64_t a = i + pad - k + 1;  // o stride >= a
  const int64_t lo = a <= 0 ? 0 : (a + stride - 1) / stride;
  const int64_t hi = min64((i + pad) / stride + 1, out);
  return {lo, hi};
}

// y and the plane-relative index of the maximum of window (oh, ow). Ties keep the first element
// in row-major order; the first NaN wins and stays (v != v tests NaN on host and device alike).
template <class T>
CYCLONE_HD void max_window(const T* x, const Pool2dGeometry& g, int64_t oh, int64_t ow, T* y,
                           int32_t* index) {
  const Range r = clip(oh * g.p.stride_h - g.p.pad_h, g.p.kh, g.h);
  const Range c = clip(ow * g.p.stride_w - g.p.pad_w, g.p.kw, g.w);
  int64_t best_i = r.lo * g.w + c.lo;
  T best = x[best_i];
  for (int64_t ih = r.lo; ih < r.hi; ++ih)
    for (int64_t iw = c.lo; iw < c.hi; ++iw) {
      const T v = x[ih * g.w + iw];
      if (v > best || (v != v && best == best)) {
        best = v;
        best_i = ih * g.w + iw;
      }
    }
  *y = best;
  *index = static_cast<int32_t>(best_i);
}

// dx at (ih, iw): the dy of every window whose maximum was this element.
template <class T>
CYCLONE_HD T max_backward_at(const T* dy, const int32_t* index, const Pool2dGeometry& g, int64_t ih,
                             int64_t iw) {
  const Range r = covering(ih, g.p.kh, g.p.stride_h, g.p.pad_h, g.h_out);
  const Range c = covering(iw, g.p.kw, g.p.stride_w, g.p.pad_w, g.w_out);
  const int32_t self = static_cast<int32_t>(ih * g.w + iw);
  T s = T(0);
  for (int64_t oh = r.lo; oh < r.hi; ++oh)
    for (int64_t ow = c.lo; ow < c.hi; ++ow)
      if (index[oh * g.w_out + ow] == self) s += dy[oh * g.w_out + ow];
  return s;
}

// The mean of window (oh, ow) with padded zeros counted (divisor kh kw).
template <class T>
CYCLONE_HD T avg_window(const T* x, const Pool2dGeometry& g, int64_t oh, int64_t ow) {
  const Range r = clip(oh * g.p.stride_h - g.p.pad_h, g.p.kh, g.h);
  const Range c = clip(ow * g.p.stride_w - g.p.pad_w, g.p.kw, g.w);
  T s = T(0);
  for (int64_t ih = r.lo; ih < r.hi; ++ih)
    for (int64_t iw = c.lo; iw < c.hi; ++iw) s += x[ih * g.w + iw];
  return s / static_cast<T>(g.p.kh * g.p.kw);
}

// dx at (ih, iw): the sum of dy over the windows containing it, over kh kw.
template <class T>
CYCLONE_HD T avg_backward_at(const T* dy, const Pool2dGeometry& g, int64_t ih, int64_t iw) {
  const Range r = covering(ih, g.p.kh, g.p.stride_h, g.p.pad_h, g.h_out);
  const Range c = covering(iw, g.p.kw, g.p.stride_w, g.p.pad_w, g.w_out);
  T s = T(0);
  for (int64_t oh = r.lo; oh < r.hi; ++oh)
    for (int64_t ow = c.lo; ow < c.hi; ++ow) s += dy[oh * g.w_out + ow];
  return s / static_cast<T>(g.p.kh * g.p.kw);
}

}  // namespace cyclone::kernels::pool
