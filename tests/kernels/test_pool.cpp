// max_pool2d / avg_pool2d / global_avg_pool, forward and backward, against naive loops in double
// on every device (overlapping windows, padding, non-square kernels and inputs, stride 1 and
// larger than the kernel); ties go to the first element, NaN propagates; outputs pre-filled with
// NaN; CPU-vs-CUDA parity; errors that name the shape and parameters.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "cyclone/kernels/pool_math.h"

namespace cyclone {
namespace {

using kernels::Pool2dParams;
using testing::DeviceTest;
using testing::nan_tensor;
using testing::random_tensor;
using testing::values;

struct PoolCase {
  std::string name;
  int64_t n, c, h, w;
  Pool2dParams p;
};

const std::vector<PoolCase>& cases() {
  static const std::vector<PoolCase> c = {
      {"k2_s2", 2, 3, 8, 8, Pool2dParams::square(2)},
      {"k3_s2_p1_overlap", 2, 2, 9, 7, Pool2dParams::square(3, 2, 1)},
      {"k3_s1_p1", 1, 2, 5, 6, Pool2dParams::square(3, 1, 1)},
      {"odd_input_k2", 1, 1, 7, 5, Pool2dParams::square(2)},
      {"nonsquare_kernel", 2, 2, 9, 10, Pool2dParams{3, 2, 2, 1, 1, 1}},
      {"stride_beyond_kernel", 1, 3, 11, 11, Pool2dParams::square(2, 3)},
      {"k1", 1, 2, 4, 3, Pool2dParams::square(1)},
      {"kernel_covers_input", 3, 1, 4, 4, Pool2dParams::square(4)},
      // Rows of more than 64 outputs: the CPU folds a row's inner windows 64 at a time.
      {"wide_rows_k3_s1_p1", 1, 2, 3, 150, Pool2dParams::square(3, 1, 1)},
      {"wide_rows_k2_s2", 2, 1, 4, 260, Pool2dParams::square(2)},
  };
  return c;
}

struct Ref {
  const PoolCase& c;
  int64_t ho, wo;
  explicit Ref(const PoolCase& cc)
      : c(cc),
        ho((cc.h + 2 * cc.p.pad_h - cc.p.kh) / cc.p.stride_h + 1),
        wo((cc.w + 2 * cc.p.pad_w - cc.p.kw) / cc.p.stride_w + 1) {}
  // f(out index, in index) for every in-bounds element of every window, in row-major window order.
  template <class F>
  void windows(F&& f) const {
    for (int64_t q = 0; q < c.n * c.c; ++q)
      for (int64_t oh = 0; oh < ho; ++oh)
        for (int64_t ow = 0; ow < wo; ++ow)
          for (int64_t i = 0; i < c.p.kh; ++i)
            for (int64_t j = 0; j < c.p.kw; ++j) {
              const int64_t ih = oh * c.p.stride_h - c.p.pad_h + i;
              const int64_t iw = ow * c.p.stride_w - c.p.pad_w + j;
              if (ih < 0 || ih >= c.h || iw < 0 || iw >= c.w) continue;
              f((q * ho + oh) * wo + ow, (q * c.h + ih) * c.w + iw);
            }
  }
  int64_t out_numel() const { return c.n * c.c * ho * wo; }
  int64_t in_numel() const { return c.n * c.c * c.h * c.w; }
};

double tol(DType dt) { return dt == DType::kFloat32 ? 1e-6 : 1e-13; }

class PoolTest : public DeviceTest {};

TEST_P(PoolTest, MaxPoolMatchesNaive) {
  uint64_t seed = 1;
  for (DType dt : {DType::kFloat32, DType::kFloat64})
    for (const PoolCase& c : cases()) {
      const Ref ref(c);
      const Tensor x = random_tensor({c.n, c.c, c.h, c.w}, seed++, dt, device());
      const Tensor dy = random_tensor({c.n, c.c, ref.ho, ref.wo}, seed++, dt, device());
      const auto vx = values(x), vdy = values(dy);
      std::vector<double> y(ref.out_numel(), -std::numeric_limits<double>::infinity());
      std::vector<int32_t> idx(ref.out_numel(), -1);
      ref.windows([&](int64_t o, int64_t i) {
        if (vx[i] > y[o]) {
          y[o] = vx[i];
          idx[o] = static_cast<int32_t>(i % (c.h * c.w));
        }
      });
      std::vector<double> dx(ref.in_numel(), 0.0);
      for (int64_t o = 0; o < ref.out_numel(); ++o)
        dx[(o / (ref.ho * ref.wo)) * c.h * c.w + idx[o]] += vdy[o];

      const Tensor ty = nan_tensor(dy.shape(), dt, device());
      const Tensor ti = Tensor::empty(dy.shape(), DType::kInt32, device());
      kernels::max_pool2d_forward(Context::of(x), x, c.p, ty, ti);
      EXPECT_TRUE(testing::all_close(values(ty), y, 0, 0)) << c.name << " " << dtype_name(dt);
      EXPECT_EQ(ti.to_vector<int32_t>(), idx) << c.name;
      const Tensor tdx = nan_tensor(x.shape(), dt, device());
      kernels::max_pool2d_backward(Context::of(x), dy, ti, c.p, tdx);
      EXPECT_TRUE(testing::all_close(values(tdx), dx, tol(dt), tol(dt)))
          << c.name << " backward " << dtype_name(dt);
    }
}

TEST_P(PoolTest, AvgPoolMatchesNaive) {
  uint64_t seed = 100;
  for (DType dt : {DType::kFloat32, DType::kFloat64})
    for (const PoolCase& c : cases()) {
      const Ref ref(c);
      const Tensor x = random_tensor({c.n, c.c, c.h, c.w}, seed++, dt, device());
      const Tensor dy = random_tensor({c.n, c.c, ref.ho, ref.wo}, seed++, dt, device());
      const auto vx = values(x), vdy = values(dy);
      const double div = static_cast<double>(c.p.kh * c.p.kw);  // count_include_pad
      std::vector<double> y(ref.out_numel(), 0.0), dx(ref.in_numel(), 0.0);
      ref.windows([&](int64_t o, int64_t i) {
        y[o] += vx[i] / div;
        dx[i] += vdy[o] / div;
      });
      const Tensor ty = nan_tensor(dy.shape(), dt, device());
      kernels::avg_pool2d_forward(Context::of(x), x, c.p, ty);
      EXPECT_TRUE(testing::all_close(values(ty), y, tol(dt), tol(dt)))
          << c.name << " " << dtype_name(dt);
      const Tensor tdx = nan_tensor(x.shape(), dt, device());
      kernels::avg_pool2d_backward(Context::of(x), dy, c.p, tdx);
      EXPECT_TRUE(testing::all_close(values(tdx), dx, tol(dt), tol(dt)))
          << c.name << " backward " << dtype_name(dt);
    }
}

TEST_P(PoolTest, MaxPoolTiesGoToFirstAndNanPropagates) {
  // A 2 x 6 plane, three 2x2 windows: [1 1; 1 1] ties -> the first, index 0; [0 NaN; 5 NaN] ->
  // NaN at the first NaN, index 3; [NaN 0; 9 1] -> NaN at index 4 (a NaN beats the later 9).
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (DType dt : {DType::kFloat32, DType::kFloat64}) {
    const std::vector<double> v = {1, 1, 0, nan, nan, 0,  //
                                   1, 1, 5, nan, 9,   1};
    const Tensor x = Tensor::from_vector<double>(v, {1, 1, 2, 6}, Device::cpu());
    const Tensor xd = cast(x, dt).to(device());
    const Tensor y = nan_tensor({1, 1, 1, 3}, dt, device());
    const Tensor idx = Tensor::empty({1, 1, 1, 3}, DType::kInt32, device());
    kernels::max_pool2d_forward(Context::of(xd), xd, Pool2dParams::square(2), y, idx);
    const auto vy = values(y);
    EXPECT_EQ(vy[0], 1.0);
    EXPECT_TRUE(std::isnan(vy[1]));
    EXPECT_TRUE(std::isnan(vy[2]));
    EXPECT_EQ(idx.to_vector<int32_t>(), (std::vector<int32_t>{0, 3, 4}));
  }
}

// Ties and NaNs everywhere (values from {0, 1, 2, NaN}), every case: the winner is the first
// element of the window in row-major order that no later element beats, where a NaN beats any
// number and nothing beats a NaN; y and the index both follow it.
TEST_P(PoolTest, MaxPoolTiesAndNansFollowTheRuleInEveryCase) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  uint64_t state = 12345;
  for (DType dt : {DType::kFloat32, DType::kFloat64})
    for (const PoolCase& c : cases()) {
      const Ref ref(c);
      std::vector<double> v(static_cast<size_t>(ref.in_numel()));
      for (double& e : v) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        const int k = static_cast<int>((state >> 33) % 7);  // NaN 1 in 7
        e = k == 6 ? nan : static_cast<double>(k % 3);
      }
      std::vector<double> y(ref.out_numel(), 0.0);
      std::vector<int32_t> idx(ref.out_numel(), -1);
      ref.windows([&](int64_t o, int64_t i) {
        const double b = y[o];
        if (idx[o] < 0 || v[i] > b || (std::isnan(v[i]) && !std::isnan(b))) {
          y[o] = v[i];
          idx[o] = static_cast<int32_t>(i % (c.h * c.w));
        }
      });
      const Tensor x = cast(Tensor::from_vector<double>(v, {c.n, c.c, c.h, c.w}, Device::cpu()), dt)
                           .to(device());
      const Tensor ty = nan_tensor({c.n, c.c, ref.ho, ref.wo}, dt, device());
      const Tensor ti = Tensor::empty(ty.shape(), DType::kInt32, device());
      kernels::max_pool2d_forward(Context::of(x), x, c.p, ty, ti);
      EXPECT_EQ(ti.to_vector<int32_t>(), idx) << c.name << " " << dtype_name(dt);
      const auto vy = values(ty);
      for (size_t o = 0; o < y.size(); ++o)
        if (std::isnan(y[o]) != std::isnan(vy[o]) || (!std::isnan(y[o]) && y[o] != vy[o])) {
          ADD_FAILURE() << c.name << " " << dtype_name(dt) << " output " << o << ": " << vy[o]
                        << ", expected " << y[o];
          break;
        }
    }
}

