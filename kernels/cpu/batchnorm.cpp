// CPU batch norm. The per-channel sums are split into chunks fixed by the shape alone
// (kernels/cpu/batchnorm_chunks.h): each chunk is summed in double on whichever thread takes it,
// and the chunk partials of a channel are combined in chunk order, so the results are
// bit-identical for any CYCLONE_NUM_THREADS while the whole pool works even on few, large
// channels.
#include "cyclone/kernels/cpu/batchnorm.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

#include "cyclone/kernels/cpu/batchnorm_chunks.h"

namespace cyclone::kernels::cpu {

namespace {

using bn::ChunkPlan;
using bn::for_chunks;
using bn::for_elements;
using bn::for_segments;

// Eight independent double accumulators: one serial chain of adds waits ~4 cycles per value;
// eight keep the adder busy. The fold is in a fixed order.
struct Lanes {
  static constexpr int kWidth = 8;
  double a[kWidth] = {};

  template <class Term>
  inline void add(int64_t len, Term&& term) {
    int64_t i = 0;
    for (; i + kWidth <= len; i += kWidth)
      for (int j = 0; j < kWidth; ++j) a[j] += term(i + j);
    for (int j = 0; i + j < len; ++j) a[j] += term(i + j);
  }
  double sum() const { return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7])); }
};

template <class T>
const T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

// The normalised, affine value before the fused ReLU: one expression for the forward and the
// backward's recomputation, so both round it the same way.
inline double pre_activation(double x, double mean, double scale, double shift) {
  return (x - mean) * scale + shift;
}

// v where keep, else +0, without a branch: the compiler turns a select on the sign of normalised
// data into a branch mispredicted half the time (it made the fused loops 3x slower than the pair).
inline double keep_if(double v, bool keep) {
  return std::bit_cast<double>(std::bit_cast<uint64_t>(v) & (uint64_t{0} - uint64_t{keep}));
}

// relu() of kernels/functors.h: NaN stays NaN.
inline double relu_of(double v) { return keep_if(v, !(v < 0)); }

// The backward's two sums over len values: g = dy (masked by the fused ReLU's sign when kRelu)
// into p, g (x - mean) into q. Local lanes and a compile-time kRelu keep the accumulators in
// registers and let the compiler vectorize (a runtime flag and lanes in memory made it scalar,
// spilling, and half the speed of the forward's sums).
template <bool kRelu, class T>
inline void add_dy_sums(const T* x, const T* dy, int64_t len, double mean, double scale,
                        double shift, Lanes& p, Lanes& q) {
  // Four of the eight lanes: two sums of eight would not fit the 16 SSE registers.
  constexpr int w = Lanes::kWidth / 2;
  double a[w], b[w];
  std::copy(p.a, p.a + w, a);
  std::copy(q.a, q.a + w, b);
  // Staged a block at a time, one operation per loop: the shape the vectorizer recognises.
  auto block = [&](int64_t i, int n) {
    double xv[w], g[w];
    for (int j = 0; j < n; ++j) xv[j] = static_cast<double>(x[i + j]);
    for (int j = 0; j < n; ++j) g[j] = static_cast<double>(dy[i + j]);
    if constexpr (kRelu)
      for (int j = 0; j < n; ++j)
        g[j] = keep_if(g[j], pre_activation(xv[j], mean, scale, shift) > 0);
    for (int j = 0; j < n; ++j) a[j] += g[j];
    for (int j = 0; j < n; ++j) b[j] += g[j] * (xv[j] - mean);
  };
  int64_t i = 0;
  for (; i + w <= len; i += w) block(i, w);
  if (i < len) block(i, static_cast<int>(len - i));
  std::copy(a, a + w, p.a);
  std::copy(b, b + w, q.a);
}

// Per-channel constants of the elementwise passes.
struct ChannelAffine {
  std::vector<double> mean, invstd, scale, shift;
  explicit ChannelAffine(int64_t c) : mean(c), invstd(c), scale(c), shift(c) {}
};

