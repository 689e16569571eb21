#include "cyclone/layers/linear_ops.h"

#include <algorithm>

#include "cyclone/core/autograd.h"
#include "cyclone/core/context.h"
#include "cyclone/kernels/gemm.h"
#include "cyclone/layers/autocast.h"
#include "cyclone/layers/ops.h"

namespace cyclone {

namespace {

std::string ab(const Tensor& a, const Tensor& b) { return shapes_str({{"a", &a}, {"b", &b}}); }

// Sums t [B, P, Q] over its batch: ones[1, B] @ t viewed as [B, P*Q] (one GEMM, any device).
Tensor sum_batch(const Tensor& t) {
  const int64_t batch = t.dim(0), p = t.dim(1), q = t.dim(2);
  const Tensor ones_row = ones({1, batch}, t.dtype(), t.device());
  return matmul(ones_row, t.reshape({batch, p * q})).reshape({p, q});
}

// The gradient of an operand from a product of the right batch layout: a 2-D operand shared by a
// batched product receives the sum over the batch.
Tensor fit(const Tensor& grad, const Tensor& operand) {
  return operand.rank() == 2 && grad.rank() == 3 ? sum_batch(grad) : grad;
}

Tensor matmul_in_dtype(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  CYCLONE_CHECK((a.rank() == 2 || a.rank() == 3) && (b.rank() == 2 || b.rank() == 3),
                "matmul: needs 2-D or 3-D (batched) operands, got ", ab(a, b));
  const int64_t m = trans_a ? a.dim(-1) : a.dim(-2);
  const int64_t ka = trans_a ? a.dim(-2) : a.dim(-1);
  const int64_t kb = trans_b ? b.dim(-1) : b.dim(-2);
  const int64_t n = trans_b ? b.dim(-2) : b.dim(-1);
  CYCLONE_CHECK(ka == kb, "matmul: inner dimensions differ: ", ab(a, b), " (trans_a ", trans_a,
                ", trans_b ", trans_b, ")");
  Context& ctx = Context::of(a);
  Tensor out;
  if (a.rank() == 2 && b.rank() == 2) {
    out = Tensor::empty({m, n}, a.dtype(), a.device());
    kernels::gemm(ctx, trans_a, trans_b, 1.0, a, b, 0.0, out);
  } else {
    const int64_t batch = a.rank() == 3 ? a.dim(0) : b.dim(0);
    CYCLONE_CHECK(a.rank() == 2 || b.rank() == 2 || a.dim(0) == b.dim(0),
                  "matmul: batch sizes differ: ", ab(a, b));
    out = Tensor::empty({batch, m, n}, a.dtype(), a.device());
    kernels::gemm_batched(ctx, trans_a, trans_b, 1.0, a, b, 0.0, out);
  }
  return autograd::record(
      out, "matmul", {a, b},
      [a, b, trans_a, trans_b](const Tensor& g, const Tensor&) -> std::vector<Tensor> {
        // The products below are in the forward's dtype, even when backward() runs inside an
        // autocast scope (which would round float32 operands' gradients to 16 bits).
        const AutocastScope no_autocast(DType::kFloat32);
        // C = op(A) op(B): each gradient is again one product of g with the other operand.
        Tensor ga, gb;
        if (a.requires_grad()) {
          if (!trans_a)
            ga = matmul(g, b, false, !trans_b);  // dA = g op(B)^T
          else
            ga = matmul(b, g, trans_b, true);  // dA = (g op(B)^T)^T = op(B) g^T
          ga = fit(ga, a);
        }
        if (b.requires_grad()) {
          if (b.rank() == 2 && a.rank() == 3 && !trans_a) {
            // Shared B, batched A: stacking the batch along M turns the sum over the batch
            // into the contraction of one GEMM.
            const int64_t rows = a.dim(0) * a.dim(1);
            const Tensor a2 = a.reshape({rows, a.dim(2)});
            const Tensor g2 = g.reshape({rows, g.dim(2)});
            gb = trans_b ? matmul(g2, a2, true, false) : matmul(a2, g2, true, false);
          } else if (!trans_b) {
            gb = fit(matmul(a, g, !trans_a, false), b);  // dB = op(A)^T g
          } else {
            gb = fit(matmul(g, a, true, trans_a), b);  // dB = (op(A)^T g)^T = g^T op(A)
          }
        }
        return {ga, gb};
      });
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool trans_a, bool trans_b) {
  CYCLONE_CHECK(a.defined() && b.defined(), "matmul: undefined operand");
  if (!autocast_applies(a, b)) {
    CYCLONE_CHECK(a.dtype() == b.dtype(), "matmul: a is ", dtype_name(a.dtype()), " but b is ",
                  dtype_name(b.dtype()), " (cast one of them: operands must share a dtype)");
    return matmul_in_dtype(a, b, trans_a, trans_b);
  }
  // Mixed precision (layers/autocast.h): operands, product and result in bfloat16.
  const DType low = autocast_dtype();
  return matmul_in_dtype(cast(a, low), cast(b, low), trans_a, trans_b);
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  CYCLONE_CHECK(x.defined() && weight.defined(), "linear: undefined x or weight");
  CYCLONE_CHECK(weight.rank() == 2 && x.rank() >= 1 && x.dim(-1) == weight.dim(1),
                "linear: needs x [..., in] and weight [out, in]: ",
                shapes_str({{"x", &x}, {"weight", &weight}}));
  // As torch.nn.functional.linear, operands of two float dtypes are refused outside autocast.
  CYCLONE_CHECK(x.dtype() == weight.dtype() || autocast_applies(x, weight), "linear: x is ",
                dtype_name(x.dtype()), " but weight is ", dtype_name(weight.dtype()),
                " (cast x to the weight's dtype, or the module's parameters to x's)");
  const int64_t in = weight.dim(1), out_features = weight.dim(0);
  if (bias.defined())
    CYCLONE_CHECK(bias.rank() == 1 && bias.dim(0) == out_features, "linear: bias must be [out]: ",
                  shapes_str({{"weight", &weight}, {"bias", &bias}}));
  const int64_t rows = x.rank() == 1 ? 1 : x.numel() / std::max<int64_t>(in, 1);
  const Tensor x2 = x.rank() == 2 ? x : x.reshape({rows, in});
  Tensor y = matmul(x2, weight, false, true);
  // add() broadcasts a [C] vector against dim 1 of [N, C]; under autocast y is bfloat16 and so
  // is the bias added to it.
  if (bias.defined()) y = add(y, bias.dtype() == y.dtype() ? bias : cast(bias, y.dtype()));
  if (x.rank() == 2) return y;
  std::vector<int64_t> dims(x.shape().dims().begin(), x.shape().dims().end() - 1);
  dims.push_back(out_features);
  return y.reshape(Shape(dims));
}

}  // namespace cyclone
