#include "cyclone/layers/conv_ops.h"

#include "cyclone/core/autograd.h"
#include "cyclone/core/context.h"
#include "cyclone/kernels/reduce.h"
#include "cyclone/layers/autocast.h"
#include "cyclone/layers/ops.h"

namespace cyclone {

namespace {

void check_defined(const char* op, const Tensor& x) {
  CYCLONE_CHECK(x.defined(), op, ": undefined input");
}

Tensor conv2d_in_dtype(const Tensor& x, const Tensor& weight, const Tensor& bias,
                       const Conv2dParams& params) {
  // Validates the shapes first, so the output is only allocated for a valid problem.
  const kernels::Conv2dGeometry g =
      kernels::conv2d_geometry("conv2d", x.shape(), weight.shape(), params);
  Tensor y = Tensor::empty(g.y_shape(), x.dtype(), x.device());
  kernels::conv2d_forward(Context::of(x), x, weight, bias, params, y);
  std::vector<Tensor> inputs{x, weight};
  if (bias.defined()) inputs.push_back(bias);
  return autograd::record(
      y, "conv2d", std::move(inputs),
      [x, weight, bias, params](const Tensor& gy, const Tensor&) -> std::vector<Tensor> {
        Context& ctx = Context::of(gy);
        Tensor gx, gw, gb;
        if (x.requires_grad()) {
          gx = Tensor::empty(x.shape(), gy.dtype(), gy.device());
          kernels::conv2d_backward_data(ctx, gy, weight, params, gx);
        }
        if (weight.requires_grad()) {
          gw = Tensor::empty(weight.shape(), gy.dtype(), gy.device());
          kernels::conv2d_backward_filter(ctx, x, gy, params, gw);
        }
        if (bias.defined() && bias.requires_grad()) {
          gb = Tensor::empty(bias.shape(), gy.dtype(), gy.device());
          // Channels last: the channel is the last axis, so sum the [N Hout Wout, Cout] view.
          kernels::reduce_channels(ctx, kernels::ReduceOp::kSum,
                                   params.channels_last ? gy.detach().reshape({-1, gy.dim(3)}) : gy,
                                   gb);
        }
        std::vector<Tensor> grads{gx, gw};
        if (bias.defined()) grads.push_back(gb);
        return grads;
      });
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
              const Conv2dParams& params) {
  CYCLONE_CHECK(x.defined() && weight.defined(), "conv2d: undefined x or weight");
  const bool autocast = autocast_applies(x, weight);
  // 16-bit data (under autocast, or a model cast to it) leaves the bias to an add afterwards: the
  // kernels take no 16-bit bias (kernels/conv.h).
  if (!autocast && !(bias.defined() && is_half(x.dtype())))
    return conv2d_in_dtype(x, weight, bias, params);
  // Mixed precision (layers/autocast.h): operands, product and result in the 16-bit dtype.
  const DType low = autocast ? autocast_dtype() : x.dtype();
  CYCLONE_CHECK(autocast || bias.dtype() == low, "conv2d: bias is ", dtype_name(bias.dtype()),
                " beside ", dtype_name(low), " data (cast it, or run under autocast)");
  const Tensor y = autocast ? conv2d_in_dtype(cast(x, low), cast(weight, low), Tensor(), params)
                            : conv2d_in_dtype(x, weight, Tensor(), params);
  if (!bias.defined()) return y;
  // A [C] operand broadcasts along dim 1: channels last adds it to the [N Hout Wout, Cout] view.
  if (!params.channels_last) return add(y, cast(bias, low));
  return add(y.reshape({-1, y.dim(3)}), cast(bias, low)).reshape(y.shape());
}

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int stride, int padding,
              int dilation) {
  return conv2d(x, weight, bias, Conv2dParams::square(stride, padding, dilation));
}

Tensor max_pool2d(const Tensor& x, const Pool2dParams& params) {
  check_defined("max_pool2d", x);
  if (is_half(x.dtype()))
    return via_float32(x, [&](const Tensor& f) { return max_pool2d(f, params); });
  const kernels::Pool2dGeometry g = kernels::pool2d_geometry("max_pool2d", x.shape(), params);
  const Shape out{g.n, g.c, g.h_out, g.w_out};
  Tensor y = Tensor::empty(out, x.dtype(), x.device());
  // The argmax of every window, saved for the backward (int32: 4 bytes per output).
  const Tensor indices = Tensor::empty(out, DType::kInt32, x.device());
  kernels::max_pool2d_forward(Context::of(x), x, params, y, indices);
  const Shape in = x.shape();
  return autograd::record(
      y, "max_pool2d", {x},
      [indices, params, in](const Tensor& gy, const Tensor&) -> std::vector<Tensor> {
        Tensor gx = Tensor::empty(in, gy.dtype(), gy.device());
        kernels::max_pool2d_backward(Context::of(gy), gy, indices, params, gx);
        return {gx};
      });
}

Tensor max_pool2d(const Tensor& x, int kernel, int stride, int padding) {
  return max_pool2d(x, Pool2dParams::square(kernel, stride, padding));
}

Tensor avg_pool2d(const Tensor& x, const Pool2dParams& params) {
  check_defined("avg_pool2d", x);
  if (is_half(x.dtype()))
    return via_float32(x, [&](const Tensor& f) { return avg_pool2d(f, params); });
  const kernels::Pool2dGeometry g = kernels::pool2d_geometry("avg_pool2d", x.shape(), params);
  Tensor y = Tensor::empty({g.n, g.c, g.h_out, g.w_out}, x.dtype(), x.device());
  kernels::avg_pool2d_forward(Context::of(x), x, params, y);
  const Shape in = x.shape();
  return autograd::record(y, "avg_pool2d", {x},
                          [params, in](const Tensor& gy, const Tensor&) -> std::vector<Tensor> {
                            Tensor gx = Tensor::empty(in, gy.dtype(), gy.device());
                            kernels::avg_pool2d_backward(Context::of(gy), gy, params, gx);
                            return {gx};
                          });
}

Tensor avg_pool2d(const Tensor& x, int kernel, int stride, int padding) {
  return avg_pool2d(x, Pool2dParams::square(kernel, stride, padding));
}

Tensor global_avg_pool(const Tensor& x) {
  check_defined("global_avg_pool", x);
  if (is_half(x.dtype())) return via_float32(x, [](const Tensor& f) { return global_avg_pool(f); });
  CYCLONE_CHECK(x.rank() == 4, "global_avg_pool: needs x [N, C, H, W], got ", x.shape());
  Tensor y = Tensor::empty({x.dim(0), x.dim(1)}, x.dtype(), x.device());
  kernels::global_avg_pool_forward(Context::of(x), x, y);
  const Shape in = x.shape();
  return autograd::record(y, "global_avg_pool", {x},
                          [in](const Tensor& gy, const Tensor&) -> std::vector<Tensor> {
                            Tensor gx = Tensor::empty(in, gy.dtype(), gy.device());
                            kernels::global_avg_pool_backward(Context::of(gy), gy, gx);
                            return {gx};
                          });
}

}  // namespace cyclone
