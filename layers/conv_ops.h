// Differentiable convolution and pooling (the pattern of layers/ops.h), on kernels/conv.h and
// kernels/pool.h, NCHW.
//
// conv2d(x, weight, bias, params): torch.nn.functional.conv2d with groups = 1. x [N, Cin, H, W],
//   weight [Cout, Cin, kh, kw], bias [Cout] or undefined -> [N, Cout, Hout, Wout],
//   Hout = floor((H + 2 pad - dil (kh - 1) - 1) / stride) + 1.
//   Backward: dx = conv2d_backward_data(dy, w), dw = conv2d_backward_filter(x, dy),
//   db = sum of dy over N, H, W. cost: 2 N Cout Hout Wout Cin kh kw flops per pass, three passes
//   for forward + backward. With params.channels_last: x [N, H, W, Cin], weight [Cout, kh, kw, Cin]
//   -> [N, Hout, Wout, Cout] (layers/layout.h runs layers this way).
// max_pool2d(x, kernel, stride, padding): torch.nn.functional.max_pool2d (ceil_mode false);
//   the gradient goes to the saved argmax of each window (ties: the first element; NaN wins).
// avg_pool2d(x, kernel, stride, padding): torch.nn.functional.avg_pool2d with
//   count_include_pad = true (the divisor is kernel_h kernel_w everywhere).
// global_avg_pool(x): [N, C, H, W] -> [N, C], the mean over H and W
//   (adaptive_avg_pool2d(x, 1).flatten(1)).
// The backward passes run the kernels directly, so second derivatives are not available.
#pragma once

#include "cyclone/core/tensor.h"
#include "cyclone/kernels/conv.h"
#include "cyclone/kernels/pool.h"

namespace cyclone {

using kernels::Conv2dParams;  // {stride_h, stride_w, pad_h, pad_w, dil_h, dil_w}
using kernels::Pool2dParams;  // {kh, kw, stride_h, stride_w, pad_h, pad_w}

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias,
              const Conv2dParams& params);
// The same stride, padding and dilation along both spatial dimensions.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), int stride = 1,
              int padding = 0, int dilation = 1);

Tensor max_pool2d(const Tensor& x, const Pool2dParams& params);
// A square window; stride 0 means the kernel size (PyTorch's default).
Tensor max_pool2d(const Tensor& x, int kernel, int stride = 0, int padding = 0);
Tensor avg_pool2d(const Tensor& x, const Pool2dParams& params);
Tensor avg_pool2d(const Tensor& x, int kernel, int stride = 0, int padding = 0);
Tensor global_avg_pool(const Tensor& x);

}  // namespace cyclone
