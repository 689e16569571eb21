#include "cyclone/layers/norm_ops.h"

#include <cmath>
#include "cyclone/core/autograd.h"

#include "cyclone/core/context.h"
#include "cyclone/kernels/batchnorm.h"
#include "cyclone/kernels/elementwise.h"
#include "cyclone/layers/ops.h"

namespace cyclone {

namespace {

// batch_norm, or batch_norm_relu with relu.
Tensor batch_norm_op(const char* op, bool relu, const Tensor& x, const Tensor& running_mean,
                     const Tensor& running_var, const Tensor& weight, const Tensor& bias,
                     bool training, double momentum, double eps) {
  CYCLONE_CHECK(x.defined(), op, ": x is undefined");
  CYCLONE_CHECK(x.rank() >= 2, op, ": needs x of shape [N, C, ...], got ", x.shape());
  const int64_t channels = x.dim(1);
  Context& ctx = Context::of(x);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  // The statistics in x's math dtype: float32 beside bfloat16 activations, like the parameters.
  Tensor save_mean = Tensor::empty({channels}, math_dtype(x.dtype()), x.device());
  Tensor save_invstd = Tensor::empty({channels}, math_dtype(x.dtype()), x.device());
  if (relu)
    kernels::batch_norm_relu_forward(ctx, x, weight, bias, running_mean, running_var, training,
                                     momentum, eps, y, save_mean, save_invstd);
  else
    kernels::batch_norm_forward(ctx, x, weight, bias, running_mean, running_var, training, momentum,
                                eps, y, save_mean, save_invstd);
  return autograd::record(
      y, op, {x, weight, bias},
      [x, weight, bias, save_mean, save_invstd, training, relu](
          const Tensor& g, const Tensor&) -> std::vector<Tensor> {
        Tensor dx, dweight, dbias;
        if (x.requires_grad()) dx = Tensor::empty(x.shape(), x.dtype(), x.device());
        if (weight.defined() && weight.requires_grad())
          dweight = Tensor::empty(weight.shape(), weight.dtype(), weight.device());
        if (bias.defined() && bias.requires_grad())
          dbias = Tensor::empty(bias.shape(), bias.dtype(), bias.device());
        if (relu)
          kernels::batch_norm_relu_backward(Context::of(x), x, g, weight, bias, save_mean,
                                            save_invstd, training, dx, dweight, dbias);
        else
          kernels::batch_norm_backward(Context::of(x), x, g, weight, save_mean, save_invstd,
                                       training, dx, dweight, dbias);
        return {dx, dweight, dbias};
      });
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum,
                  double eps) {
  return batch_norm_op("batch_norm", false, x, running_mean, running_var, weight, bias, training,
                       momentum, eps);
}

Tensor batch_norm_relu(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                       const Tensor& weight, const Tensor& bias, bool training, double momentum,
                       double eps) {
  return batch_norm_op("batch_norm_relu", true, x, running_mean, running_var, weight, bias,
                       training, momentum, eps);
}

namespace {

std::vector<double> host_values(const Tensor& t) {
  if (t.dtype() == DType::kFloat64) return t.to_vector<double>();
  const std::vector<float> v = t.to_vector<float>();
  return {v.begin(), v.end()};
}

Tensor channel_tensor(const std::vector<double>& v, const Tensor& like) {
  const Tensor d = Tensor::from_vector(v, Shape{static_cast<int64_t>(v.size())}, like.device());
  if (like.dtype() == DType::kFloat64) return d;
  Tensor f = Tensor::empty(d.shape(), like.dtype(), like.device());
  kernels::cast(Context::of(like), d, f);
  return f;
}

}  // namespace

Tensor sync_batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                       const Tensor& weight, const Tensor& bias, double momentum, double eps,
                       const ReplicaSum& replica_sum) {
  CYCLONE_CHECK(x.defined() && x.rank() >= 2, "sync_batch_norm: needs x of shape [N, C, ...]");
  CYCLONE_CHECK(replica_sum != nullptr, "sync_batch_norm: no replica sum");
  // 16-bit activations (mixed precision): the synchronized statistics in float32.
  if (is_half(x.dtype()))
    return cast(sync_batch_norm(cast(x, DType::kFloat32), running_mean, running_var, weight, bias,
                                momentum, eps, replica_sum),
                x.dtype());
  const int64_t channels = x.dim(1);
  const auto c = static_cast<size_t>(channels);
  const double m_local = static_cast<double>(kernels::batch_norm_dims(x.shape()).per_channel());
  Context& ctx = Context::of(x);

  // This replica's statistics (the tested two-pass kernel; y_local is discarded).
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor mean_r = Tensor::empty({channels}, x.dtype(), x.device());
  Tensor invstd_r = Tensor::empty({channels}, x.dtype(), x.device());
  const bool has_rows = m_local > 0;
  std::vector<double> sums(2 * c + 1, 0.0);
  if (has_rows) {
    kernels::batch_norm_forward(ctx, x, Tensor(), Tensor(), Tensor(), Tensor(), true, momentum, eps,
                                y, mean_r, invstd_r);
    const std::vector<double> mu = host_values(mean_r), is = host_values(invstd_r);
    for (size_t k = 0; k < c; ++k) {
      const double var = 1.0 / (is[k] * is[k]) - eps;
      sums[k] = m_local * mu[k];
      sums[c + k] = m_local * (var + mu[k] * mu[k]);
    }
    sums[2 * c] = m_local;
  }
  replica_sum(sums);
  const double m = sums[2 * c];
  CYCLONE_CHECK(m > 1,
                "sync_batch_norm: expected more than 1 value per channel over the "
                "replicas, got ",
                m);
  std::vector<double> mean(c), var(c), invstd(c);
  for (size_t k = 0; k < c; ++k) {
    mean[k] = sums[k] / m;
    var[k] = std::max(0.0, sums[c + k] / m - mean[k] * mean[k]);
    invstd[k] = 1.0 / std::sqrt(var[k] + eps);
  }
  const Tensor mean_t = channel_tensor(mean, x), var_t = channel_tensor(var, x),
               invstd_t = channel_tensor(invstd, x);
  // y with the global statistics: the eval-mode kernel normalises with given ones.
  Tensor scratch_mean = Tensor::empty({channels}, x.dtype(), x.device());
  Tensor scratch_invstd = Tensor::empty({channels}, x.dtype(), x.device());
  if (has_rows)
    kernels::batch_norm_forward(ctx, x, weight, bias, mean_t, var_t, false, momentum, eps, y,
                                scratch_mean, scratch_invstd);
  if (running_mean.defined() && running_var.defined()) {
    std::vector<double> rm = host_values(running_mean), rv = host_values(running_var);
    for (size_t k = 0; k < c; ++k) {
      rm[k] = (1 - momentum) * rm[k] + momentum * mean[k];
      rv[k] = (1 - momentum) * rv[k] + momentum * var[k] * m / (m - 1);
    }
    running_mean.copy_from(channel_tensor(rm, running_mean));
    running_var.copy_from(channel_tensor(rv, running_var));
  }

  return autograd::record(
      y, "sync_batch_norm", {x, weight, bias},
      [x, weight, bias, mean, invstd, mean_t, invstd_t, m, eps, replica_sum, has_rows](
          const Tensor& g, const Tensor&) -> std::vector<Tensor> {
        const int64_t ch = x.dim(1);
        const auto cc = static_cast<size_t>(ch);
        Context& cx = Context::of(x);
        // Local sums with the global statistics: the eval-mode backward gives dx_e = dy w invstd,
        // dweight = sum dy xhat, dbias = sum dy.
        Tensor dx_e = Tensor::empty(x.shape(), x.dtype(), x.device());
        Tensor dweight = Tensor::zeros({ch}, x.dtype(), x.device());
        Tensor dbias = Tensor::zeros({ch}, x.dtype(), x.device());
        if (has_rows)
          kernels::batch_norm_backward(cx, x, g, weight, mean_t, invstd_t, false, dx_e, dweight,
                                       dbias);
        std::vector<double> s(2 * cc);
        const std::vector<double> db = host_values(dbias), dw = host_values(dweight);
        for (size_t k = 0; k < cc; ++k) {
          s[k] = db[k];
          s[cc + k] = dw[k];
        }
        replica_sum(s);
        Tensor dx;
        if (x.requires_grad() && has_rows) {
          // dx = dx_e + alpha_c x + beta_c, the affine part computed by the eval-mode forward
          // kernel (mean 0, var 1 - eps: a unit scale).
          const std::vector<double> w =
              weight.defined() ? host_values(weight) : std::vector<double>(cc, 1.0);
          std::vector<double> alpha(cc), beta(cc), zero(cc, 0.0), unit(cc, 1.0 - eps);
          for (size_t k = 0; k < cc; ++k) {
            const double a = w[k] * invstd[k] * invstd[k] * s[cc + k] / m;
            alpha[k] = -a;
            beta[k] = -w[k] * invstd[k] * s[k] / m + a * mean[k];
          }
          Tensor affine = Tensor::empty(x.shape(), x.dtype(), x.device());
          Tensor sm = Tensor::empty({ch}, x.dtype(), x.device());
          Tensor si = Tensor::empty({ch}, x.dtype(), x.device());
          kernels::batch_norm_forward(cx, x, channel_tensor(alpha, x), channel_tensor(beta, x),
                                      channel_tensor(zero, x), channel_tensor(unit, x), false, 0,
                                      eps, affine, sm, si);
          dx = Tensor::empty(x.shape(), x.dtype(), x.device());
          kernels::binary(cx, kernels::BinaryOp::kAdd, dx_e, affine, dx);
        } else if (x.requires_grad()) {
          dx = Tensor::zeros(x.shape(), x.dtype(), x.device());
        }
        return {dx, weight.defined() && weight.requires_grad() ? dweight : Tensor(),
                bias.defined() && bias.requires_grad() ? dbias : Tensor()};
      });
}

}  // namespace cyclone