TEST_P(PoolTest, GlobalAvgPoolMatchesNaive) {
  for (DType dt : {DType::kFloat32, DType::kFloat64}) {
    const int64_t n = 3, c = 5, h = 7, w = 6;
    const Tensor x = random_tensor({n, c, h, w}, 42, dt, device());
    const Tensor dy = random_tensor({n, c}, 43, dt, device());
    const auto vx = values(x), vdy = values(dy);
    std::vector<double> y(n * c, 0.0), dx(vx.size());
    for (int64_t q = 0; q < n * c; ++q) {
      for (int64_t i = 0; i < h * w; ++i) y[q] += vx[q * h * w + i] / (h * w);
      for (int64_t i = 0; i < h * w; ++i) dx[q * h * w + i] = vdy[q] / (h * w);
    }
    const Tensor ty = nan_tensor({n, c}, dt, device());
    kernels::global_avg_pool_forward(Context::of(x), x, ty);
    EXPECT_TRUE(testing::all_close(values(ty), y, tol(dt), tol(dt)));
    const Tensor tdx = nan_tensor(x.shape(), dt, device());
    kernels::global_avg_pool_backward(Context::of(x), dy, tdx);
    EXPECT_TRUE(testing::all_close(values(tdx), dx, tol(dt), tol(dt)));
  }
}

