// Convolution on the CPU as GEMMs over im2col buffers (Caffe's approach).
//
// The batch is processed in groups of G samples. A group's im2col buffer is col [K, G*P]
// (K = Cin kh kw, P = Hout Wout; column g*P + p holds sample g's receptive field at output
// position p), so each pass is one large GEMM, tiled over the thread pool by blas_gemm
// (kernels/cpu/gemm.h), rather than G small ones. The cheap, memory-bound parts (im2col, col2im and
// the [Cout, G*P] <-> [G, Cout, P] transposes) run in parallel over the samples of the group; each
// sample's writes are disjoint, so the result does not depend on the thread count. G is chosen
// from the shapes alone so that the buffers stay near kBufferElems elements; the buffers are kept
// between calls (ScratchCache).
#include "cyclone/kernels/cpu/conv.h"

#include <algorithm>
#include <cstring>
#include <mutex>

#include "cyclone/core/parallel.h"
#include "cyclone/kernels/cpu/gemm.h"

namespace cyclone::kernels::cpu {

namespace {

// Elements of scratch per group (col plus the transposed output): 32 MiB of float, enough for
// whole LeNet batches and for a few WRN samples at a time.
constexpr int64_t kBufferElems = int64_t{8} << 20;

// Samples per group: as many as fit the buffer budget (at least one).
int64_t group_size(const Conv2dGeometry& g) {
  const int64_t per_sample = g.h_out * g.w_out * (g.k() + g.c_out);
  return std::clamp<int64_t>(kBufferElems / std::max<int64_t>(per_sample, 1), 1, g.n);
}

// The outputs o in [0, n_out) whose input o * stride + offset lies in [0, n_in): [lo, hi).
struct ValidRange {
  int64_t lo, hi;
};
ValidRange valid_range(int64_t n_out, int64_t stride, int64_t offset, int64_t n_in) {
  const int64_t lo = offset >= 0 ? 0 : (-offset + stride - 1) / stride;
  const int64_t hi = n_in > offset ? (n_in - offset + stride - 1) / stride : 0;
  const int64_t h = std::clamp<int64_t>(hi, 0, n_out);
  return {std::min(lo, h), h};
}

// col[k * ld + p] = x[ci, oh s - pad + i d, ow s - pad + j d] (0 outside), k = (ci kh + i) kw + j,
// p = oh Wout + ow; x is one sample [Cin, H, W]. Each output row is its padding's zeros around
// one run of the input row (a copy at stride 1), the run's bounds found once per (i, j), not
// tested per element: the per-element test made im2col a fifth of LeNet-5's CPU step.
template <class T>
void im2col(const Conv2dGeometry& g, const T* x, T* col, int64_t ld) {
  const Conv2dParams& p = g.p;
  for (int64_t ci = 0; ci < g.c_in; ++ci)
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t off_h = i * p.dil_h - p.pad_h;
      const ValidRange rh = valid_range(g.h_out, p.stride_h, off_h, g.h);
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t off_w = j * p.dil_w - p.pad_w;
        const ValidRange rw = valid_range(g.w_out, p.stride_w, off_w, g.w);
        const int64_t oh_hi = rw.lo < rw.hi ? rh.hi : rh.lo;  // no column inside: all zeros
        T* row = col + ((ci * g.kh + i) * g.kw + j) * ld;
        std::fill(row, row + rh.lo * g.w_out, T(0));
        for (int64_t oh = rh.lo; oh < oh_hi; ++oh) {
          T* out = row + oh * g.w_out;
          // x[ci, ih, ow * stride + off_w] for ow in [rw.lo, rw.hi), all inside the row.
          const int64_t first =
              (ci * g.h + oh * p.stride_h + off_h) * g.w + rw.lo * p.stride_w + off_w;
          std::fill(out, out + rw.lo, T(0));
          if (p.stride_w == 1)
            std::copy(x + first, x + first + (rw.hi - rw.lo), out + rw.lo);
          else
            for (int64_t ow = rw.lo; ow < rw.hi; ++ow)
              out[ow] = x[first + (ow - rw.lo) * p.stride_w];
          std::fill(out + rw.hi, out + g.w_out, T(0));
        }
        std::fill(row + oh_hi * g.w_out, row + g.h_out * g.w_out, T(0));
      }
    }
}

