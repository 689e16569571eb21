// General matrix multiply: C = alpha * op(A) @ op(B) + beta * C, row-major, op = transpose or not.
// cuBLAS on the GPU (FP32 math, or TF32 tensor cores when ctx.allow_tf32()), OpenBLAS on the CPU.
// A is [M, K] (or [K, M] when trans_a), B is [K, N] (or [N, K] when trans_b), C is [M, N];
// float32, float64, bfloat16 or float16 (all three operands of one dtype), on one device.
// cost: 2*M*N*K flops, (MK + KN + 2MN)*sizeof(T) bytes.
// bfloat16 / float16: products and sums in float32 (cuBLAS's CUBLAS_COMPUTE_32F on tensor cores;
// on the CPU the operands are widened to float32 for OpenBLAS), C rounded once at the end.
// gemm_batched: the same over a leading batch dimension (A [B, ...], B [B, ...], C [B, M, N];
// an operand with rank 2 is shared by every batch entry).
//
// BLAS semantics: when beta == 0, C is written without being read (NaN or garbage in C does not
// leak into the result). K == 0 gives C = beta * C. Shapes that disagree are an Error naming the
// op and every shape involved. TF32 is opt-in (Context::set_allow_tf32): by default a float32 GEMM
// is fp32-accurate on both devices.
#pragma once

#include "cyclone/core/context.h"
#include "cyclone/core/tensor.h"

namespace cyclone::kernels {

// A validated problem, as handed to the CPU and CUDA implementations: `batch` products
// C_i = alpha * op(A_i) @ op(B_i) + beta * C_i over contiguous row-major operands whose entries
// are stride_* elements apart (0 for an operand shared by every entry). m, n, k >= 1 and each fits
// in an int (what BLAS interfaces take).
struct GemmProblem {
  bool trans_a = false, trans_b = false;
  int64_t batch = 1, m = 0, n = 0, k = 0;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;
  double alpha = 1, beta = 0;
};

void gemm(Context& ctx, bool trans_a, bool trans_b, double alpha, const Tensor& a, const Tensor& b,
          double beta, const Tensor& c);
void gemm_batched(Context& ctx, bool trans_a, bool trans_b, double alpha, const Tensor& a,
                  const Tensor& b, double beta, const Tensor& c);

// The CPU kernels OpenBLAS chose for this processor and the threads each product is split among
// (the CPU backend's pool, cpu_threads()), e.g. "OpenBLAS Haswell, 2 threads" (AVX2) or "OpenBLAS
// SkylakeX, 8 threads" (AVX-512). The kernels change the last bits of float sums, the thread
// count does not (kernels/cpu/gemm.h tiles a product by its shape, and OpenBLAS runs
// single-threaded), so CPU runs reproduce bit for bit under the same kernels;
// OPENBLAS_CORETYPE=Haswell, set before the program starts, pins them on any x86-64 processor
// with AVX2.
std::string cpu_blas_kernels();

// Under an address-space limit (ulimit -v) OpenBLAS hangs instead of failing: each of its threads
// needs a 128 MiB buffer, and its allocator retries a refused one forever (a worker thread as the
// library loads, before main, and at exit OpenBLAS waits for it; the calling thread on its first
// multiplication; the CPU GEMM keeps its tiles on the calling thread under a limit, so it needs no
// other). The library starts its threads as it loads (OPENBLAS_NUM_THREADS, else one per core),
// though products run single-threaded. Returns "" when there is room, else one line naming the
// limit and what to do.
// With `multiplies`, this thread's buffer is then claimed, so that a multiplication after the
// data has filled the limit cannot hang (OpenBLAS keeps the buffer for the process). Does nothing
// without a limit.
std::string check_blas_address_space(bool multiplies);

}  // namespace cyclone::kernels