CYCLONE_INSTANTIATE_DEVICE_TEST(PoolTest);

// The GPU computes max_pool2d's backward as a gather (pool::max_backward_at, no atomics), the CPU
// as a scatter; run the gather on the host too so that it is tested on machines with no GPU.
TEST(PoolMath, MaxBackwardGatherMatchesScatter) {
  uint64_t seed = 300;
  for (const PoolCase& c : cases()) {
    const Ref ref(c);
    const Tensor x = random_tensor({c.n, c.c, c.h, c.w}, seed++, DType::kFloat64);
    const Tensor dy = random_tensor({c.n, c.c, ref.ho, ref.wo}, seed++, DType::kFloat64);
    const Tensor y = Tensor::empty(dy.shape(), DType::kFloat64, Device::cpu());
    const Tensor idx = Tensor::empty(dy.shape(), DType::kInt32, Device::cpu());
    kernels::max_pool2d_forward(Context::of(x), x, c.p, y, idx);
    const Tensor dx = nan_tensor(x.shape(), DType::kFloat64, Device::cpu());
    kernels::max_pool2d_backward(Context::of(x), dy, idx, c.p, dx);
    const kernels::Pool2dGeometry g = kernels::pool2d_geometry("test", x.shape(), c.p);
    std::vector<double> gathered;
    const double* pdy = dy.data<double>();
    const int32_t* pi = idx.data<int32_t>();
    for (int64_t q = 0; q < c.n * c.c; ++q)
      for (int64_t ih = 0; ih < c.h; ++ih)
        for (int64_t iw = 0; iw < c.w; ++iw)
          gathered.push_back(kernels::pool::max_backward_at(pdy + q * ref.ho * ref.wo,
                                                            pi + q * ref.ho * ref.wo, g, ih, iw));
    EXPECT_TRUE(testing::all_close(gathered, values(dx), 1e-14, 1e-14)) << c.name;
  }
}

