// Synchronized batch norm's per-channel steps (kernels/sync_batchnorm.h): argument checks, the CPU
// loops, and the dispatch to CUDA. The arithmetic is kernels/sync_batchnorm_math.h.
#include "cyclone/kernels/sync_batchnorm.h"

#include "cyclone/kernels/cuda/sync_batchnorm.h"
#include "cyclone/kernels/sync_batchnorm_math.h"

namespace cyclone::kernels {

namespace {

// A [C] tensor of the statistics' dtype (float32 or float64) on `like`'s device; undefined passes
// when `optional`.
void check_stat(const char* op, const char* name, const Tensor& t, const Tensor& like, int64_t c,
                bool optional) {
  if (!t.defined()) {
    CYCLONE_CHECK(optional, op, ": ", name, " is undefined");
    return;
  }
  CYCLONE_CHECK(t.numel() == c, op, ": ", name, " must have one element per channel (", c,
                "), got ", t.shape());
  CYCLONE_CHECK(t.dtype() == like.dtype(), op, ": ", name, " must be ", dtype_name(like.dtype()),
                ", got ", dtype_name(t.dtype()));
  check_same_device(op, like, t);
}

void check_sums(const char* op, const char* name, const Tensor& s, int64_t size) {
  CYCLONE_CHECK(s.defined() && s.dtype() == DType::kFloat64 && s.numel() == size, op, ": ", name,
                " must be float64 with ", size, " elements, got ",
                s.defined() ? s.shape().str() + " " + dtype_name(s.dtype()) : "undefined");
}

template <class T>
T* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<T>() : nullptr;
}

}  // namespace

void sync_batch_norm_pack(Context& ctx, const Tensor& save_mean, const Tensor& save_invstd,
                          double eps, double m, const Tensor& sums) {
  const char* op = "sync_batch_norm_pack";
  CYCLONE_CHECK(save_mean.defined(), op, ": save_mean is undefined");
  check_float(op, save_mean, "save_mean");
  const int64_t c = save_mean.numel();
  check_stat(op, "save_invstd", save_invstd, save_mean, c, false);
  check_sums(op, "sums", sums, 2 * c + 1);
  check_same_device(op, save_mean, sums);
  CYCLONE_CHECK(m >= 0, op, ": M ", m, " must be >= 0");
  if (save_mean.device().is_cuda())
    return cuda::sync_batch_norm_pack(ctx, save_mean, save_invstd, eps, m, sums);
  CYCLONE_DISPATCH_FLOAT(save_mean.dtype(), T, [&] {
    const T* mean = save_mean.data<T>();
    const T* invstd = save_invstd.data<T>();
    double* s = sums.data<double>();
    for (int64_t k = 0; k < c; ++k)
      sync_bn::pack(static_cast<double>(mean[k]), static_cast<double>(invstd[k]), eps, m, s[k],
                    s[c + k]);
    s[2 * c] = m;
  });
}

void sync_batch_norm_stats(Context& ctx, const Tensor& sums, double eps, double momentum,
                           const Tensor& mean, const Tensor& var, const Tensor& invstd,
                           const Tensor& running_mean, const Tensor& running_var) {
  const char* op = "sync_batch_norm_stats";
  CYCLONE_CHECK(mean.defined(), op, ": mean is undefined");
  check_float(op, mean, "mean");
  const int64_t c = mean.numel();
  check_sums(op, "sums", sums, 2 * c + 1);
  check_same_device(op, mean, sums);
  check_stat(op, "var", var, mean, c, false);
  check_stat(op, "invstd", invstd, mean, c, false);
  check_stat(op, "running_mean", running_mean, mean, c, true);
  check_stat(op, "running_var", running_var, mean, c, true);
  CYCLONE_CHECK(running_mean.defined() == running_var.defined(), op,
                ": running_mean and running_var are both defined or both undefined");
  if (mean.device().is_cuda())
    return cuda::sync_batch_norm_stats(ctx, sums, eps, momentum, mean, var, invstd, running_mean,
                                       running_var);
  CYCLONE_DISPATCH_FLOAT(mean.dtype(), T, [&] {
    const double* s = sums.data<double>();
    const double m = s[2 * c];
    T *pm = mean.data<T>(), *pv = var.data<T>(), *pi = invstd.data<T>();
    T *rm = ptr_or_null<T>(running_mean), *rv = ptr_or_null<T>(running_var);
    for (int64_t k = 0; k < c; ++k) {
      const sync_bn::Stats st = sync_bn::stats(s[k], s[c + k], m, eps);
      pm[k] = static_cast<T>(st.mean);
      pv[k] = static_cast<T>(st.var);
      pi[k] = static_cast<T>(st.invstd);
      if (rm) {
        rm[k] = static_cast<T>(sync_bn::running(static_cast<double>(rm[k]), st.mean, momentum));
        rv[k] = static_cast<T>(
            sync_bn::running(static_cast<double>(rv[k]), st.var * m / (m - 1), momentum));
      }
    }
  });
}

void sync_batch_norm_dx_affine(Context& ctx, const Tensor& sums, const Tensor& grads,
                               const Tensor& weight, double eps, const Tensor& alpha,
                               const Tensor& beta) {
  const char* op = "sync_batch_norm_dx_affine";
  CYCLONE_CHECK(alpha.defined(), op, ": alpha is undefined");
  check_float(op, alpha, "alpha");
  const int64_t c = alpha.numel();
  check_sums(op, "sums", sums, 2 * c + 1);
  check_sums(op, "grads", grads, 2 * c);
  check_same_device(op, alpha, sums);
  check_same_device(op, alpha, grads);
  check_stat(op, "beta", beta, alpha, c, false);
  check_stat(op, "weight", weight, alpha, c, true);
  if (alpha.device().is_cuda())
    return cuda::sync_batch_norm_dx_affine(ctx, sums, grads, weight, eps, alpha, beta);
  CYCLONE_DISPATCH_FLOAT(alpha.dtype(), T, [&] {
    const double* s = sums.data<double>();
    const double* g = grads.data<double>();
    const double m = s[2 * c];
    const T* w = ptr_or_null<T>(weight);
    T *pa = alpha.data<T>(), *pb = beta.data<T>();
    for (int64_t k = 0; k < c; ++k) {
      double a, b;
      sync_bn::dx_affine(sync_bn::stats(s[k], s[c + k], m, eps),
                         w ? static_cast<double>(w[k]) : 1.0, g[k], g[c + k], m, a, b);
      pa[k] = static_cast<T>(a);
      pb[k] = static_cast<T>(b);
    }
  });
}

}  // namespace cyclone::kernels
