// 2-D pooling over NCHW tensors (torch.nn.functional.max_pool2d / avg_pool2d with ceil_mode false,
// adaptive_avg_pool2d(x, 1) flattened). No autograd (layers/conv_ops.h adds it). Hand-written
// loops on the CPU and CUDA kernels on the GPU (one thread per output, or per input element for
// the backward passes, which gather instead of scattering: no atomics, deterministic).
//
// x [N, C, H, W] -> y [N, C, Hout, Wout], Hout = floor((H + 2 pad_h - kh) / stride_h) + 1 (Wout
// likewise), window (oh, ow) = rows oh stride_h - pad_h + [0, kh), cols ow stride_w - pad_w + [0,
// kw). Padding must be at most half the kernel (PyTorch's rule), so every window holds an input
// element.
//
// max_pool2d_forward: y = max over the window's in-bounds elements (padding never wins); indices
//   (int32, y's shape) = ih W + iw of the maximum within its plane, as PyTorch returns them. Ties
//   go to the first element in row-major window order; a NaN wins over any number (the first NaN),
//   so NaN propagates as in torch.
//   cost: N C Hout Wout kh kw compares; (|x| + |y|) sizeof(T) + |y| 4 bytes.
// max_pool2d_backward: dx[n, c, i] = sum of dy[n, c, o] over the outputs o whose index is i (0 for
//   elements that were nobody's maximum). cost: |dx| kh kw / (stride_h stride_w) reads, |dx|
//   writes.
// avg_pool2d_forward: y = (sum of the window's in-bounds elements) / (kh kw): padded zeros count
//   in the divisor (count_include_pad = true, PyTorch's default; with ceil_mode false every window
//   lies inside the padded input, so the divisor is always kh kw). cost: N C Hout Wout kh kw adds.
// avg_pool2d_backward: dx[i] = sum over windows containing i of dy / (kh kw).
// global_avg_pool_forward: x [N, C, H, W] -> y [N, C], y = mean over H W (kernels/reduce.h's mean,
//   pairwise / tree-summed). cost: |x| reads.
// global_avg_pool_backward: dx [N, C, H, W] = dy[n, c] / (H W). cost: |dx| writes.
// float32 or float64; outputs are written, never read.
#pragma once

#include <string>

#include "cyclone/core/context.h"
#include "cyclone/core/tensor.h"

namespace cyclone::kernels {

struct Pool2dParams {
  int kh = 1, kw = 1;
  int stride_h = 1, stride_w = 1;
  int pad_h = 0, pad_w = 0;

  // A square window; stride defaults to the kernel size (PyTorch's default).
  static Pool2dParams square(int kernel, int stride = 0, int pad = 0) {
    const int s = stride > 0 ? stride : kernel;
    return {kernel, kernel, s, s, pad, pad};
  }
  bool operator==(const Pool2dParams&) const = default;
};
// "kernel (2, 2), stride (2, 2), padding (0, 0)": for error messages.
std::string pool2d_params_str(const Pool2dParams& p);

// A validated problem, as the CPU and CUDA implementations receive it.
struct Pool2dGeometry {
  int64_t n = 0, c = 0, h = 0, w = 0, h_out = 0, w_out = 0;
  Pool2dParams p;
  int64_t planes() const { return n * c; }
};

// Checks x [N, C, H, W] and the parameters; an Error names `op`, the shape and the parameters.
Pool2dGeometry pool2d_geometry(const char* op, const Shape& x, const Pool2dParams& p);

void max_pool2d_forward(Context& ctx, const Tensor& x, const Pool2dParams& p, const Tensor& y,
                        const Tensor& indices);
// dx's shape gives the input size.
void max_pool2d_backward(Context& ctx, const Tensor& dy, const Tensor& indices,
                         const Pool2dParams& p, const Tensor& dx);
void avg_pool2d_forward(Context& ctx, const Tensor& x, const Pool2dParams& p, const Tensor& y);
void avg_pool2d_backward(Context& ctx, const Tensor& dy, const Pool2dParams& p, const Tensor& dx);
void global_avg_pool_forward(Context& ctx, const Tensor& x, const Tensor& y);
void global_avg_pool_backward(Context& ctx, const Tensor& dy, const Tensor& dx);

}  // namespace cyclone::kernels
