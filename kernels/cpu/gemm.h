// CPU implementation of kernels/gemm.h (arguments already validated): OpenBLAS's single-threaded
// cblas_?gemm on tiles of C, the tiles run on Cyclone's thread pool (core/parallel.h).
//
// Why not OpenBLAS's own threads: Debian's OpenBLAS (0.3.21, pthreads) waits for its workers in
// sched_yield loops, which beside any other CPU load turn a 3 s CPU run into a 2 min one
// (benchmarks/results/2026-11-29-cpu-openblas-load/), and the way it splits a product depends on
// its thread count, which changes the last bits of the result. Here the tiles are fixed by the
// shape alone and each element of C is one OpenBLAS call's sum over the whole K, so the result
// is the same bits on any number of threads.
#pragma once

#include <cstdint>

#include "cyclone/kernels/gemm.h"

namespace cyclone::kernels::cpu {

void gemm(Context& ctx, const GemmProblem& p, const Tensor& a, const Tensor& b, const Tensor& c);

// Row-major C[m, n] = alpha op(A) op(B) + beta C (op: transposed when ta / tb), leading
// dimensions lda, ldb, ldc; m, n, k and the leading dimensions fit in an int. Split into tiles by
// the shape, run on the pool (on the calling thread under an address-space limit: each concurrent
// OpenBLAS call takes its own 128 MiB buffer).
void blas_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
               int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
void blas_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
               int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc);

// The tiles blas_gemm splits C[m, n] into (k: the inner dimension): rows and columns per tile,
// and the number of tiles.
struct GemmTiles {
  int64_t rows, cols, count;
};
GemmTiles gemm_tiles(int64_t m, int64_t n, int64_t k);

// The threads OpenBLAS started as the library loaded (OPENBLAS_NUM_THREADS, else one per core),
// each holding its 128 MiB buffer. The first call also makes OpenBLAS single-threaded for the rest
// of the process (those threads then sleep), as blas_gemm needs.
int blas_threads_at_load();

}  // namespace cyclone::kernels::cpu
