#include "cyclone/kernels/pool.h"

#include <climits>
#include <sstream>

#include "cyclone/kernels/cpu/pool.h"
#include "cyclone/kernels/cuda/pool.h"
#include "cyclone/kernels/elementwise.h"
#include "cyclone/kernels/reduce.h"

namespace cyclone::kernels {

namespace {

void check_pair(const char* op, const Tensor& a, const char* an, const Tensor& b, const char* bn) {
  CYCLONE_CHECK(a.dtype() == b.dtype(), op, ": dtypes differ: ", an, " ", dtype_name(a.dtype()),
                ", ", bn, " ", dtype_name(b.dtype()));
  check_same_device(op, a, b);
}

void check_shape(const char* op, const char* what, const Tensor& t, const Shape& expected,
                 const Pool2dGeometry& g) {
  CYCLONE_CHECK(t.shape() == expected, op, ": ", what, " has shape ", t.shape(), ", expected ",
                expected, " (input [", g.n, ", ", g.c, ", ", g.h, ", ", g.w, "], ",
                pool2d_params_str(g.p), ")");
}

Shape y_shape(const Pool2dGeometry& g) { return {g.n, g.c, g.h_out, g.w_out}; }

void check_indices(const char* op, const Tensor& indices, const Tensor& like,
                   const Pool2dGeometry& g) {
  CYCLONE_CHECK(indices.dtype() == DType::kInt32, op, ": indices must be int32, got ",
                dtype_name(indices.dtype()));
  check_same_device(op, like, indices);
  check_shape(op, "indices", indices, y_shape(g), g);
}

}  // namespace

std::string pool2d_params_str(const Pool2dParams& p) {
  std::ostringstream os;
  os << "kernel (" << p.kh << ", " << p.kw << "), stride (" << p.stride_h << ", " << p.stride_w
     << "), padding (" << p.pad_h << ", " << p.pad_w << ")";
  return os.str();
}

Pool2dGeometry pool2d_geometry(const char* op, const Shape& x, const Pool2dParams& p) {
  CYCLONE_CHECK(x.rank() == 4, op, ": needs x [N, C, H, W], got ", x);
  CYCLONE_CHECK(
      p.kh > 0 && p.kw > 0 && p.stride_h > 0 && p.stride_w > 0 && p.pad_h >= 0 && p.pad_w >= 0, op,
      ": invalid parameters ", pool2d_params_str(p),
      " (kernel and stride must be positive, padding non-negative) for x ", x);
  // PyTorch's rule; it also guarantees every window overlaps the input.
  CYCLONE_CHECK(2 * p.pad_h <= p.kh && 2 * p.pad_w <= p.kw, op,
                ": padding must be at most half the kernel, got ", pool2d_params_str(p), " for x ",
                x);
  Pool2dGeometry g;
  g.n = x[0];
  g.c = x[1];
  g.h = x[2];
  g.w = x[3];
  g.p = p;
  // floor((H + 2 pad - k) / stride) + 1, with floor division for a negative numerator.
  auto out = [](int64_t in, int k, int pad, int stride) {
    const int64_t span = in + 2 * int64_t{pad} - k;
    return (span >= 0 ? span / stride : -((-span + stride - 1) / stride)) + 1;
  };
  g.h_out = out(g.h, p.kh, p.pad_h, p.stride_h);
  g.w_out = out(g.w, p.kw, p.pad_w, p.stride_w);
  CYCLONE_CHECK(g.h_out > 0 && g.w_out > 0, op, ": output size ", g.h_out, " x ", g.w_out,
                " is not positive: input ", g.h, " x ", g.w, " (x ", x, ") with ",
                pool2d_params_str(p), "; Hout = floor((H + 2 pad - k) / stride) + 1");
  // Indices are int32 positions within a plane.
  CYCLONE_CHECK(g.h * g.w <= INT_MAX, op, ": a plane of ", g.h, " x ", g.w,
                " elements exceeds the int32 index range (x ", x, ")");
  return g;
}

void max_pool2d_forward(Context& ctx, const Tensor& x, const Pool2dParams& p, const Tensor& y,
                        const Tensor& indices) {
  constexpr const char* op = "max_pool2d_forward";
  check_float(op, x, "x");
  check_pair(op, x, "x", y, "y");
  const Pool2dGeometry g = pool2d_geometry(op, x.shape(), p);
  check_shape(op, "y", y, y_shape(g), g);
  check_indices(op, indices, x, g);
  if (y.numel() == 0) return;
  if (x.device().is_cuda()) return cuda::max_pool2d_forward(ctx, g, x, y, indices);
  cpu::max_pool2d_forward(ctx, g, x, y, indices);
}

void max_pool2d_backward(Context& ctx, const Tensor& dy, const Tensor& indices,
                         const Pool2dParams& p, const Tensor& dx) {
  constexpr const char* op = "max_pool2d_backward";
  check_float(op, dy, "dy");
  check_pair(op, dy, "dy", dx, "dx");
  const Pool2dGeometry g = pool2d_geometry(op, dx.shape(), p);
  check_shape(op, "dy", dy, y_shape(g), g);
  check_indices(op, indices, dy, g);
  if (dx.numel() == 0) return;
  if (dy.device().is_cuda()) return cuda::max_pool2d_backward(ctx, g, dy, indices, dx);
  cpu::max_pool2d_backward(ctx, g, dy, indices, dx);
}

void avg_pool2d_forward(Context& ctx, const Tensor& x, const Pool2dParams& p, const Tensor& y) {
  constexpr const char* op = "avg_pool2d_forward";
  check_float(op, x, "x");
  check_pair(op, x, "x", y, "y");
  const Pool2dGeometry g = pool2d_geometry(op, x.shape(), p);
  check_shape(op, "y", y, y_shape(g), g);
  if (y.numel() == 0) return;
  if (x.device().is_cuda()) return cuda::avg_pool2d_forward(ctx, g, x, y);
  cpu::avg_pool2d_forward(ctx, g, x, y);
}

void avg_pool2d_backward(Context& ctx, const Tensor& dy, const Pool2dParams& p, const Tensor& dx) {
  constexpr const char* op = "avg_pool2d_backward";
  check_float(op, dy, "dy");
  check_pair(op, dy, "dy", dx, "dx");
  const Pool2dGeometry g = pool2d_geometry(op, dx.shape(), p);
  check_shape(op, "dy", dy, y_shape(g), g);
  if (dx.numel() == 0) return;
  if (dy.device().is_cuda()) return cuda::avg_pool2d_backward(ctx, g, dy, dx);
  cpu::avg_pool2d_backward(ctx, g, dy, dx);
}

void global_avg_pool_forward(Context& ctx, const Tensor& x, const Tensor& y) {
  constexpr const char* op = "global_avg_pool_forward";
  check_float(op, x, "x");
  check_pair(op, x, "x", y, "y");
  CYCLONE_CHECK(x.rank() == 4 && x.dim(2) > 0 && x.dim(3) > 0, op,
                ": needs x [N, C, H, W] with H, W >= 1, got ", x.shape());
  CYCLONE_CHECK(y.shape() == Shape({x.dim(0), x.dim(1)}), op, ": y has shape ", y.shape(),
                ", expected [", x.dim(0), ", ", x.dim(1), "] for x ", x.shape());
  if (y.numel() == 0) return;
  // detach() keeps the view out of autograd. The mean over the last axis of [N, C, H*W]: the
  // reductions' careful sums, on either device.
  reduce_axis(ctx, ReduceOp::kMean, x.detach().reshape({x.dim(0), x.dim(1), x.dim(2) * x.dim(3)}),
              2, y);
}

void global_avg_pool_backward(Context& ctx, const Tensor& dy, const Tensor& dx) {
  constexpr const char* op = "global_avg_pool_backward";
  check_float(op, dy, "dy");
  check_pair(op, dy, "dy", dx, "dx");
  CYCLONE_CHECK(dx.rank() == 4 && dx.dim(2) > 0 && dx.dim(3) > 0, op,
                ": needs dx [N, C, H, W] with H, W >= 1, got ", dx.shape());
  CYCLONE_CHECK(dy.shape() == Shape({dx.dim(0), dx.dim(1)}), op, ": dy has shape ", dy.shape(),
                ", expected [", dx.dim(0), ", ", dx.dim(1), "] for dx ", dx.shape());
  if (dx.numel() == 0) return;
  const int64_t hw = dx.dim(2) * dx.dim(3);
  // detach(): a plain view, no autograd node for the kernel's internal reshape.
  const Tensor d3 = dx.detach().reshape({dx.dim(0), dx.dim(1), hw});
  broadcast_axis(ctx, dy, 2, d3);
  unary(ctx, UnaryOp::kMulScalar, d3, d3, 1.0 / static_cast<double>(hw));
}

}  // namespace cyclone::kernels
