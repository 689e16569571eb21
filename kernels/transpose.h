// Batched 2-D transpose: x viewed as [B, R, C] -> y [B, C, R], y[b, c, r] = x[b, r, c]. It moves
// bytes only, so every dtype works (dispatch on the element size). It is the layout change of
// channels-last training (layers/layout.h):
//   NCHW -> NHWC: B = N, R = C, C = H W;            NHWC -> NCHW: B = N, R = H W, C = C;
//   conv weight [Cout, Cin, kh, kw] -> [Cout, kh, kw, Cin]: B = Cout, R = Cin, C = kh kw.
// CPU: 32x32 tiles, in parallel over (batch, row tile). CUDA: the shared-memory tile transpose
// (32x33 tile against bank conflicts, coalesced reads and writes).
//   cost: |x| reads + |x| writes; no flops.
// x and y: contiguous, one dtype, one device, B R C elements each; y is written, never read, and
// must not overlap x.
#pragma once

#include <cstdint>

#include "cyclone/core/context.h"
#include "cyclone/core/tensor.h"

namespace cyclone::kernels {

void batched_transpose(Context& ctx, const Tensor& x, int64_t batch, int64_t rows, int64_t cols,
                       const Tensor& y);

// New tensors, for rank-4 x: [N, C, H, W] -> [N, H, W, C], and [N, H, W, C] -> [N, C, H, W]
// (also conv weights: [Cout, Cin, kh, kw] <-> [Cout, kh, kw, Cin]), allocated on ctx's stream. No
// autograd (layers/layout.h has the differentiable ones).
Tensor to_channels_last(Context& ctx, const Tensor& x);
Tensor to_channels_first(Context& ctx, const Tensor& x);

}  // namespace cyclone::kernels
