// Synchronized batch norm's per-channel arithmetic (kernels/sync_batchnorm.h), written once as
// __host__ __device__ functions: the CPU loops of kernels/sync_batchnorm.cpp and the CUDA kernels
// of kernels/cuda/sync_batchnorm.cu run the same code, in double.
#pragma once

#include <cmath>

#include "cyclone/core/hd.h"

namespace cyclone::kernels::sync_bn {

// A replica's channel as the two sums added over the replicas: M mean and M E[x^2], where
// var = 1/invstd^2 - eps undoes batch_norm's invstd = 1/sqrt(var + eps). Nothing for M = 0.
CYCLONE_HD void pack(double mean, double invstd, double eps, double m, double& s1, double& s2) {
  if (m == 0) {
    s1 = 0;
    s2 = 0;
    return;
  }
  const double var = 1.0 / (invstd * invstd) - eps;
  s1 = m * mean;
  s2 = m * (var + mean * mean);
}

struct Stats {
  double mean, var, invstd;  // var biased, clamped at 0 against rounding (a NaN stays a NaN)
};

// The global statistics of a channel from its added sums over M values.
CYCLONE_HD Stats stats(double s1, double s2, double m, double eps) {
  using std::sqrt;  // not cyclone::sqrt(const Tensor&), which a library user's includes bring in
  const double mean = s1 / m;
  const double diff = s2 / m - mean * mean;
  const double var = diff < 0.0 ? 0.0 : diff;
  return {mean, var, 1.0 / sqrt(var + eps)};
}

// batch_norm's running-statistics update.
CYCLONE_HD double running(double r, double stat, double momentum) {
  return (1 - momentum) * r + momentum * stat;
}

// The backward's correction dx = dx_eval + alpha x + beta, from the global sums of dy and of
// dy xhat over M values (dx_eval = dy w invstd, the eval-mode backward).
CYCLONE_HD void dx_affine(const Stats& st, double w, double sum_dy, double sum_dy_xhat, double m,
                          double& alpha, double& beta) {
  const double a = w * st.invstd * st.invstd * sum_dy_xhat / m;
  alpha = -a;
  beta = -w * st.invstd * sum_dy / m + a * st.mean;
}

}  // namespace cyclone::kernels::sync_bn