TEST(PoolCuda, ParityWithCpu) {
  CYCLONE_SKIP_IF_UNAVAILABLE(Device::cuda());
  uint64_t seed = 900;
  for (const PoolCase& c : cases()) {
    const Ref ref(c);
    const Tensor x = random_tensor({c.n, c.c, c.h, c.w}, seed++, DType::kFloat32, Device::cpu());
    const Tensor dy =
        random_tensor({c.n, c.c, ref.ho, ref.wo}, seed++, DType::kFloat32, Device::cpu());
    auto run = [&](Device d) {
      Context& ctx = Context::current(d);
      const Tensor xd = x.to(d), dyd = dy.to(d);
      const Tensor ym = nan_tensor(dy.shape(), DType::kFloat32, d);
      const Tensor idx = Tensor::empty(dy.shape(), DType::kInt32, d);
      const Tensor dxm = nan_tensor(x.shape(), DType::kFloat32, d);
      const Tensor ya = nan_tensor(dy.shape(), DType::kFloat32, d);
      const Tensor dxa = nan_tensor(x.shape(), DType::kFloat32, d);
      kernels::max_pool2d_forward(ctx, xd, c.p, ym, idx);
      kernels::max_pool2d_backward(ctx, dyd, idx, c.p, dxm);
      kernels::avg_pool2d_forward(ctx, xd, c.p, ya);
      kernels::avg_pool2d_backward(ctx, dyd, c.p, dxa);
      return std::vector<std::vector<double>>{values(ym), values(dxm), values(ya), values(dxa),
                                              values(cast(idx, DType::kFloat64))};
    };
    const auto a = run(Device::cpu()), b = run(Device::cuda());
    // The same per-element math in the same order (kernels/pool_math.h): equal up to the CPU's
    // and GPU's float rounding of the same operations.
    for (size_t k = 0; k < a.size(); ++k)
      EXPECT_TRUE(testing::all_close(b[k], a[k], 1e-6, 1e-7)) << c.name << " output " << k;
  }
}

// ---- errors ----

using ::cyclone::testing::expect_error;

TEST(PoolErrors, NamesShapeAndParameters) {
  const Tensor x = Tensor::zeros({1, 2, 3, 3}, DType::kFloat32, Device::cpu());
  const Tensor y = Tensor::empty({1, 2, 1, 1}, DType::kFloat32, Device::cpu());
  const Tensor i = Tensor::empty({1, 2, 1, 1}, DType::kInt32, Device::cpu());
  Context& ctx = Context::of(x);
  expect_error(
      [&] { kernels::max_pool2d_forward(ctx, x, Pool2dParams::square(4), y, i); },
      {"max_pool2d_forward", "output size", "input 3 x 3", "kernel (4, 4)", "stride (4, 4)"});
  expect_error([&] { kernels::avg_pool2d_forward(ctx, x, Pool2dParams::square(2, 1, 2), y); },
               {"avg_pool2d_forward", "at most half", "padding (2, 2)", "[1, 2, 3, 3]"});
  expect_error([&] { kernels::max_pool2d_forward(ctx, x, Pool2dParams::square(2), y, y); },
               {"indices must be int32"});
  const Tensor x3 = Tensor::zeros({2, 3, 3}, DType::kFloat32, Device::cpu());
  expect_error([&] { kernels::global_avg_pool_forward(ctx, x3, y); },
               {"[N, C, H, W]", "[2, 3, 3]"});
}

}  // namespace
}  // namespace cyclone
