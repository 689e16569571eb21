#include "cyclone/layers/norm_ops.h"

#include "cyclone/core/autograd.h"
#include "cyclone/core/context.h"
#include "cyclone/kernels/batchnorm.h"

namespace cyclone {

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum,
                  double eps) {
  CYCLONE_CHECK(x.defined(), "batch_norm: x is undefined");
  CYCLONE_CHECK(x.rank() >= 2, "batch_norm: needs x of shape [N, C, ...], got ", x.shape());
  const int64_t channels = x.dim(1);
  Context& ctx = Context::of(x);
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor save_mean = Tensor::empty({channels}, x.dtype(), x.device());
  Tensor save_invstd = Tensor::empty({channels}, x.dtype(), x.device());
  kernels::batch_norm_forward(ctx, x, weight, bias, running_mean, running_var, training, momentum,
                              eps, y, save_mean, save_invstd);
  return autograd::record(y, "batch_norm", {x, weight, bias},
                          [x, weight, bias, save_mean, save_invstd, training](
                              const Tensor& g, const Tensor&) -> std::vector<Tensor> {
                            Tensor dx, dweight, dbias;
                            if (x.requires_grad())
                              dx = Tensor::empty(x.shape(), x.dtype(), x.device());
                            if (weight.defined() && weight.requires_grad())
                              dweight =
                                  Tensor::empty(weight.shape(), weight.dtype(), weight.device());
                            if (bias.defined() && bias.requires_grad())
                              dbias = Tensor::empty(bias.shape(), bias.dtype(), bias.device());
                            kernels::batch_norm_backward(Context::of(x), x, g, weight, save_mean,
                                                         save_invstd, training, dx, dweight, dbias);
                            return {dx, dweight, dbias};
                          });
}

}  // namespace cyclone
