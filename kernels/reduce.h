// Reductions (no autograd). Numerically careful: the CPU sums pairwise (error O(log n) ulp rather
// than O(n)) in the element type, or in double for float32 when `accurate` paths are cheaper;
// CUDA reduces in a tree (warp shuffles, then shared memory, then one atomic-free second pass).
//
// A tensor reduced over `axis` is viewed as [outer, len, inner] (outer = prod of dims before the
// axis, inner = prod after): out[o, i] = op_{k < len} x[o, k, i]; out holds outer*inner elements
// (the caller chooses its shape: axis removed or kept as 1).
//   cost: n reads, outer*inner writes.
// reduce_all: out (one element) = op over every element.
// reduce_channels: x viewed as [N, C, inner] (C = dim 1) -> out [C] = op over N and inner: the
//   gradient of a per-channel bias, and batch-norm statistics.
// argmax_axis: int32 index of the first maximum along axis (NaN counts as the maximum, as torch).
// Max of an empty set is an error; sum of an empty set is 0, mean of an empty set is NaN.
//
// Reductions are deterministic: the same inputs give bit-identical outputs run to run (no float
// atomics; CUDA launch shapes depend on the tensor shapes only). float32 is accumulated in double
// on CUDA (the kernels are memory-bound, so the wider adds cost nothing measurable) and pairwise in
// float on the CPU; CPU and CUDA agree to float32 rounding, not bit for bit. out must not overlap
// x.
//
// The broadcasts below are the backward passes of the axis reductions (layers/reduce_ops.h):
// broadcast_axis: out [outer, len, inner] from src holding outer*inner elements (the reduced
//   shape, axis removed or kept as 1): out[o, k, i] = src[o, i]. Backward of sum/mean over an axis.
//   cost: outer*inner reads, n writes.
// scatter_axis: out[o, k, i] = (k == index[o, i]) ? src[o, i] : 0, every element written; index
//   int32 with outer*inner elements (argmax_axis's output). Backward of max over an axis: like
//   torch.max(dim), the gradient goes to the one returned index, not to every tied element.
//   cost: 2*outer*inner reads, n writes.
#pragma once

#include <vector>

#include "cyclone/core/context.h"
#include "cyclone/core/tensor.h"

namespace cyclone::kernels {

enum class ReduceOp : uint8_t { kSum, kMean, kMax };

void reduce_axis(Context& ctx, ReduceOp op, const Tensor& x, int axis, const Tensor& out);
void reduce_all(Context& ctx, ReduceOp op, const Tensor& x, const Tensor& out);
void reduce_channels(Context& ctx, ReduceOp op, const Tensor& x, const Tensor& out);
void argmax_axis(Context& ctx, const Tensor& x, int axis, const Tensor& out);
void broadcast_axis(Context& ctx, const Tensor& src, int axis, const Tensor& out);
void scatter_axis(Context& ctx, const Tensor& src, const Tensor& index, int axis,
                  const Tensor& out);

// sum_squares: out (one float32 element) = the sum over every tensor of xs and every element v of
// float(v)^2, accumulated in double: the squared global norm of a model's gradients (the step
// guard's and gradient clipping's input) in one pass over each tensor and one final sum, where
// square, sum and add per tensor made four launches and a temporary the size of the gradient.
// xs: floating tensors on out's device, any mix of dtypes; an empty list or empty tensors add 0.
// Deterministic; CPU and CUDA agree to rounding (the CPU sums each tensor in order, CUDA in a tree
// whose shape depends on the sizes only).
//   cost: one read of every element.
void sum_squares(Context& ctx, const std::vector<Tensor>& xs, const Tensor& out);

const char* reduce_op_name(ReduceOp op);  // "sum", "mean", "max"

// A tensor of shape s seen as [outer, len, inner] around `axis` (already normalized).
struct ReduceDims {
  int64_t outer = 1, len = 1, inner = 1;
};
ReduceDims reduce_dims(const Shape& s, int axis);

}  // namespace cyclone::kernels
