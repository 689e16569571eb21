// Mixed precision, torch.autocast's idea for bfloat16. While an AutocastScope for bfloat16 is
// active on a thread, conv2d and matmul (and so linear) given float32 operands compute in
// bfloat16: x and the weight are rounded to bfloat16 (differentiable casts), the product runs on
// bf16 tensor cores with float32 accumulation (kernels/gemm.h, kernels/conv.h), and the result is
// cast back to float32 before the bias is added. Everything else — batch norm, activations,
// pooling, the loss — runs in float32, the parameters stay float32 (the master weights the
// optimizer updates, its state float32 too), and their gradients arrive in float32 through the
// casts' backward. The backward of a bf16 product is itself bf16 (the same kernels), so the
// backward needs no scope.
//
// A model runs under a scope when Module::set_compute_dtype(DType::kBFloat16) was called on it:
// Module::operator() opens the scope around forward(). Off (float32) by default.
#pragma once

#include "cyclone/core/dtype.h"
#include "cyclone/core/tensor.h"

namespace cyclone {

// The calling thread's compute dtype for products: kFloat32 (no autocast) or kBFloat16.
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

// Whether a product of these float32 operands runs in the autocast dtype now.
bool autocast_applies(const Tensor& a, const Tensor& b);

}  // namespace cyclone