// The adjoint of im2col: dx = 0, then dx[ci, ih, iw] += col[k * ld + p] for every (k, p) that
// im2col read from there, in the order (ci, i, j, oh, ow) whatever the loop bounds: one sample, a
// fixed order, deterministic.
template <class T>
void col2im(const Conv2dGeometry& g, const T* col, int64_t ld, T* dx) {
  const Conv2dParams& p = g.p;
  std::fill(dx, dx + g.c_in * g.h * g.w, T(0));
  for (int64_t ci = 0; ci < g.c_in; ++ci)
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t off_h = i * p.dil_h - p.pad_h;
      const ValidRange rh = valid_range(g.h_out, p.stride_h, off_h, g.h);
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t off_w = j * p.dil_w - p.pad_w;
        const ValidRange rw = valid_range(g.w_out, p.stride_w, off_w, g.w);
        if (rw.lo == rw.hi) continue;
        const T* row = col + ((ci * g.kh + i) * g.kw + j) * ld;
        for (int64_t oh = rh.lo; oh < rh.hi; ++oh) {
          const T* in = row + oh * g.w_out;
          T* out = dx + (ci * g.h + oh * p.stride_h + off_h) * g.w + rw.lo * p.stride_w + off_w;
          for (int64_t ow = rw.lo; ow < rw.hi; ++ow) out[(ow - rw.lo) * p.stride_w] += in[ow];
        }
      }
    }
}

// The convolutions' scratch blocks, kept between calls: a fresh block of this size comes from
// mmap and every page of it faults on first touch, which was 14% of a LeNet-5 CPU training step
// (im2col writing new pages). One block per slot (0: col, 1: the transposed output or dy) for the
// whole process, however many threads call: a call takes the kept block when it is large enough
// and of its dtype (else allocates), and gives its block back when done, the larger of the two
// staying. So at most two blocks are held between calls (32 MiB for float32 LeNet / WRN groups),
// never one per thread. Blocks over kCachedScratchBytes (one huge sample) are not kept. Kept
// blocks count as CPU tensor memory.
constexpr size_t kCachedScratchBytes = size_t{80} << 20;

class ScratchCache {
 public:
  static ScratchCache& instance() {
    static ScratchCache* cache = new ScratchCache;  // never destroyed: usable until exit
    return *cache;
  }
  Tensor take(int slot, DType dtype, int64_t n) {
    Tensor t;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      Tensor& k = kept_[slot];
      if (k.defined() && k.dtype() == dtype && k.numel() >= n) t = std::move(k);
    }
    return t.defined() ? t : Tensor::empty({n}, dtype, Device::cpu());
  }
  void give(int slot, Tensor t) {
    if (t.nbytes() > kCachedScratchBytes) return;
    std::lock_guard<std::mutex> lock(mutex_);
    Tensor& k = kept_[slot];
    if (!k.defined() || t.nbytes() > k.nbytes()) std::swap(k, t);
    // t (the smaller block) is freed here, under the lock: a free() call, not worth avoiding.
  }

 private:
  std::mutex mutex_;
  Tensor kept_[2];
};

// A block of at least `n` elements of T (uninitialised, aligned host memory) for one call, given
// back to the cache when the call ends.
template <class T>
class Scratch {
 public:
  // n == 0: no block (data() is null), the cache untouched.
  Scratch(int slot, int64_t n)
      : slot_(slot), t_(n > 0 ? ScratchCache::instance().take(slot, dtype_of<T>, n) : Tensor()) {}
  ~Scratch() {
    if (t_.defined()) ScratchCache::instance().give(slot_, std::move(t_));
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  T* data() const { return t_.defined() ? t_.data<T>() : nullptr; }

 private:
  int slot_;
  Tensor t_;
};

// Runs f(g) for each sample g of a group in parallel (one sample per chunk).
template <class F>
void per_sample(int64_t count, F&& f) {
  parallel_for(count, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t s = lo; s < hi; ++s) f(s);
  });
}

}  // namespace

void conv2d_forward(Context&, const Conv2dGeometry& g, const Tensor& x, const Tensor& weight,
                    const Tensor& bias, const Tensor& y) {
  CYCLONE_DISPATCH_FLOAT(x.dtype(), T, [&] {
    const int64_t P = g.h_out * g.w_out, K = g.k(), G = group_size(g);
    const int64_t x_sample = g.c_in * g.h * g.w, y_sample = g.c_out * P;
    const T* px = x.data<T>();
    const T* pw = weight.data<T>();
    const T* pb = bias.defined() ? bias.data<T>() : nullptr;
    T* py = y.data<T>();
    const Scratch<T> col_t(0, K * G * P);
    const Scratch<T> tmp_t(1, G > 1 ? g.c_out * G * P : 0);
    T* col = col_t.data();
    for (int64_t n0 = 0; n0 < g.n; n0 += G) {
      const int64_t gs = std::min(G, g.n - n0), ld = gs * P;
      per_sample(gs, [&](int64_t s) { im2col(g, px + (n0 + s) * x_sample, col + s * P, ld); });
      if (gs == 1) {
        // One sample: the GEMM writes y[n0] [Cout, P] directly.
        T* out = py + n0 * y_sample;
        blas_gemm(false, false, g.c_out, P, K, T(1), pw, K, col, ld, T(0), out, P);
        if (pb != nullptr)
          for (int64_t co = 0; co < g.c_out; ++co)
            for (int64_t q = 0; q < P; ++q) out[co * P + q] += pb[co];
        continue;
      }
      T* tmp = tmp_t.data();
      blas_gemm(false, false, g.c_out, ld, K, T(1), pw, K, col, ld, T(0), tmp, ld);
      // tmp [Cout, gs*P] -> y[n0 + s] [Cout, P], adding the bias on the way.
      per_sample(gs, [&](int64_t s) {
        T* out = py + (n0 + s) * y_sample;
        for (int64_t co = 0; co < g.c_out; ++co) {
          const T* in = tmp + co * ld + s * P;
          const T b = pb != nullptr ? pb[co] : T(0);
          for (int64_t q = 0; q < P; ++q) out[co * P + q] = in[q] + b;
        }
      });
    }
  });
}

