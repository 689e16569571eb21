// The CPU GEMM's tiling (kernels/cpu/gemm.h): products big enough are split into tiles of C fixed
// by the shape and run on the thread pool, each tile one single-threaded OpenBLAS call. What a
// user relies on: the tiles cover C exactly once (every transpose, leading dimensions wider than
// the matrix, partial last tiles), and the result is the same bits on one thread as on the pool,
// for GEMM, batched GEMM and the convolutions built on it. A parallel_for issued from inside a
// pool chunk runs inline (core/parallel.h), so calling the kernels there is the one-thread run.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "common/test_util.h"
#include "cyclone/kernels/conv.h"
#include "cyclone/kernels/cpu/gemm.h"

namespace cyclone {
namespace {

using kernels::cpu::gemm_tiles;
using kernels::cpu::GemmTiles;

// f() on this thread with the pool idle, and again on one thread (testing::on_one_thread).
template <class F>
auto pooled_and_inline(F&& f) {
  auto pooled = f();
  return std::make_pair(pooled, testing::on_one_thread(f));
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(GemmTiles, CoverTheMatrixWithAlignedSidesAndABoundedCount) {
  struct Case {
    int64_t m, n, k;
  };
  for (const Case& c : {Case{1, 1, 1}, Case{6, 100352, 25}, Case{128, 120, 400},
                        Case{200, 300, 150}, Case{1024, 1024, 1024}, Case{16, 150, 12800},
                        Case{160, 1440, 4096}, Case{4096, 7, 4096}, Case{3, 5, 0}}) {
    const GemmTiles t = gemm_tiles(c.m, c.n, c.k);
    const std::string what =
        std::to_string(c.m) + "x" + std::to_string(c.n) + "x" + std::to_string(c.k);
    ASSERT_GE(t.rows, 1) << what;
    ASSERT_GE(t.cols, 1) << what;
    ASSERT_LE(t.rows, c.m) << what;
    ASSERT_LE(t.cols, c.n) << what;
    EXPECT_EQ(t.count, ((c.m + t.rows - 1) / t.rows) * ((c.n + t.cols - 1) / t.cols)) << what;
    EXPECT_LE(t.count, 16) << what;
    // A split side is a multiple of 16 and at least 64; an unsplit one is the whole dimension.
    for (auto [side, dim] : {std::pair{t.rows, c.m}, std::pair{t.cols, c.n}})
      if (side < dim) {
        EXPECT_EQ(side % 16, 0) << what;
        EXPECT_GE(side, 64) << what;
      }
    // A tile is at most 2^20 multiply-adds unless the count or the sides stopped the split.
    const double tile_macs = static_cast<double>(t.rows) * t.cols * c.k;
    if (tile_macs > (1 << 20) && t.count < 8) {
      EXPECT_TRUE(t.rows < 128 && t.cols < 128) << what << ": could have been split further";
    }
  }
  // The examples the constants were chosen for.
  const GemmTiles square = gemm_tiles(1024, 1024, 1024);
  EXPECT_EQ(square.count, 16);
  EXPECT_EQ(gemm_tiles(64, 64, 64).count, 1);    // 2^18 multiply-adds: one call
  EXPECT_EQ(gemm_tiles(128, 128, 64).count, 1);  // 2^20: still one
  EXPECT_EQ(gemm_tiles(6, 100352, 25).rows, 6);
  EXPECT_GT(gemm_tiles(6, 100352, 25).count, 1);
}

// blas_gemm on sub-matrices of wider row-major buffers (leading dimensions > the columns), against
// double loops, for every transpose, on shapes of several tiles with partial last ones.
TEST(GemmTiles, TiledProductMatchesNaiveWithLeadingDimensionsAndIsBitIdenticalOnOneThread) {
  struct Case {
    int64_t m, n, k;
  };
  for (const Case& c : {Case{200, 300, 150}, Case{301, 97, 211}, Case{70, 1000, 90}}) {
    ASSERT_GT(gemm_tiles(c.m, c.n, c.k).count, 1) << "the case should span several tiles";
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        // Stored shapes of op(A) [m, k] and op(B) [k, n], each row padded by 5 elements.
        const int64_t a_rows = ta ? c.k : c.m, a_cols = ta ? c.m : c.k, lda = a_cols + 5;
        const int64_t b_rows = tb ? c.n : c.k, b_cols = tb ? c.k : c.n, ldb = b_cols + 5;
        const int64_t ldc = c.n + 3;
        const std::vector<double> av = testing::random_values(a_rows * lda, 11);
        const std::vector<double> bv = testing::random_values(b_rows * ldb, 12);
        const std::vector<double> cv = testing::random_values(c.m * ldc, 13);
        const std::vector<float> a(av.begin(), av.end()), b(bv.begin(), bv.end()),
            c0(cv.begin(), cv.end());
        const float alpha = 0.75f, beta = -0.5f;
        const auto [pooled, one_thread] = pooled_and_inline([&] {
          std::vector<float> out = c0;
          kernels::cpu::blas_gemm(ta, tb, c.m, c.n, c.k, alpha, a.data(), lda, b.data(), ldb, beta,
                                  out.data(), ldc);
          return out;
        });
        const std::string what = std::to_string(c.m) + "x" + std::to_string(c.n) + "x" +
                                 std::to_string(c.k) + (ta ? " A^T" : "") + (tb ? " B^T" : "");
        EXPECT_TRUE(same_bits(pooled, one_thread)) << what;
        double worst = 0;
        for (int64_t i = 0; i < c.m; ++i)
          for (int64_t j = 0; j < ldc; ++j) {
            const float got = pooled[i * ldc + j];
            if (j >= c.n) {  // past the matrix: untouched
              ASSERT_EQ(got, c0[i * ldc + j]) << what << " wrote past column " << c.n;
              continue;
            }
            double s = 0;
            for (int64_t p = 0; p < c.k; ++p)
              s += static_cast<double>(ta ? a[p * lda + i] : a[i * lda + p]) *
                   static_cast<double>(tb ? b[j * ldb + p] : b[p * ldb + j]);
            const double want = alpha * s + beta * static_cast<double>(c0[i * ldc + j]);
            worst = std::max(worst, std::abs(got - want) / (1 + std::abs(want)));
          }
        EXPECT_LT(worst, 1e-5) << what;
      }
  }
}

// Batched GEMM of small items (grouped, a group per pool chunk) and of items big enough to tile.
TEST(GemmTiles, BatchedGemmIsBitIdenticalOnOneThread) {
  const Device cpu = Device::cpu();
  for (const Shape& item : {Shape{40, 8, 12}, Shape{130, 90, 100}}) {  // [m, k, n]
    ASSERT_EQ(gemm_tiles(item[0], item[2], item[1]).count, item[0] == 40 ? 1 : 2);
    const int64_t batch = 37, m = item[0], k = item[1], n = item[2];
    const Tensor a = testing::random_tensor({batch, m, k}, 21, DType::kFloat32, cpu);
    const Tensor b = testing::random_tensor({batch, k, n}, 22, DType::kFloat32, cpu);
    const auto [pooled, one_thread] = pooled_and_inline([&] {
      const Tensor c = testing::nan_tensor({batch, m, n}, DType::kFloat32, cpu);
      kernels::gemm_batched(Context::current(cpu), false, false, 1.0, a, b, 0.0, c);
      return testing::values(c);
    });
    EXPECT_EQ(pooled, one_thread) << item.str();
    // Spot-check the last item against a direct sum.
    const std::vector<double> av = testing::values(a), bv = testing::values(b);
    const int64_t last = batch - 1;
    for (int64_t i = 0; i < m; i += 7)
      for (int64_t j = 0; j < n; j += 5) {
        double s = 0;
        for (int64_t p = 0; p < k; ++p)
          s += av[(last * m + i) * k + p] * bv[(last * k + p) * n + j];
        EXPECT_NEAR(pooled[(last * m + i) * n + j], s, 1e-4) << item.str();
      }
  }
}

// The convolutions' GEMMs are the largest the CPU path runs: forward, data and filter gradients.
TEST(GemmTiles, ConvolutionIsBitIdenticalOnOneThread) {
  const Device cpu = Device::cpu();
  const Tensor x = testing::random_tensor({12, 16, 20, 20}, 31, DType::kFloat32, cpu);
  const Tensor w = testing::random_tensor({24, 16, 3, 3}, 32, DType::kFloat32, cpu);
  const Tensor bias = testing::random_tensor({24}, 33, DType::kFloat32, cpu);
  const Tensor dy = testing::random_tensor({12, 24, 20, 20}, 34, DType::kFloat32, cpu);
  kernels::Conv2dParams p;
  p.pad_h = p.pad_w = 1;
  const auto [pooled, one_thread] = pooled_and_inline([&] {
    Context& ctx = Context::current(cpu);
    const Tensor y = testing::nan_tensor({12, 24, 20, 20}, DType::kFloat32, cpu);
    const Tensor dx = testing::nan_tensor(x.shape(), DType::kFloat32, cpu);
    const Tensor dw = testing::nan_tensor(w.shape(), DType::kFloat32, cpu);
    kernels::conv2d_forward(ctx, x, w, bias, p, y);
    kernels::conv2d_backward_data(ctx, dy, w, p, dx);
    kernels::conv2d_backward_filter(ctx, x, dy, p, dw);
    return std::vector<std::vector<double>>{testing::values(y), testing::values(dx),
                                            testing::values(dw)};
  });
  for (size_t i = 0; i < pooled.size(); ++i) {
    EXPECT_EQ(pooled[i], one_thread[i]) << "output #" << i;
    for (double v : pooled[i]) ASSERT_TRUE(std::isfinite(v)) << "output #" << i << " unwritten";
  }
}

}  // namespace
}  // namespace cyclone