// Batch statistics of each channel: every chunk sums its values, then (while they are in cache)
// its squared deviations from its own mean; the chunks are merged in order with Chan, Golub and
// LeVeque's update, M2 = sum_k M2_k + n_k (mean_k - mean)^2, as accurate as two passes over the
// channel. A NaN or inf makes its chunk's M2 NaN (inf - inf), hence the channel's variance.
template <class T>
void batch_statistics(const BatchNormDims& d, const T* px, std::vector<double>& mean,
                      std::vector<double>& m2) {
  const ChunkPlan plan(d);
  std::vector<double> sums(static_cast<size_t>(d.c * plan.chunks));
  std::vector<double> devs(sums.size());
  for_chunks(
      d, plan,
      [&](int64_t c, int64_t k) {
        const int64_t lo = k * plan.len, hi = lo + plan.count(d, k);
        Lanes s;
        for_segments(d, c, lo, hi, [&](int64_t off, int64_t len) {
          const T* v = px + off;
          s.add(len, [&](int64_t i) { return static_cast<double>(v[i]); });
        });
        const double sum = s.sum(), mk = sum / static_cast<double>(hi - lo);
        Lanes q;
        for_segments(d, c, lo, hi, [&](int64_t off, int64_t len) {
          const T* v = px + off;
          q.add(len, [&](int64_t i) {
            const double dev = static_cast<double>(v[i]) - mk;
            return dev * dev;
          });
        });
        sums[plan.slot(d, c, k)] = sum;
        devs[plan.slot(d, c, k)] = q.sum();
      },
      [&](int64_t k, int64_t r_lo, int64_t r_hi) {
        const int64_t C = d.c;
        double* s = &sums[plan.slot(d, 0, k)];
        double* q = &devs[plan.slot(d, 0, k)];
        for (int64_t r = r_lo; r < r_hi; ++r)
          for (int64_t c = 0; c < C; ++c) s[c] += static_cast<double>(px[r * C + c]);
        std::vector<double> mk(s, s + C);
        for (double& v : mk) v /= static_cast<double>(r_hi - r_lo);
        for (int64_t r = r_lo; r < r_hi; ++r)
          for (int64_t c = 0; c < C; ++c) {
            const double dev = static_cast<double>(px[r * C + c]) - mk[c];
            q[c] += dev * dev;
          }
      });
  const double m_count = static_cast<double>(d.per_channel());
  for (int64_t c = 0; c < d.c; ++c) {
    double sum = 0;
    for (int64_t k = 0; k < plan.chunks; ++k) sum += sums[plan.slot(d, c, k)];
    const double mu = sum / m_count;
    double dev = 0;
    for (int64_t k = 0; k < plan.chunks; ++k) {
      const double n_k = static_cast<double>(plan.count(d, k));
      const double diff = sums[plan.slot(d, c, k)] / n_k - mu;
      dev += devs[plan.slot(d, c, k)] + n_k * diff * diff;
    }
    mean[c] = mu;
    m2[c] = dev;
  }
}

}  // namespace

