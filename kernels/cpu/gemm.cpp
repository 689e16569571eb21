#include "cyclone/kernels/cpu/gemm.h"

#include <cblas.h>

#include <algorithm>
#include <functional>
#include <mutex>

#include "cyclone/core/parallel.h"
#include "cyclone/core/resource_limits.h"
#include "cyclone/kernels/cpu/elementwise.h"

namespace cyclone::kernels::cpu {

namespace {

// A tile's work, in multiply-adds: ~1M, 20-40 us on one core, well above a pool wake-up; small
// enough that LeNet-5's products at batch 32-128 spread over the threads (on 2 cores 2^20 gave
// 5-15% more images/s than 2^22 in cyclone_bench_train, two runs each; best_lr: the same).
constexpr int64_t kTileMacs = int64_t{1} << 20;
// Each tile packs its rows of op(A) and its columns of op(B) again: the shorter its sides, the
// larger that share of its time. No side is split below 64.
constexpr int64_t kMinSide = 64;
// Sides are multiples of the kernels' register blocks (16 floats wide at most).
constexpr int64_t kAlign = 16;
// Enough tiles for a workstation's cores; more only repack: a 1024^3 product on one thread took
// 26.0 ms as one tile, 27.9 ms as 4 and 32.3 ms as 32 (cyclone_bench, 2-core EPYC).
constexpr int64_t kMaxTiles = 16;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

int g_threads_at_load = 0;
std::once_flag g_blas_once;

void blas_call(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
               int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a,
              static_cast<int>(lda), b, static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
}

void blas_call(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
               int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), alpha, a,
              static_cast<int>(lda), b, static_cast<int>(ldb), beta, c, static_cast<int>(ldc));
}

// Runs f(i) for i in [0, count): on the pool, or in order on this thread under an address-space
// limit (the check for which is one getrlimit, cheap beside a product).
void run_parallel(int64_t count, const std::function<void(int64_t)>& f) {
  if (count == 1 || address_space_limit()) {
    for (int64_t i = 0; i < count; ++i) f(i);
    return;
  }
  cyclone::detail::run_chunks(count, f);
}

template <class T>
void tiled_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, T alpha, const T* a, int64_t lda,
                const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  blas_threads_at_load();
  const GemmTiles t = gemm_tiles(m, n, k);
  const int64_t across = ceil_div(n, t.cols);
  run_parallel(t.count, [&](int64_t i) {
    const int64_t r0 = i / across * t.rows, c0 = i % across * t.cols;
    // Rows r0.. of op(A): rows of A, or columns when transposed; columns c0.. of op(B) likewise.
    blas_call(ta, tb, std::min(t.rows, m - r0), std::min(t.cols, n - c0), k, alpha,
              ta ? a + r0 : a + r0 * lda, lda, tb ? b + c0 * ldb : b + c0, ldb, beta,
              c + r0 * ldc + c0, ldc);
  });
}

}  // namespace

int blas_threads_at_load() {
  std::call_once(g_blas_once, [] {
    g_threads_at_load = openblas_get_num_threads();
    openblas_set_num_threads(1);
  });
  return g_threads_at_load;
}

GemmTiles gemm_tiles(int64_t m, int64_t n, int64_t k) {
  if (m <= 0 || n <= 0) return {std::max<int64_t>(m, 0), std::max<int64_t>(n, 0), 0};
  int64_t rows = m, cols = n;
  const auto count = [&] { return ceil_div(m, rows) * ceil_div(n, cols); };
  // Halve the longer side (rounded up to kAlign) while a tile is more than kTileMacs of work.
  while (static_cast<double>(rows) * static_cast<double>(cols) * static_cast<double>(k) >
         static_cast<double>(kTileMacs)) {
    int64_t& side = cols >= rows ? cols : rows;
    const int64_t half = ceil_div(ceil_div(side, 2), kAlign) * kAlign;
    if (half < kMinSide || half >= side) break;
    const int64_t was = side;
    side = half;
    if (count() > kMaxTiles) {
      side = was;
      break;
    }
  }
  return {rows, cols, count()};
}

void blas_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
               int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  tiled_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void blas_gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a,
               int64_t lda, const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  tiled_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void gemm(Context& ctx, const GemmProblem& p, const Tensor& a, const Tensor& b, const Tensor& c) {
  if (is_half(c.dtype())) {
    // No bf16/fp16 BLAS here: widen to float32 (exact), multiply, round C once.
    const Tensor cf =
        p.beta == 0 ? Tensor::empty(c.shape(), DType::kFloat32, c.device()) : to_float32(ctx, c);
    gemm(ctx, p, to_float32(ctx, a), to_float32(ctx, b), cf);
    return cast(ctx, cf, c);
  }
  // Row-major leading dimensions: the stored row length of each operand.
  const int64_t lda = p.trans_a ? p.m : p.k;
  const int64_t ldb = p.trans_b ? p.k : p.n;
  CYCLONE_DISPATCH_FLOAT(c.dtype(), T, [&] {
    const T* pa = a.data<T>();
    const T* pb = b.data<T>();
    T* pc = c.data<T>();
    const T alpha = static_cast<T>(p.alpha), beta = static_cast<T>(p.beta);
    const auto item = [&](int64_t i) {
      blas_gemm(p.trans_a, p.trans_b, p.m, p.n, p.k, alpha, pa + i * p.stride_a, lda,
                pb + i * p.stride_b, ldb, beta, pc + i * p.stride_c, p.n);
    };
    // Products big enough to tile are tiled one after the other; smaller ones run in groups of
    // about one tile's work, a group per pool chunk (each item then a single call).
    if (p.batch == 1 || gemm_tiles(p.m, p.n, p.k).count > 1) {
      for (int64_t i = 0; i < p.batch; ++i) item(i);
      return;
    }
    const int64_t macs = std::max<int64_t>(p.m * p.n * p.k, 1);  // at most one tile's
    const int64_t group = std::clamp<int64_t>(kTileMacs / macs, 1, p.batch);
    run_parallel(ceil_div(p.batch, group), [&](int64_t g) {
      for (int64_t i = g * group; i < std::min(p.batch, (g + 1) * group); ++i) item(i);
    });
  });
}

}  // namespace cyclone::kernels::cpu

namespace cyclone::kernels {

std::string cpu_blas_kernels() {
  const char* core = openblas_get_corename();
  const int threads = cpu_threads();
  return std::string("OpenBLAS ") + (core != nullptr ? core : "unknown") + ", " +
         std::to_string(threads) + (threads == 1 ? " thread" : " threads");
}

}  // namespace cyclone::kernels
