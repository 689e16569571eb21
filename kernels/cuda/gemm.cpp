// cuBLAS is column-major; a row-major matrix is its transpose in column-major order. So the
// row-major C = op(A) op(B) is computed as the column-major C^T = op(B)^T op(A)^T: swap the
// operands (B first), swap m and n, keep each operand's own transpose flag and leading dimension.
#include <cublas_v2.h>

#include <climits>

#include "cyclone/core/cuda/check.h"
#include "cyclone/kernels/cuda/gemm.h"

namespace cyclone::kernels::cuda {

void gemm(Context& ctx, const GemmProblem& p, const Tensor& a, const Tensor& b, const Tensor& c) {
  auto handle = static_cast<cublasHandle_t>(ctx.cublas());
  const cublasOperation_t op_a = p.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = p.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int m = static_cast<int>(p.m), n = static_cast<int>(p.n), k = static_cast<int>(p.k);
  const int lda = static_cast<int>(p.trans_a ? p.m : p.k);
  const int ldb = static_cast<int>(p.trans_b ? p.k : p.n);
  const int ldc = n;
  CYCLONE_CHECK(p.batch <= INT_MAX, "gemm_batched: batch ", p.batch, " exceeds cuBLAS's int limit");
  const int batch = static_cast<int>(p.batch);

  if (c.dtype() == DType::kFloat32 || is_half(c.dtype())) {
    // alpha and beta are host scalars of the compute type (float for every compute type used).
    // bfloat16 and float16 operands take the tensor cores with float32 accumulation; float32 takes
    // FP32 math, or TF32 tensor cores when allowed.
    const float alpha = static_cast<float>(p.alpha), beta = static_cast<float>(p.beta);
    const bool half = is_half(c.dtype());
    const cudaDataType_t type = c.dtype() == DType::kBFloat16  ? CUDA_R_16BF
                                : c.dtype() == DType::kFloat16 ? CUDA_R_16F
                                                               : CUDA_R_32F;
    const cublasComputeType_t compute =
        !half && ctx.allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    if (batch == 1) {
      CUBLAS_CHECK(cublasGemmEx(handle, op_b, op_a, n, m, k, &alpha, b.raw_data(), type, ldb,
                                a.raw_data(), type, lda, &beta, c.raw_data(), type, ldc, compute,
                                CUBLAS_GEMM_DEFAULT));
    } else {
      CUBLAS_CHECK(cublasGemmStridedBatchedEx(handle, op_b, op_a, n, m, k, &alpha, b.raw_data(),
                                              type, ldb, p.stride_b, a.raw_data(), type, lda,
                                              p.stride_a, &beta, c.raw_data(), type, ldc,
                                              p.stride_c, batch, compute, CUBLAS_GEMM_DEFAULT));
    }
    return;
  }
  CYCLONE_CHECK(c.dtype() == DType::kFloat64, "gemm: unsupported dtype ", dtype_name(c.dtype()));
  const double alpha = p.alpha, beta = p.beta;
  const double* pa = a.data<double>();
  const double* pb = b.data<double>();
  double* pc = c.data<double>();
  if (batch == 1) {
    CUBLAS_CHECK(
        cublasDgemm(handle, op_b, op_a, n, m, k, &alpha, pb, ldb, pa, lda, &beta, pc, ldc));
  } else {
    CUBLAS_CHECK(cublasDgemmStridedBatched(handle, op_b, op_a, n, m, k, &alpha, pb, ldb, p.stride_b,
                                           pa, lda, p.stride_a, &beta, pc, ldc, p.stride_c, batch));
  }
}

}  // namespace cyclone::kernels::cuda