void batch_norm_forward(Context&, const Tensor& x, const Tensor& weight, const Tensor& bias,
                        const Tensor& running_mean, const Tensor& running_var, bool training,
                        double momentum, double eps, const Tensor& y, const Tensor& save_mean,
                        const Tensor& save_invstd, bool relu) {
  const BatchNormDims d = batch_norm_dims(x.shape());
  const int64_t C = d.c, inner = d.inner;
  const double m_count = static_cast<double>(d.per_channel());
  CYCLONE_DISPATCH_FLOATING(x.dtype(), T, [&] {
    using P = math_t<T>;  // per-channel tensors: float32 beside bfloat16 activations
    const T* px = x.data<T>();
    T* py = y.defined() ? y.data<T>() : nullptr;
    const P* pw = ptr_or_null<P>(weight);
    const P* pb = ptr_or_null<P>(bias);
    P* prm = running_mean.defined() ? running_mean.data<P>() : nullptr;
    P* prv = running_var.defined() ? running_var.data<P>() : nullptr;
    P* psm = save_mean.data<P>();
    P* psi = save_invstd.data<P>();
    ChannelAffine a(C);
    if (training) {
      std::vector<double> m2(C);
      batch_statistics(d, px, a.mean, m2);
      for (int64_t c = 0; c < C; ++c) {
        a.invstd[c] = 1.0 / std::sqrt(m2[c] / m_count + eps);
        if (prm) {
          const double unbiased = m2[c] / (m_count - 1);
          prm[c] =
              static_cast<P>((1 - momentum) * static_cast<double>(prm[c]) + momentum * a.mean[c]);
          prv[c] =
              static_cast<P>((1 - momentum) * static_cast<double>(prv[c]) + momentum * unbiased);
        }
      }
    } else {
      for (int64_t c = 0; c < C; ++c) {
        a.mean[c] = static_cast<double>(prm[c]);
        a.invstd[c] = 1.0 / std::sqrt(static_cast<double>(prv[c]) + eps);
      }
    }
    for (int64_t c = 0; c < C; ++c) {
      psm[c] = static_cast<P>(a.mean[c]);
      psi[c] = static_cast<P>(a.invstd[c]);
      // y from the statistics as saved (as CUDA does), which the backward reads.
      a.mean[c] = static_cast<double>(psm[c]);
      a.invstd[c] = static_cast<double>(psi[c]);
      a.scale[c] = pw ? a.invstd[c] * static_cast<double>(pw[c]) : a.invstd[c];
      a.shift[c] = pb ? static_cast<double>(pb[c]) : 0.0;
    }
    if (!py) return;  // the statistics alone
    for_elements(
        d,
        [&](int64_t off, int64_t c) {
          const double mean = a.mean[c], scale = a.scale[c], shift = a.shift[c];
          const T* v = px + off;
          T* out = py + off;
          auto pre = [&](int64_t i) {
            return pre_activation(static_cast<double>(v[i]), mean, scale, shift);
          };
          if (relu)  // two loops: no test of `relu` per element
            for (int64_t i = 0; i < inner; ++i) out[i] = static_cast<T>(relu_of(pre(i)));
          else
            for (int64_t i = 0; i < inner; ++i) out[i] = static_cast<T>(pre(i));
        },
        [&](int64_t r_lo, int64_t r_hi) {
          const double *mean = a.mean.data(), *scale = a.scale.data(), *shift = a.shift.data();
          for (int64_t r = r_lo; r < r_hi; ++r) {
            const T* v = px + r * C;
            T* out = py + r * C;
            auto pre = [&](int64_t c) {
              return pre_activation(static_cast<double>(v[c]), mean[c], scale[c], shift[c]);
            };
            if (relu)
              for (int64_t c = 0; c < C; ++c) out[c] = static_cast<T>(relu_of(pre(c)));
            else
              for (int64_t c = 0; c < C; ++c) out[c] = static_cast<T>(pre(c));
          }
        });
  });
}

