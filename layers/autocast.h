// Mixed precision, torch.autocast's idea for bfloat16. While an AutocastScope for bfloat16 is
// active on a thread, conv2d and matmul (and so linear) given float32 or bfloat16 operands round
// them to bfloat16 (differentiable casts: the float32 weights are the master copies) and compute on
// bf16 tensor cores with float32 accumulation (kernels/gemm.h, kernels/conv.h); the result is
// bfloat16, and so is the bias added to it. The activations then stay bfloat16 through what
// follows: batch norm (bfloat16 x and y, float32 parameters and statistics, double sums),
// activations and residual adds (computed in float32, stored in bfloat16); the ops without a
// bfloat16 kernel (pooling, reductions, dropout) widen to float32 and round back (via_float32 in
// layers/ops.h). The parameters stay float32, the optimizer's state too, and gradients reach them
// in float32 through the casts' backward. The backward of a bf16 op is itself bf16 (the same
// kernels), so the backward needs no scope.
//
// float16 (DType::kFloat16) works the same way, with float16 in place of bfloat16: its 5-bit
// exponent overflows above 65504 and underflows below 2^-24, so float16 training scales its loss
// (train/precision.h; kernels/step_guard.h unscales and skips overflowing steps).
//
// A model runs under a scope when Module::set_compute_dtype(DType::kBFloat16) was called on it:
// Module::operator() opens the scope around forward() and casts a bfloat16 output back to float32,
// so the loss, the accuracy and softmax see float32. Off (float32) by default.
#pragma once

#include "cyclone/core/dtype.h"
#include "cyclone/core/tensor.h"

namespace cyclone {

// The calling thread's compute dtype for products: kFloat32 (no autocast), kBFloat16 or kFloat16.
DType autocast_dtype();

// Sets the thread's compute dtype for its lifetime (kFloat32 turns autocast off inside a scope);
// scopes nest.
class AutocastScope {
 public:
  explicit AutocastScope(DType compute);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  DType previous_;
};

// Whether a product of these operands (each float32 or bfloat16) runs in the autocast dtype now.
bool autocast_applies(const Tensor& a, const Tensor& b);

}  // namespace cyclone
