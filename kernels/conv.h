// 2-D convolution (cross-correlation, as torch.nn.functional.conv2d with groups = 1), NCHW.
// cuDNN on the GPU, im2col + OpenBLAS GEMM on the CPU. No autograd (layers/conv_ops.h adds it).
//
// x [N, Cin, H, W], weight [Cout, Cin, kh, kw] (PyTorch's layout), bias [Cout] or undefined,
// y [N, Cout, Hout, Wout] with
//   Hout = floor((H + 2 pad_h - dil_h (kh - 1) - 1) / stride_h) + 1   (Wout likewise)
//   y[n, co, oh, ow] = bias[co] + sum_{ci, i, j} w[co, ci, i, j] *
//                      x[n, ci, oh stride_h - pad_h + i dil_h, ow stride_w - pad_w + j dil_w]
//   (x is zero outside [0, H) x [0, W): zero padding).
// conv2d_forward:         y from x, w (and bias).
// conv2d_backward_data:   dx[n, ci, h, w] = sum over (co, i, j, oh, ow) that read x[n, ci, h, w] of
//                         w[co, ci, i, j] dy[n, co, oh, ow]   (the transposed convolution).
// conv2d_backward_filter: dw[co, ci, i, j] = sum_{n, oh, ow} dy[n, co, oh, ow] x[n, ci, ih, iw].
// The bias gradient is reduce_channels(sum) of dy (kernels/reduce.h).
//   cost: each of the three is 2 N Cout Hout Wout Cin kh kw flops; bytes at least
//   (|x| + |w| + |y|) sizeof(T).
// Channels last (Conv2dParams::channels_last): x [N, H, W, Cin], weight [Cout, kh, kw, Cin], y
// [N, Hout, Wout, Cout] (and dx, dw, dy likewise): the same convolution on NHWC memory, the layout
// of the GPU's tensor-core kernels (cuDNN then needs no internal transposes). The CPU, and cuDNN
// for float64, transpose to NCHW and back (kernels/transpose.h): correct, not fast.
// Outputs are written, never read (NaN or garbage in them does not leak); float32, float64,
// bfloat16 or float16, all tensors of one dtype, contiguous and on one device. The 16-bit types
// take no bias (the layer adds it to the result) and are computed in float32: cuDNN's tensor cores
// with float accumulation on the GPU; on the CPU operands widened to float32, the result rounded
// once.
//
// Precision: float32 is fp32-accurate by default on both devices. With ctx.allow_tf32() the GPU may
// use TF32 tensor cores (10-bit mantissa inputs, fp32 accumulation: relative error ~1e-3 for long
// sums). cuDNN's CUDNN_DEFAULT_MATH already *permits* TF32 for float data on Ampere and newer, so
// the fp32 path must ask for CUDNN_FMA_MATH explicitly (as PyTorch does when
// torch.backends.cudnn.allow_tf32 is false); see kernels/cuda/conv.cpp.
//
// Algorithms (GPU): chosen per problem (shapes, stride, padding, dilation, dtype, math mode) by
// timing them once (cudnnFind*AlgorithmEx), preferring deterministic ones, and cached for the
// process; during CUDA-graph capture, where timing is impossible, cuDNN's heuristics choose.
// CPU: deterministic (fixed chunking, fixed summation order), independent of the thread count.
#pragma once

#include <cstdint>
#include <string>

#include "cyclone/core/context.h"
#include "cyclone/core/tensor.h"

namespace cyclone::kernels {

// Stride, zero padding and dilation per spatial dimension (h, w), all defaulting to PyTorch's.
struct Conv2dParams {
  int stride_h = 1, stride_w = 1;
  int pad_h = 0, pad_w = 0;
  int dil_h = 1, dil_w = 1;
  bool channels_last = false;  // NHWC operands (see above)

  // The same value along both spatial dimensions.
  static Conv2dParams square(int stride, int pad = 0, int dil = 1) {
    return {stride, stride, pad, pad, dil, dil};
  }
  bool operator==(const Conv2dParams&) const = default;
};
// "stride (1, 1), padding (0, 0), dilation (1, 1)" (", channels last" when so): for error
// messages.
std::string conv2d_params_str(const Conv2dParams& p);

// A validated problem, as the CPU and CUDA implementations receive it.
struct Conv2dGeometry {
  int64_t n = 0, c_in = 0, h = 0, w = 0;  // x
  int64_t c_out = 0, kh = 0, kw = 0;      // weight
  int64_t h_out = 0, w_out = 0;           // y
  Conv2dParams p;
  int64_t k() const { return c_in * kh * kw; }  // the GEMM's inner dimension
  double flops() const { return 2.0 * n * c_out * h_out * w_out * c_in * kh * kw; }
  // x's, weight's and y's shapes in the problem's layout.
  Shape x_shape() const;
  Shape weight_shape() const;
  Shape y_shape() const;
};

// floor((in + 2 pad - dil (k - 1) - 1) / stride) + 1; may be <= 0 (then no valid output).
int64_t conv_out_size(int64_t in, int64_t k, int pad, int stride, int dil);

// Checks x [N, Cin, H, W] and weight [Cout, Cin, kh, kw] (channels last: [N, H, W, Cin] and
// [Cout, kh, kw, Cin]) and the parameters, and returns the geometry; an Error names `op`, both
// shapes and the parameters.
Conv2dGeometry conv2d_geometry(const char* op, const Shape& x, const Shape& weight,
                               const Conv2dParams& p);

void conv2d_forward(Context& ctx, const Tensor& x, const Tensor& weight, const Tensor& bias,
                    const Conv2dParams& p, const Tensor& y);
// dx's shape gives the input size (several input sizes map to one output size when stride > 1).
void conv2d_backward_data(Context& ctx, const Tensor& dy, const Tensor& weight,
                          const Conv2dParams& p, const Tensor& dx);
void conv2d_backward_filter(Context& ctx, const Tensor& x, const Tensor& dy, const Conv2dParams& p,
                            const Tensor& dw);

}  // namespace cyclone::kernels
