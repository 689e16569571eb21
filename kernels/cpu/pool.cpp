#include "cyclone/kernels/cpu/pool.h"

#include <algorithm>

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

}  // namespace

void max_pool2d_forward(Context&, const Pool2dGeometry& g, const Tensor& x, const Tensor& y,
                        const Tensor& indices) {
  const int64_t in_plane = g.h * g.w, out_plane = g.h_out * g.w_out;
  int32_t* pi = indices.data<int32_t>();
  CYCLONE_DISPATCH_FLOAT(x.dtype(), T, [&] {
    const T* px = x.data<T>();
    T* py = y.data<T>();
    over_planes(g, out_plane * g.p.kh * g.p.kw, [&](int64_t q) {
      for (int64_t oh = 0; oh < g.h_out; ++oh)
        for (int64_t ow = 0; ow < g.w_out; ++ow) {
          const int64_t o = q * out_plane + oh * g.w_out + ow;
          pool::max_window(px + q * in_plane, g, oh, ow, py + o, pi + o);
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
