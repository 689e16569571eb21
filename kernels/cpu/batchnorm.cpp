// CPU batch norm: one thread owns a channel at a time and walks its N runs of `inner` contiguous
// values in order, so the sums (in double) do not depend on the thread count.
#include "cyclone/kernels/cpu/batchnorm.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

#include "cyclone/core/parallel.h"

namespace cyclone::kernels::cpu {

namespace {

// Values per parallel chunk of channels: enough work that waking a thread pays off.
constexpr int64_t kGrainElements = 1 << 16;

int64_t channel_grain(const BatchNormDims& d) {
  return std::max<int64_t>(1, kGrainElements / std::max<int64_t>(1, d.per_channel()));
}

// Calls f(v) for v pointing at each of channel c's N runs of `inner` values (in order).
template <class T, class F>
inline void for_runs(T* base, const BatchNormDims& d, int64_t c, F&& f) {
  for (int64_t n = 0; n < d.n; ++n) f(base + (n * d.c + c) * d.inner);
}

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

}  // namespace

void batch_norm_forward(Context&, const Tensor& x, const Tensor& weight, const Tensor& bias,
                        const Tensor& running_mean, const Tensor& running_var, bool training,
                        double momentum, double eps, const Tensor& y, const Tensor& save_mean,
                        const Tensor& save_invstd, bool relu) {
  const BatchNormDims d = batch_norm_dims(x.shape());
  const int64_t inner = d.inner;
  const double m_count = static_cast<double>(d.per_channel());
  CYCLONE_DISPATCH_FLOATING(x.dtype(), T, [&] {
    using P = math_t<T>;  // per-channel tensors: float32 beside bfloat16 activations
    const T* px = x.data<T>();
    T* py = y.data<T>();
    const P* pw = ptr_or_null<P>(weight);
    const P* pb = ptr_or_null<P>(bias);
    P* prm = running_mean.defined() ? running_mean.data<P>() : nullptr;
    P* prv = running_var.defined() ? running_var.data<P>() : nullptr;
    P* psm = save_mean.data<P>();
    P* psi = save_invstd.data<P>();
    parallel_for(d.c, channel_grain(d), [&](int64_t lo, int64_t hi) {
      for (int64_t c = lo; c < hi; ++c) {
        double mean, invstd;
        if (training) {
          double sum = 0;
          for_runs(px, d, c, [&](const T* v) {
            for (int64_t i = 0; i < inner; ++i) sum += static_cast<double>(v[i]);
          });
          mean = sum / m_count;
          double sq = 0;
          for_runs(px, d, c, [&](const T* v) {
            for (int64_t i = 0; i < inner; ++i) {
              const double dev = static_cast<double>(v[i]) - mean;
              sq += dev * dev;
            }
          });
          const double var = sq / m_count;
          invstd = 1.0 / std::sqrt(var + eps);
          if (prm) {
            const double unbiased = sq / (m_count - 1);
            prm[c] = static_cast<P>((1 - momentum) * static_cast<double>(prm[c]) + momentum * mean);
            prv[c] =
                static_cast<P>((1 - momentum) * static_cast<double>(prv[c]) + momentum * unbiased);
          }
        } else {
          mean = static_cast<double>(prm[c]);
          invstd = 1.0 / std::sqrt(static_cast<double>(prv[c]) + eps);
        }
        psm[c] = static_cast<P>(mean);
        psi[c] = static_cast<P>(invstd);
        // y from the statistics as saved (as CUDA does), which the backward reads.
        mean = static_cast<double>(psm[c]);
        invstd = static_cast<double>(psi[c]);
        const double scale = pw ? invstd * static_cast<double>(pw[c]) : invstd;
        const double shift = pb ? static_cast<double>(pb[c]) : 0.0;
        for (int64_t n = 0; n < d.n; ++n) {
          const int64_t off = (n * d.c + c) * inner;
          auto pre = [&](int64_t i) {
            return pre_activation(static_cast<double>(px[off + i]), mean, scale, shift);
          };
          if (relu)  // two loops: no test of `relu` per element
            for (int64_t i = 0; i < inner; ++i) py[off + i] = static_cast<T>(relu_of(pre(i)));
          else
            for (int64_t i = 0; i < inner; ++i) py[off + i] = static_cast<T>(pre(i));
        }
      }
    });
  });
}

void batch_norm_backward(Context&, const Tensor& x, const Tensor& dy, const Tensor& weight,
                         const Tensor& bias, const Tensor& save_mean, const Tensor& save_invstd,
                         bool training, const Tensor& dx, const Tensor& dweight,
                         const Tensor& dbias, bool relu) {
  const BatchNormDims d = batch_norm_dims(x.shape());
  const int64_t inner = d.inner;
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
    // The sums are needed for dweight / dbias, and for dx in training mode only.
    const bool need_sums = pdw || pdb || (pdx && training);
    parallel_for(d.c, channel_grain(d), [&](int64_t lo, int64_t hi) {
      for (int64_t c = lo; c < hi; ++c) {
        const double mean = static_cast<double>(psm[c]);
        const double invstd = static_cast<double>(psi[c]);
        const double scale = pw ? invstd * static_cast<double>(pw[c]) : invstd;
        const double shift = pb ? static_cast<double>(pb[c]) : 0.0;
        // dy, masked where the fused ReLU's input was not positive.
        auto grad = [&](int64_t o) {
          const double g = static_cast<double>(pdy[o]);
          if (!relu) return g;
          return keep_if(g, pre_activation(static_cast<double>(px[o]), mean, scale, shift) > 0);
        };
        double sum_dy = 0, sum_dy_xhat = 0;
        if (need_sums) {
          for (int64_t n = 0; n < d.n; ++n) {
            const int64_t off = (n * d.c + c) * inner;
            for (int64_t i = 0; i < inner; ++i) {
              const double g = grad(off + i);
              sum_dy += g;
              sum_dy_xhat += g * (static_cast<double>(px[off + i]) - mean) * invstd;
            }
          }
        }
        if (pdb) pdb[c] = static_cast<P>(sum_dy);
        if (pdw) pdw[c] = static_cast<P>(sum_dy_xhat);
        if (!pdx) continue;
        const double mean_dy = training ? sum_dy / m_count : 0.0;
        const double mean_dy_xhat = training ? sum_dy_xhat / m_count : 0.0;
        for (int64_t n = 0; n < d.n; ++n) {
          const int64_t off = (n * d.c + c) * inner;
          for (int64_t i = 0; i < inner; ++i) {
            const double xhat = (static_cast<double>(px[off + i]) - mean) * invstd;
            pdx[off + i] = static_cast<T>(scale * (grad(off + i) - mean_dy - xhat * mean_dy_xhat));
          }
        }
      }
    });
  });
}

}  // namespace cyclone::kernels::cpu
