#include "cyclone/layers/norm_ops.h"

#include <cmath>
#include "cyclone/core/autograd.h"

#include "cyclone/core/context.h"
#include "cyclone/kernels/batchnorm.h"
#include "cyclone/kernels/elementwise.h"
#include "cyclone/kernels/sync_batchnorm.h"
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
  const double m_local = static_cast<double>(kernels::batch_norm_dims(x.shape()).per_channel());
  Context& ctx = Context::of(x);
  auto channel = [&] { return Tensor::empty({channels}, x.dtype(), x.device()); };

  // This replica's statistics (the tested two-pass kernel, without its normalisation pass), as
  // the sums to add over the replicas: [M mean, M E[x^2], M], float64 on x's device.
  const Tensor sums = Tensor::zeros({2 * channels + 1}, DType::kFloat64, x.device());
  const bool has_rows = m_local > 0;
  if (m_local == 1) {  // one value per channel (batch_norm refuses it): that value, variance 0
    const Tensor invstd_r = channel();
    kernels::fill(ctx, invstd_r, 1 / std::sqrt(eps));
    kernels::sync_batch_norm_pack(ctx, x.detach().reshape({channels}), invstd_r, eps, 1, sums);
  } else if (has_rows) {
    const Tensor mean_r = channel(), invstd_r = channel();
    kernels::batch_norm_forward(ctx, x, Tensor(), Tensor(), Tensor(), Tensor(), true, momentum, eps,
                                Tensor(), mean_r, invstd_r);
    kernels::sync_batch_norm_pack(ctx, mean_r, invstd_r, eps, m_local, sums);
  }
  replica_sum(sums);
  // The global count is read only where this replica's own cannot show it is > 1.
  if (m_local <= 1) {
    const double m = sums.slice(2 * channels, 2 * channels + 1).item();
    CYCLONE_CHECK(m > 1,
                  "sync_batch_norm: expected more than 1 value per channel over the "
                  "replicas, got ",
                  m);
  }
  const Tensor mean_t = channel(), var_t = channel(), invstd_t = channel();
  kernels::sync_batch_norm_stats(ctx, sums, eps, momentum, mean_t, var_t, invstd_t, running_mean,
                                 running_var);
  // y with the global statistics: the eval-mode kernel normalises with given ones.
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (has_rows) {
    const Tensor scratch_mean = channel(), scratch_invstd = channel();
    kernels::batch_norm_forward(ctx, x, weight, bias, mean_t, var_t, false, momentum, eps, y,
                                scratch_mean, scratch_invstd);
  }

  return autograd::record(
      y, "sync_batch_norm", {x, weight, bias},
      [x, weight, bias, sums, mean_t, invstd_t, eps, replica_sum, has_rows](
          const Tensor& g, const Tensor&) -> std::vector<Tensor> {
        const int64_t ch = x.dim(1);
        Context& cx = Context::of(x);
        // Local sums with the global statistics: the eval-mode backward gives dx_e = dy w invstd,
        // dweight = sum dy xhat, dbias = sum dy.
        Tensor dx_e = Tensor::empty(x.shape(), x.dtype(), x.device());
        Tensor dweight = Tensor::zeros({ch}, x.dtype(), x.device());
        Tensor dbias = Tensor::zeros({ch}, x.dtype(), x.device());
        if (has_rows)
          kernels::batch_norm_backward(cx, x, g, weight, mean_t, invstd_t, false, dx_e, dweight,
                                       dbias);
        // [sum dy, sum dy xhat] over every replica, float64 on the device.
        const Tensor grads = Tensor::empty({2 * ch}, DType::kFloat64, x.device());
        kernels::cast(cx, dbias, grads.slice(0, ch));
        kernels::cast(cx, dweight, grads.slice(ch, 2 * ch));
        replica_sum(grads);
        Tensor dx;
        if (x.requires_grad() && has_rows) {
          // dx = dx_e + alpha_c x + beta_c, the affine part computed by the eval-mode forward
          // kernel (mean 0, var 1 - eps: a unit scale).
          auto per_channel = [&] { return Tensor::empty({ch}, x.dtype(), x.device()); };
          const Tensor alpha = per_channel(), beta = per_channel(), zero = per_channel(),
                       unit = per_channel();
          kernels::sync_batch_norm_dx_affine(cx, sums, grads, weight, eps, alpha, beta);
          kernels::fill(cx, zero, 0.0);
          kernels::fill(cx, unit, 1.0 - eps);
          Tensor affine = Tensor::empty(x.shape(), x.dtype(), x.device());
          const Tensor sm = per_channel(), si = per_channel();
          kernels::batch_norm_forward(cx, x, alpha, beta, zero, unit, false, 0, eps, affine, sm,
                                      si);
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