namespace {
// dy of samples [n0, n0 + gs) as [Cout, gs*P] (the layout of a group's GEMM): a view of dy itself
// for one sample, else a transposed copy into buf.
template <class T>
const T* gather_dy(const Conv2dGeometry& g, const T* dy, int64_t n0, int64_t gs, T* buf) {
  const int64_t P = g.h_out * g.w_out, y_sample = g.c_out * P;
  if (gs == 1) return dy + n0 * y_sample;
  per_sample(gs, [&](int64_t s) {
    const T* in = dy + (n0 + s) * y_sample;
    for (int64_t co = 0; co < g.c_out; ++co)
      std::memcpy(buf + co * gs * P + s * P, in + co * P, static_cast<size_t>(P) * sizeof(T));
  });
  return buf;
}
}  // namespace

void conv2d_backward_data(Context&, const Conv2dGeometry& g, const Tensor& dy, const Tensor& weight,
                          const Tensor& dx) {
  CYCLONE_DISPATCH_FLOAT(dy.dtype(), T, [&] {
    const int64_t P = g.h_out * g.w_out, K = g.k(), G = group_size(g);
    const int64_t x_sample = g.c_in * g.h * g.w;
    const T* pdy = dy.data<T>();
    const T* pw = weight.data<T>();
    T* pdx = dx.data<T>();
    const Scratch<T> col_t(0, K * G * P);
    const Scratch<T> dy_t(1, G > 1 ? g.c_out * G * P : 0);
    T* col = col_t.data();
    for (int64_t n0 = 0; n0 < g.n; n0 += G) {
      const int64_t gs = std::min(G, g.n - n0), ld = gs * P;
      const T* d = gather_dy(g, pdy, n0, gs, G > 1 ? dy_t.data() : nullptr);
      // dcol [K, gs*P] = W^T [K, Cout] @ dy [Cout, gs*P]
      blas_gemm(true, false, K, ld, g.c_out, T(1), pw, K, d, ld, T(0), col, ld);
      per_sample(gs, [&](int64_t s) { col2im(g, col + s * P, ld, pdx + (n0 + s) * x_sample); });
    }
  });
}

void conv2d_backward_filter(Context&, const Conv2dGeometry& g, const Tensor& x, const Tensor& dy,
                            const Tensor& dw) {
  CYCLONE_DISPATCH_FLOAT(x.dtype(), T, [&] {
    const int64_t P = g.h_out * g.w_out, K = g.k(), G = group_size(g);
    const int64_t x_sample = g.c_in * g.h * g.w;
    const T* px = x.data<T>();
    const T* pdy = dy.data<T>();
    T* pdw = dw.data<T>();
    const Scratch<T> col_t(0, K * G * P);
    const Scratch<T> dy_t(1, G > 1 ? g.c_out * G * P : 0);
    T* col = col_t.data();
    for (int64_t n0 = 0; n0 < g.n; n0 += G) {
      const int64_t gs = std::min(G, g.n - n0), ld = gs * P;
      per_sample(gs, [&](int64_t s) { im2col(g, px + (n0 + s) * x_sample, col + s * P, ld); });
      const T* d = gather_dy(g, pdy, n0, gs, G > 1 ? dy_t.data() : nullptr);
      // dW [Cout, K] (+)= dy [Cout, gs*P] @ col^T [gs*P, K]; the first group overwrites dW.
      blas_gemm(false, true, g.c_out, K, ld, T(1), d, ld, col, ld, n0 == 0 ? T(0) : T(1), pdw, K);
    }
  });
}

}  // namespace cyclone::kernels::cpu
