#include "cyclone/kernels/cpu/gemm.h"

#include <cblas.h>

#include "cyclone/kernels/cpu/elementwise.h"

namespace cyclone::kernels::cpu {

namespace {

void gemm_one(const GemmProblem& p, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int lda, int ldb,
              const float* a, const float* b, float* c) {
  cblas_sgemm(CblasRowMajor, ta, tb, static_cast<int>(p.m), static_cast<int>(p.n),
              static_cast<int>(p.k), static_cast<float>(p.alpha), a, lda, b, ldb,
              static_cast<float>(p.beta), c, static_cast<int>(p.n));
}

void gemm_one(const GemmProblem& p, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int lda, int ldb,
              const double* a, const double* b, double* c) {
  cblas_dgemm(CblasRowMajor, ta, tb, static_cast<int>(p.m), static_cast<int>(p.n),
              static_cast<int>(p.k), p.alpha, a, lda, b, ldb, p.beta, c, static_cast<int>(p.n));
}

}  // namespace

void gemm(Context& ctx, const GemmProblem& p, const Tensor& a, const Tensor& b, const Tensor& c) {
  if (is_half(c.dtype())) {
    // No bf16/fp16 BLAS here: widen to float32 (exact), multiply, round C once.
    const Tensor cf =
        p.beta == 0 ? Tensor::empty(c.shape(), DType::kFloat32, c.device()) : to_float32(ctx, c);
    gemm(ctx, p, to_float32(ctx, a), to_float32(ctx, b), cf);
    return cast(ctx, cf, c);
  }
  const CBLAS_TRANSPOSE ta = p.trans_a ? CblasTrans : CblasNoTrans;
  const CBLAS_TRANSPOSE tb = p.trans_b ? CblasTrans : CblasNoTrans;
  // Row-major leading dimensions: the stored row length of each operand.
  const int lda = static_cast<int>(p.trans_a ? p.m : p.k);
  const int ldb = static_cast<int>(p.trans_b ? p.k : p.n);
  CYCLONE_DISPATCH_FLOAT(c.dtype(), T, [&] {
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* pc = c.data<T>();
    // OpenBLAS parallelises inside each call; a batch is a loop of calls.
    for (int64_t i = 0; i < p.batch; ++i)
      gemm_one(p, ta, tb, lda, ldb, pa + i * p.stride_a, pb + i * p.stride_b, pc + i * p.stride_c);
  });
}

}  // namespace cyclone::kernels::cpu

namespace cyclone::kernels {

std::string cpu_blas_kernels() {
  const char* core = openblas_get_corename();
  const int threads = openblas_get_num_threads();
  return std::string("OpenBLAS ") + (core != nullptr ? core : "unknown") + ", " +
         std::to_string(threads) + (threads == 1 ? " thread" : " threads");
}

}  // namespace cyclone::kernels
