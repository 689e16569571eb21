#include "cyclone/kernels/batchnorm.h"

#include <cmath>

#include "cyclone/kernels/cpu/batchnorm.h"
#include "cyclone/kernels/cuda/batchnorm.h"

namespace cyclone::kernels {

namespace {

void check_x(const char* op, const Tensor& x) {
  CYCLONE_CHECK(x.defined(), op, ": x is undefined");
  check_floating(op, x, "x");
  CYCLONE_CHECK(x.rank() >= 2, op, ": needs x of shape [N, C, ...], got ", x.shape());
}

// A per-channel tensor: [C] (any shape of C elements is accepted, e.g. [1, C, 1, 1]) of x's math
// dtype (x's own; float32 for bfloat16 x) on x's device. Undefined passes when `optional`.
void check_channel(const char* op, const char* name, const Tensor& t, const Tensor& x,
                   bool optional) {
  if (!t.defined()) {
    CYCLONE_CHECK(optional, op, ": ", name, " is undefined");
    return;
  }
  CYCLONE_CHECK(t.numel() == x.dim(1), op, ": ", name, " must have one element per channel (",
                x.dim(1), "), got ", t.shape(), " for x ", x.shape());
  const DType want = math_dtype(x.dtype());
  CYCLONE_CHECK(t.dtype() == want, op, ": ", name, " must be ", dtype_name(want), " for ",
                dtype_name(x.dtype()), " x, got ", dtype_name(t.dtype()));
  check_same_device(op, x, t);
}

}  // namespace

BatchNormDims batch_norm_dims(const Shape& x) {
  BatchNormDims d;
  d.n = x[0];
  d.c = x[1];
  d.inner = x.prod(2, x.rank());
  return d;
}

namespace {

void forward(const char* op, bool relu, Context& ctx, const Tensor& x, const Tensor& weight,
             const Tensor& bias, const Tensor& running_mean, const Tensor& running_var,
             bool training, double momentum, double eps, const Tensor& y, const Tensor& save_mean,
             const Tensor& save_invstd) {
  check_x(op, x);
  CYCLONE_CHECK(y.defined() || (training && !relu), op,
                ": y is undefined (only training-mode batch_norm_forward may leave it out, for "
                "the statistics alone)");
  if (y.defined()) {
    check_same_shape(op, x, y);
    check_same_dtype(op, x, y);
    check_same_device(op, x, y);
  }
  check_channel(op, "weight", weight, x, true);
  check_channel(op, "bias", bias, x, true);
  check_channel(op, "running_mean", running_mean, x, training);
  check_channel(op, "running_var", running_var, x, training);
  check_channel(op, "save_mean", save_mean, x, false);
  check_channel(op, "save_invstd", save_invstd, x, false);
  CYCLONE_CHECK(running_mean.defined() == running_var.defined(), op,
                ": running_mean and running_var must both be given or both be undefined");
  CYCLONE_CHECK(std::isfinite(eps) && eps >= 0, op, ": eps must be finite and >= 0, got ", eps);
  CYCLONE_CHECK(std::isfinite(momentum) && momentum >= 0 && momentum <= 1, op,
                ": momentum must be in [0, 1], got ", momentum);
  const BatchNormDims d = batch_norm_dims(x.shape());
  if (training)
    CYCLONE_CHECK(d.per_channel() > 1, op,
                  ": expected more than 1 value per channel when training, got x ", x.shape());
  if (d.c == 0) return;
  if (x.device().is_cuda())
    return cuda::batch_norm_forward(ctx, x, weight, bias, running_mean, running_var, training,
                                    momentum, eps, y, save_mean, save_invstd, relu);
  cpu::batch_norm_forward(ctx, x, weight, bias, running_mean, running_var, training, momentum, eps,
                          y, save_mean, save_invstd, relu);
}

void backward(const char* op, bool relu, Context& ctx, const Tensor& x, const Tensor& dy,
              const Tensor& weight, const Tensor& bias, const Tensor& save_mean,
              const Tensor& save_invstd, bool training, const Tensor& dx, const Tensor& dweight,
              const Tensor& dbias) {
  check_x(op, x);
  CYCLONE_CHECK(dy.defined(), op, ": dy is undefined");
  check_same_shape(op, x, dy);
  check_same_dtype(op, x, dy);
  check_same_device(op, x, dy);
  if (dx.defined()) {
    check_same_shape(op, x, dx);
    check_same_dtype(op, x, dx);
    check_same_device(op, x, dx);
  }
  check_channel(op, "weight", weight, x, true);
  if (relu) check_channel(op, "bias", bias, x, true);
  check_channel(op, "save_mean", save_mean, x, false);
  check_channel(op, "save_invstd", save_invstd, x, false);
  check_channel(op, "dweight", dweight, x, true);
  check_channel(op, "dbias", dbias, x, true);
  const BatchNormDims d = batch_norm_dims(x.shape());
  if (d.c == 0 || (!dx.defined() && !dweight.defined() && !dbias.defined())) return;
  if (x.device().is_cuda())
    return cuda::batch_norm_backward(ctx, x, dy, weight, bias, save_mean, save_invstd, training, dx,
                                     dweight, dbias, relu);
  cpu::batch_norm_backward(ctx, x, dy, weight, bias, save_mean, save_invstd, training, dx, dweight,
                           dbias, relu);
}

}  // namespace

void batch_norm_forward(Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& bias,
                        const Tensor& running_mean, const Tensor& running_var, bool training,
                        double momentum, double eps, const Tensor& y, const Tensor& save_mean,
                        const Tensor& save_invstd) {
  forward("batch_norm", false, ctx, x, weight, bias, running_mean, running_var, training, momentum,
          eps, y, save_mean, save_invstd);
}

void batch_norm_relu_forward(Context& ctx, const Tensor& x, const Tensor& weight,
                             const Tensor& bias, const Tensor& running_mean,
                             const Tensor& running_var, bool training, double momentum, double eps,
                             const Tensor& y, const Tensor& save_mean, const Tensor& save_invstd) {
  forward("batch_norm_relu", true, ctx, x, weight, bias, running_mean, running_var, training,
          momentum, eps, y, save_mean, save_invstd);
}

void batch_norm_backward(Context& ctx, const Tensor& x, const Tensor& dy, const Tensor& weight,
                         const Tensor& save_mean, const Tensor& save_invstd, bool training,
                         const Tensor& dx, const Tensor& dweight, const Tensor& dbias) {
  backward("batch_norm_backward", false, ctx, x, dy, weight, Tensor(), save_mean, save_invstd,
           training, dx, dweight, dbias);
}

void batch_norm_relu_backward(Context& ctx, const Tensor& x, const Tensor& dy, const Tensor& weight,
                              const Tensor& bias, const Tensor& save_mean,
                              const Tensor& save_invstd, bool training, const Tensor& dx,
                              const Tensor& dweight, const Tensor& dbias) {
  backward("batch_norm_relu_backward", true, ctx, x, dy, weight, bias, save_mean, save_invstd,
           training, dx, dweight, dbias);
}

}  // namespace cyclone::kernels