void batch_norm_backward(Context&, const Tensor& x, const Tensor& dy, const Tensor& weight,
                         const Tensor& bias, const Tensor& save_mean, const Tensor& save_invstd,
                         bool training, const Tensor& dx, const Tensor& dweight,
                         const Tensor& dbias, bool relu) {
  const BatchNormDims d = batch_norm_dims(x.shape());
  const int64_t C = d.c, inner = d.inner;
  const double m_count = static_cast<double>(d.per_channel());
  CYCLONE_DISPATCH_FLOATING(x.dtype(), T, [&] {
    using P = math_t<T>;
    const T* px = x.data<T>();
    const T* pdy = dy.data<T>();
    const P* pw = ptr_or_null<P>(weight);
    const P* pb = relu ? ptr_or_null<P>(bias) : nullptr;
    const P* psm = save_mean.data<P>();
    const P* psi = save_invstd.data<P>();
    T* pdx = dx.defined() ? dx.data<T>() : nullptr;
    P* pdw = dweight.defined() ? dweight.data<P>() : nullptr;
    P* pdb = dbias.defined() ? dbias.data<P>() : nullptr;
    ChannelAffine a(C);
    for (int64_t c = 0; c < C; ++c) {
      a.mean[c] = static_cast<double>(psm[c]);
      a.invstd[c] = static_cast<double>(psi[c]);
      a.scale[c] = pw ? a.invstd[c] * static_cast<double>(pw[c]) : a.invstd[c];
      a.shift[c] = pb ? static_cast<double>(pb[c]) : 0.0;
    }
    // dy, masked where the fused ReLU's input was not positive.
    auto grad = [&](int64_t o, int64_t c) {
      const double g = static_cast<double>(pdy[o]);
      if (!relu) return g;
      return keep_if(
          g, pre_activation(static_cast<double>(px[o]), a.mean[c], a.scale[c], a.shift[c]) > 0);
    };
    // sum dy and sum dy (x - mean) per channel (times invstd: sum dy xhat), chunked as the
    // forward's statistics and combined in chunk order.
    std::vector<double> sum_dy(C), sum_dy_xhat(C);
    if (pdw || pdb || (pdx && training)) {
      const ChunkPlan plan(d);
      std::vector<double> part_dy(static_cast<size_t>(C * plan.chunks));
      std::vector<double> part_dy_dev(part_dy.size());
      for_chunks(
          d, plan,
          [&](int64_t c, int64_t k) {
            const double mean = a.mean[c], scale = a.scale[c], shift = a.shift[c];
            Lanes g, gd;
            for_segments(
                d, c, k * plan.len, k * plan.len + plan.count(d, k), [&](int64_t off, int64_t len) {
                  if (relu)
                    add_dy_sums<true>(px + off, pdy + off, len, mean, scale, shift, g, gd);
                  else
                    add_dy_sums<false>(px + off, pdy + off, len, mean, scale, shift, g, gd);
                });
            part_dy[plan.slot(d, c, k)] = g.sum();
            part_dy_dev[plan.slot(d, c, k)] = gd.sum();
          },
          [&](int64_t k, int64_t r_lo, int64_t r_hi) {
            double* g = &part_dy[plan.slot(d, 0, k)];
            double* gd = &part_dy_dev[plan.slot(d, 0, k)];
            for (int64_t r = r_lo; r < r_hi; ++r)
              for (int64_t c = 0; c < C; ++c) {
                const double gc = grad(r * C + c, c);
                g[c] += gc;
                gd[c] += gc * (static_cast<double>(px[r * C + c]) - a.mean[c]);
              }
          });
      for (int64_t c = 0; c < C; ++c) {
        double g = 0, gd = 0;
        for (int64_t k = 0; k < plan.chunks; ++k) {
          g += part_dy[plan.slot(d, c, k)];
          gd += part_dy_dev[plan.slot(d, c, k)];
        }
        sum_dy[c] = g;
        sum_dy_xhat[c] = gd * a.invstd[c];
      }
    }
    for (int64_t c = 0; c < C; ++c) {
      if (pdb) pdb[c] = static_cast<P>(sum_dy[c]);
      if (pdw) pdw[c] = static_cast<P>(sum_dy_xhat[c]);
    }
    if (!pdx) return;
    std::vector<double> mean_dy(C), mean_dy_xhat(C);
    if (training)
      for (int64_t c = 0; c < C; ++c) {
        mean_dy[c] = sum_dy[c] / m_count;
        mean_dy_xhat[c] = sum_dy_xhat[c] / m_count;
      }
    // dx = scale (g - mean(g) - xhat mean(g xhat)); the means are 0 in eval mode.
    auto dx_of = [&](int64_t o, int64_t c) {
      const double xhat = (static_cast<double>(px[o]) - a.mean[c]) * a.invstd[c];
      return static_cast<T>(a.scale[c] * (grad(o, c) - mean_dy[c] - xhat * mean_dy_xhat[c]));
    };
    for_elements(
        d,
        [&](int64_t off, int64_t c) {
          const double mean = a.mean[c], invstd = a.invstd[c], scale = a.scale[c];
          const double shift = a.shift[c], mdy = mean_dy[c], mdyx = mean_dy_xhat[c];
          const T* v = px + off;
          const T* u = pdy + off;
          T* out = pdx + off;
          for (int64_t i = 0; i < inner; ++i) {
            const double xv = static_cast<double>(v[i]);
            double g = static_cast<double>(u[i]);
            if (relu) g = keep_if(g, pre_activation(xv, mean, scale, shift) > 0);
            out[i] = static_cast<T>(scale * (g - mdy - (xv - mean) * invstd * mdyx));
          }
        },
        [&](int64_t r_lo, int64_t r_hi) {
          for (int64_t r = r_lo; r < r_hi; ++r)
            for (int64_t c = 0; c < C; ++c) pdx[r * C + c] = dx_of(r * C + c, c);
        });
  });
}

}  // namespace cyclone::kernels::cpu
