// Differentiable reductions over every element or over one axis (kernels/reduce.h does the math).
//
// Reductions over every element return a rank-0 tensor (shape [], one element), as torch.sum(x).
// Axis reductions drop the axis, or keep it as 1 with keepdim (torch.sum(x, dim, keepdim)); a
// negative axis counts from the end. Gradients, as PyTorch's derivatives.yaml:
//   sum:  dx = g broadcast back;   mean: dx = g / len broadcast back;
//   max(x):        g split evenly among every element equal to the maximum (NaN if it is NaN);
//   max(x, axis):  g to the first maximum along the axis only (the index argmax returns), like
//                  torch.max(x, dim).values - not to every tied element.
#pragma once

#include "cyclone/core/tensor.h"

namespace cyclone {

Tensor sum(const Tensor& x);
Tensor mean(const Tensor& x);
Tensor max(const Tensor& x);

Tensor sum(const Tensor& x, int axis, bool keepdim = false);
Tensor mean(const Tensor& x, int axis, bool keepdim = false);
Tensor max(const Tensor& x, int axis, bool keepdim = false);
// Index (int32) of the first maximum along axis; NaN counts as the maximum. Not differentiable.
Tensor argmax(const Tensor& x, int axis, bool keepdim = false);

// x repeated along `axis` to `shape`, where x holds the elements of `shape` with that axis removed
// (or kept as 1): the backward of an axis reduction, and a building block for row-wise ops
// (softmax, normalisation). Differentiable: its backward sums over the axis.
Tensor expand_axis(const Tensor& x, const Shape& shape, int axis);

}  // namespace cyclone
