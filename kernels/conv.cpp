#include "cyclone/kernels/conv.h"

#include <climits>
#include <sstream>

#include "cyclone/kernels/cpu/conv.h"
#include "cyclone/kernels/cuda/conv.h"
#include "cyclone/kernels/elementwise.h"
#include "cyclone/kernels/flops.h"
#include "cyclone/kernels/transpose.h"

namespace cyclone::kernels {

namespace {

// dtype and device of every operand against the first.
void check_operands(const char* op,
                    std::initializer_list<std::pair<const char*, const Tensor*>> ts) {
  const Tensor& first = *ts.begin()->second;
  check_floating(op, first, ts.begin()->first);
  for (const auto& [name, t] : ts) {
    CYCLONE_CHECK(t->dtype() == first.dtype(), op, ": dtypes differ: ", ts.begin()->first, " ",
                  dtype_name(first.dtype()), ", ", name, " ", dtype_name(t->dtype()));
    check_same_device(op, first, *t);
  }
}

void check_shape(const char* op, const char* what, const Tensor& t, const Shape& expected,
                 const Conv2dGeometry& g) {
  CYCLONE_CHECK(t.shape() == expected, op, ": ", what, " has shape ", t.shape(), ", expected ",
                expected, " (x ", g.x_shape(), ", weight ", g.weight_shape(), ", ",
                conv2d_params_str(g.p), ")");
}

Shape y_shape(const Conv2dGeometry& g) { return g.y_shape(); }

// bfloat16 / float16 on the CPU: run(out32) computes into a float32 buffer from widened operands;
// the result is rounded into out once.
template <class Run>
void cpu_via_float32(Context& ctx, const Tensor& out, Run&& run) {
  const Tensor out32 = Tensor::empty(out.shape(), DType::kFloat32, out.device());
  run(out32);
  cast(ctx, out32, out);
}

// Channels last where no native NHWC kernel exists (the CPU; cuDNN for float64): the NCHW
// problem, operands transposed in and the result out (kernels/transpose.h, on x's device). The
// temporaries are ctx's (Tensor::empty(..., ctx)): freed here, they must not be handed out on
// another stream while ctx's kernels still use them.
Conv2dGeometry nchw(const Conv2dGeometry& g) {
  Conv2dGeometry n = g;
  n.p.channels_last = false;
  return n;
}
bool via_nchw(const Conv2dGeometry& g, const Tensor& t) {
  return g.p.channels_last && (!t.device().is_cuda() || t.dtype() == DType::kFloat64);
}

void run_forward(Context& ctx, const Conv2dGeometry& g, const Tensor& x, const Tensor& weight,
                 const Tensor& bias, const Tensor& y) {
  if (via_nchw(g, x)) {
    const Tensor yn = Tensor::empty(nchw(g).y_shape(), y.dtype(), ctx);
    run_forward(ctx, nchw(g), to_channels_first(ctx, x), to_channels_first(ctx, weight), bias, yn);
    return batched_transpose(ctx, yn, g.n, g.c_out, g.h_out * g.w_out, y);
  }
  if (x.device().is_cuda()) return cuda::conv2d_forward(ctx, g, x, weight, bias, y);
  if (is_half(x.dtype()))
    return cpu_via_float32(ctx, y, [&](const Tensor& yf) {
      cpu::conv2d_forward(ctx, g, to_float32(ctx, x), to_float32(ctx, weight), bias, yf);
    });
  cpu::conv2d_forward(ctx, g, x, weight, bias, y);
}

void run_backward_data(Context& ctx, const Conv2dGeometry& g, const Tensor& dy,
                       const Tensor& weight, const Tensor& dx) {
  if (via_nchw(g, dy)) {
    const Tensor dxn = Tensor::empty(nchw(g).x_shape(), dx.dtype(), ctx);
    run_backward_data(ctx, nchw(g), to_channels_first(ctx, dy), to_channels_first(ctx, weight),
                      dxn);
    return batched_transpose(ctx, dxn, g.n, g.c_in, g.h * g.w, dx);
  }
  if (dy.device().is_cuda()) return cuda::conv2d_backward_data(ctx, g, dy, weight, dx);
  if (is_half(dy.dtype()))
    return cpu_via_float32(ctx, dx, [&](const Tensor& dxf) {
      cpu::conv2d_backward_data(ctx, g, to_float32(ctx, dy), to_float32(ctx, weight), dxf);
    });
  cpu::conv2d_backward_data(ctx, g, dy, weight, dx);
}

void run_backward_filter(Context& ctx, const Conv2dGeometry& g, const Tensor& x, const Tensor& dy,
                         const Tensor& dw) {
  if (via_nchw(g, x)) {
    const Tensor dwn = Tensor::empty(nchw(g).weight_shape(), dw.dtype(), ctx);
    run_backward_filter(ctx, nchw(g), to_channels_first(ctx, x), to_channels_first(ctx, dy), dwn);
    return batched_transpose(ctx, dwn, g.c_out, g.c_in, g.kh * g.kw, dw);
  }
  if (x.device().is_cuda()) return cuda::conv2d_backward_filter(ctx, g, x, dy, dw);
  if (is_half(x.dtype()))
    return cpu_via_float32(ctx, dw, [&](const Tensor& dwf) {
      cpu::conv2d_backward_filter(ctx, g, to_float32(ctx, x), to_float32(ctx, dy), dwf);
    });
  cpu::conv2d_backward_filter(ctx, g, x, dy, dw);
}

}  // namespace

Shape Conv2dGeometry::x_shape() const {
  return p.channels_last ? Shape{n, h, w, c_in} : Shape{n, c_in, h, w};
}
Shape Conv2dGeometry::weight_shape() const {
  return p.channels_last ? Shape{c_out, kh, kw, c_in} : Shape{c_out, c_in, kh, kw};
}
Shape Conv2dGeometry::y_shape() const {
  return p.channels_last ? Shape{n, h_out, w_out, c_out} : Shape{n, c_out, h_out, w_out};
}

std::string conv2d_params_str(const Conv2dParams& p) {
  std::ostringstream os;
  os << "stride (" << p.stride_h << ", " << p.stride_w << "), padding (" << p.pad_h << ", "
     << p.pad_w << "), dilation (" << p.dil_h << ", " << p.dil_w << ")";
  if (p.channels_last) os << ", channels last";
  return os.str();
}

int64_t conv_out_size(int64_t in, int64_t k, int pad, int stride, int dil) {
  const int64_t span = in + 2 * int64_t{pad} - int64_t{dil} * (k - 1) - 1;
  // Floor division (span may be negative: then there is no valid output position).
  const int64_t q = span >= 0 ? span / stride : -((-span + stride - 1) / stride);
  return q + 1;
}

Conv2dGeometry conv2d_geometry(const char* op, const Shape& x, const Shape& weight,
                               const Conv2dParams& p) {
  const bool cl = p.channels_last;
  CYCLONE_CHECK(x.rank() == 4 && weight.rank() == 4, op, ": needs x ",
                cl ? "[N, H, W, Cin]" : "[N, Cin, H, W]", " and weight ",
                cl ? "[Cout, kh, kw, Cin]" : "[Cout, Cin, kh, kw]", ", got x ", x, " and weight ",
                weight);
  // Channels last: the sizes in NCHW order, then the same checks.
  const int ci = cl ? 3 : 1, hi = cl ? 1 : 2, wi = cl ? 2 : 3;
  CYCLONE_CHECK(p.stride_h > 0 && p.stride_w > 0 && p.pad_h >= 0 && p.pad_w >= 0 && p.dil_h > 0 &&
                    p.dil_w > 0,
                op, ": invalid parameters ", conv2d_params_str(p),
                " (stride and dilation must be positive, padding non-negative) for x ", x,
                " and weight ", weight);
  CYCLONE_CHECK(x[ci] == weight[ci], op, ": x has ", x[ci], " channels but weight expects ",
                weight[ci], " (x ", x, ", weight ", weight, "; weight is ",
                cl ? "[Cout, kh, kw, Cin]" : "[Cout, Cin, kh, kw]", ")");
  CYCLONE_CHECK(weight[0] > 0 && weight[1] > 0 && weight[2] > 0 && weight[3] > 0, op,
                ": weight must have Cout, Cin, kh, kw >= 1, got ", weight, " (x ", x, ")");
  Conv2dGeometry g;
  g.n = x[0];
  g.c_in = x[ci];
  g.h = x[hi];
  g.w = x[wi];
  g.c_out = weight[0];
  g.kh = weight[hi];
  g.kw = weight[wi];
  g.p = p;
  g.h_out = conv_out_size(g.h, g.kh, p.pad_h, p.stride_h, p.dil_h);
  g.w_out = conv_out_size(g.w, g.kw, p.pad_w, p.stride_w, p.dil_w);
  CYCLONE_CHECK(g.h_out > 0 && g.w_out > 0, op, ": output size ", g.h_out, " x ", g.w_out,
                " is not positive: input ", g.h, " x ", g.w, " (x ", x, ") with kernel ", g.kh,
                " x ", g.kw, " (weight ", weight, "), ", conv2d_params_str(p),
                "; Hout = floor((H + 2 pad - dil (k - 1) - 1) / stride) + 1");
  // cuDNN descriptors and BLAS take int sizes.
  for (int64_t d : {g.n, g.c_in, g.h, g.w, g.c_out, g.kh * g.kw * g.c_in, g.h_out * g.w_out})
    CYCLONE_CHECK(d <= INT_MAX, op, ": size ", d, " exceeds the int limit (x ", x, ", weight ",
                  weight, ")");
  return g;
}

void conv2d_forward(Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& bias,
                    const Conv2dParams& p, const Tensor& y) {
  constexpr const char* op = "conv2d_forward";
  check_operands(op, {{"x", &x}, {"weight", &weight}, {"y", &y}});
  const Conv2dGeometry g = conv2d_geometry(op, x.shape(), weight.shape(), p);
  check_shape(op, "y", y, y_shape(g), g);
  if (bias.defined()) {
    check_operands(op, {{"x", &x}, {"bias", &bias}});
    check_shape(op, "bias", bias, Shape{g.c_out}, g);
    CYCLONE_CHECK(!is_half(x.dtype()), op, ": no bias with ", dtype_name(x.dtype()),
                  " data; add it to the result (layers/conv_ops.h does)");
  }
  if (y.numel() == 0) return;
  count_flops(g.flops());
  run_forward(ctx, g, x, weight, bias, y);
}

void conv2d_backward_data(Context& ctx, const Tensor& dy, const Tensor& weight,
                          const Conv2dParams& p, const Tensor& dx) {
  constexpr const char* op = "conv2d_backward_data";
  check_operands(op, {{"dy", &dy}, {"weight", &weight}, {"dx", &dx}});
  const Conv2dGeometry g = conv2d_geometry(op, dx.shape(), weight.shape(), p);
  check_shape(op, "dy", dy, y_shape(g), g);
  if (dx.numel() == 0) return;
  count_flops(g.flops());
  run_backward_data(ctx, g, dy, weight, dx);
}

void conv2d_backward_filter(Context& ctx, const Tensor& x, const Tensor& dy, const Conv2dParams& p,
                            const Tensor& dw) {
  constexpr const char* op = "conv2d_backward_filter";
  check_operands(op, {{"x", &x}, {"dy", &dy}, {"dw", &dw}});
  const Conv2dGeometry g = conv2d_geometry(op, x.shape(), dw.shape(), p);
  check_shape(op, "dy", dy, y_shape(g), g);
  if (dw.numel() == 0) return;
  // An empty batch contributes nothing: dw = 0 (written, since outputs are never read), on ctx's
  // stream like the rest of the op (Tensor::zero_ would use the current context's).
  if (g.n == 0) return fill(ctx, dw, 0.0);
  count_flops(g.flops());
  run_backward_filter(ctx, g, x, dy, dw);
}

}  // namespace cyclone::kernels
