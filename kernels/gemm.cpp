#include "cyclone/kernels/gemm.h"

#include <climits>

#include "cyclone/kernels/cpu/gemm.h"
#include "cyclone/kernels/cuda/gemm.h"
#include "cyclone/kernels/elementwise.h"
#include "cyclone/kernels/flops.h"

namespace cyclone::kernels {

namespace {

std::string abc(const Tensor& a, const Tensor& b, const Tensor& c) {
  return shapes_str({{"a", &a}, {"b", &b}, {"c", &c}});
}

void check_operands(const char* op, const Tensor& a, const Tensor& b, const Tensor& c) {
  check_floating(op, a, "a");
  CYCLONE_CHECK(a.dtype() == b.dtype() && a.dtype() == c.dtype(), op, ": dtypes differ: a ",
                dtype_name(a.dtype()), ", b ", dtype_name(b.dtype()), ", c ",
                dtype_name(c.dtype()));
  check_same_device(op, a, b);
  check_same_device(op, a, c);
}

// Fills m, n, k of p from the last two dims of a and b, checking them against c's last two.
void matrix_dims(const char* op, GemmProblem& p, const Tensor& a, const Tensor& b,
                 const Tensor& c) {
  const int ra = a.rank(), rb = b.rank();
  const int64_t m = p.trans_a ? a.dim(ra - 1) : a.dim(ra - 2);
  const int64_t ka = p.trans_a ? a.dim(ra - 2) : a.dim(ra - 1);
  const int64_t kb = p.trans_b ? b.dim(rb - 1) : b.dim(rb - 2);
  const int64_t n = p.trans_b ? b.dim(rb - 2) : b.dim(rb - 1);
  CYCLONE_CHECK(ka == kb, op, ": inner dimensions differ: ", shapes_str({{"a", &a}, {"b", &b}}),
                " (trans_a ", p.trans_a, ", trans_b ", p.trans_b, ")");
  const int rc = c.rank();
  CYCLONE_CHECK(c.dim(rc - 2) == m && c.dim(rc - 1) == n, op, ": output c has shape ", c.shape(),
                ", expected [..., ", m, ", ", n, "] from ", shapes_str({{"a", &a}, {"b", &b}}));
  // BLAS takes int sizes and leading dimensions.
  for (int64_t d : {m, n, ka})
    CYCLONE_CHECK(d <= INT_MAX, op, ": dimension ", d,
                  " exceeds the BLAS int limit: ", abc(a, b, c));
  p.m = m;
  p.n = n;
  p.k = ka;
}

// The shared tail of gemm and gemm_batched: degenerate sizes, then the device's implementation.
void run(Context& ctx, const GemmProblem& p, const Tensor& a, const Tensor& b, const Tensor& c) {
  if (c.numel() == 0) return;
  if (p.k == 0) {
    // An empty sum: C = beta * C, and C is not read when beta == 0.
    if (p.beta == 0) return fill(ctx, c, 0.0);
    return unary(ctx, UnaryOp::kMulScalar, c, c, p.beta);
  }
  count_flops(2.0 * static_cast<double>(p.batch) * static_cast<double>(p.m) *
              static_cast<double>(p.n) * static_cast<double>(p.k));
  if (c.device().is_cuda()) return cuda::gemm(ctx, p, a, b, c);
  cpu::gemm(ctx, p, a, b, c);
}

}  // namespace

void gemm(Context& ctx, bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b,
          double beta, const Tensor& c) {
  check_operands("gemm", a, b, c);
  CYCLONE_CHECK(a.rank() == 2 && b.rank() == 2 && c.rank() == 2, "gemm: needs 2-D a, b and c, got ",
                abc(a, b, c));
  GemmProblem p;
  p.trans_a = trans_a;
  p.trans_b = trans_b;
  p.alpha = alpha;
  p.beta = beta;
  matrix_dims("gemm", p, a, b, c);
  run(ctx, p, a, b, c);
}

void gemm_batched(Context& ctx, bool trans_a, bool trans_b, double alpha, const Tensor& a,
                  const Tensor& b, double beta, const Tensor& c) {
  check_operands("gemm_batched", a, b, c);
  CYCLONE_CHECK(
      (a.rank() == 2 || a.rank() == 3) && (b.rank() == 2 || b.rank() == 3) && c.rank() == 3,
      "gemm_batched: needs a and b of rank 2 or 3 and c of rank 3, got ", abc(a, b, c));
  GemmProblem p;
  p.trans_a = trans_a;
  p.trans_b = trans_b;
  p.alpha = alpha;
  p.beta = beta;
  p.batch = c.dim(0);
  CYCLONE_CHECK(a.rank() == 2 || a.dim(0) == p.batch,
                "gemm_batched: batch sizes differ: ", abc(a, b, c));
  CYCLONE_CHECK(b.rank() == 2 || b.dim(0) == p.batch,
                "gemm_batched: batch sizes differ: ", abc(a, b, c));
  matrix_dims("gemm_batched", p, a, b, c);
  p.stride_a = a.rank() == 3 ? p.m * p.k : 0;
  p.stride_b = b.rank() == 3 ? p.k * p.n : 0;
  p.stride_c = p.m * p.n;
  // A batch of untransposed A against one shared B is a single GEMM of [batch*m, k] rows: one
  // bigger, faster call instead of many small ones.
  if (p.stride_a != 0 && p.stride_b == 0 && !p.trans_a && p.batch * p.m <= INT_MAX) {
    p.m *= p.batch;
    p.batch = 1;
    p.stride_a = p.stride_c = 0;
  }
  run(ctx, p, a, b, c);
}

}  // namespace cyclone::kernels
