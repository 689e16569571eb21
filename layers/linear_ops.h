// Differentiable matrix products (the pattern of layers/ops.h), on kernels/gemm.h.
//
// matmul(a, b, trans_a, trans_b): op(a) @ op(b) with op = transpose of the last two dims when the
//   flag is set. 2-D @ 2-D -> [M, N]; batched when either operand is 3-D ([B, ., .]); a 2-D
//   operand is then shared by every batch entry (its gradient sums over the batch).
//   Backward: for C = A B, dA = dC B^T and dB = A^T dC (the transposed cases follow).
//   cost: 2*B*M*N*K flops forward, twice that backward.
// linear(x, weight, bias): y = x W^T + b with PyTorch's layout (torch.nn.functional.linear):
//   weight [out, in], bias [out] or undefined, x [..., in] -> y [..., out].
#pragma once

#include "cyclone/core/tensor.h"

namespace cyclone {

Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a = false, bool trans_b = false);
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace cyclone
