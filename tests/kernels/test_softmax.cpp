// Softmax family against naive double computations on every device: odd class counts on both
// sides of the CUDA warp/block switch (1, 7, 31, 1025, 3000), rank-3 inputs, rows summing to 1,
// huge logits, the fused cross-entropy (with label smoothing, PyTorch's formula) and its backward,
// bad labels, argmax and top-k with ties; and CPU-vs-CUDA parity.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "common/test_util.h"

namespace cyclone {
namespace {

using testing::all_close;
using testing::DeviceTest;
using testing::nan_tensor;
using testing::random_tensor;
using testing::random_values;
using testing::values;

const Shape kShapes[] = {{1, 1}, {3, 7}, {5, 31}, {4, 1025}, {3, 3000}, {2, 3, 65}};

double rtol(DType dt) { return dt == DType::kFloat32 ? 1e-5 : 1e-12; }
double atol(DType dt) { return dt == DType::kFloat32 ? 1e-6 : 1e-14; }

// Row-wise naive references in double (x viewed as [rows, classes]).
struct RowRef {
  int64_t rows, classes;
  explicit RowRef(const Shape& s) : rows(s.numel() / s[-1]), classes(s[-1]) {}
};

std::vector<double> naive_log_softmax(const std::vector<double>& x, RowRef v) {
  std::vector<double> y(x.size());
  for (int64_t r = 0; r < v.rows; ++r) {
    const double* px = x.data() + r * v.classes;
    const double m = *std::max_element(px, px + v.classes);
    double s = 0;
    for (int64_t c = 0; c < v.classes; ++c) s += std::exp(px[c] - m);
    for (int64_t c = 0; c < v.classes; ++c) y[r * v.classes + c] = px[c] - m - std::log(s);
  }
  return y;
}

std::vector<double> naive_softmax(const std::vector<double>& x, RowRef v) {
  auto y = naive_log_softmax(x, v);
  for (double& e : y) e = std::exp(e);
  return y;
}

// The smoothed target distribution q of torch.nn.CrossEntropyLoss(label_smoothing=eps).
std::vector<double> target(const std::vector<int32_t>& labels, int64_t classes, double eps) {
  std::vector<double> q(labels.size() * classes, eps / static_cast<double>(classes));
  for (size_t r = 0; r < labels.size(); ++r) q[r * classes + labels[r]] += 1 - eps;
  return q;
}

std::vector<int32_t> random_labels(int64_t rows, int64_t classes, uint64_t seed) {
  std::vector<int32_t> l;
  for (double u : random_values(rows, seed, 0, static_cast<double>(classes)))
    l.push_back(std::min<int32_t>(static_cast<int32_t>(u), static_cast<int32_t>(classes - 1)));
  return l;
}

using ::cyclone::testing::expect_error;

class SoftmaxTest : public DeviceTest {};

TEST_P(SoftmaxTest, ForwardMatchesNaiveAndRowsSumToOne) {
  uint64_t seed = 1;
  for (DType dt : {DType::kFloat32, DType::kFloat64})
    for (const Shape& s : kShapes) {
      const RowRef v(s);
      const Tensor x = random_tensor(s, seed++, dt, device(), -5, 5);
      const Tensor y = nan_tensor(s, dt, device());
      const Tensor ly = nan_tensor(s, dt, device());
      kernels::softmax_forward(Context::of(x), x, y);
      kernels::log_softmax_forward(Context::of(x), x, ly);
      EXPECT_TRUE(all_close(values(y), naive_softmax(values(x), v), rtol(dt), atol(dt)))
          << dtype_name(dt) << " " << s;
      EXPECT_TRUE(all_close(values(ly), naive_log_softmax(values(x), v), rtol(dt), 10 * atol(dt)))
          << dtype_name(dt) << " " << s;
      const auto vy = values(y);
      for (int64_t r = 0; r < v.rows; ++r) {
        double sum = 0;
        for (int64_t c = 0; c < v.classes; ++c) sum += vy[r * v.classes + c];
        EXPECT_NEAR(sum, 1.0, dt == DType::kFloat32 ? 1e-5 : 1e-12) << s << " row " << r;
      }
    }
}

TEST_P(SoftmaxTest, HugeLogitsDoNotOverflow) {
  for (DType dt : {DType::kFloat32, DType::kFloat64})
    for (int64_t classes : {7, 1025}) {
      std::vector<double> x(2 * classes);
      for (int64_t c = 0; c < classes; ++c) {
        x[c] = 1e4 - static_cast<double>(c % 5);  // exp(1e4) overflows without the max shift
        x[classes + c] = -1e4 + static_cast<double>(c % 3);
      }
      const Shape s{2, classes};
      const Tensor t = dt == DType::kFloat64
                           ? Tensor::from_vector<double>(x, s, device())
                           : Tensor::from_vector<float>({x.begin(), x.end()}, s, device());
      const Tensor y = nan_tensor(s, dt, device()), ly = nan_tensor(s, dt, device());
      kernels::softmax_forward(Context::of(t), t, y);
      kernels::log_softmax_forward(Context::of(t), t, ly);
      EXPECT_TRUE(all_close(values(y), naive_softmax(values(t), RowRef(s)), 1e-5, 1e-6));
      EXPECT_TRUE(all_close(values(ly), naive_log_softmax(values(t), RowRef(s)), 1e-5, 1e-5));
      // And the loss stays finite.
      const std::vector<int32_t> labels{3, 1};
      const Tensor lt = Tensor::from_vector<int32_t>(labels, {2}, device());
      const Tensor loss = nan_tensor({1}, dt, device()), lse = nan_tensor({2}, dt, device());
      kernels::softmax_cross_entropy_forward(Context::of(t), t, lt, 0.1, loss, lse);
      EXPECT_TRUE(std::isfinite(loss.item()));
    }
}

TEST_P(SoftmaxTest, BackwardMatchesNaive) {
  uint64_t seed = 50;
  for (DType dt : {DType::kFloat32, DType::kFloat64})
    for (const Shape& s : kShapes) {
      const RowRef v(s);
      const Tensor x = random_tensor(s, seed++, dt, device(), -3, 3);
      const Tensor dy = random_tensor(s, seed++, dt, device());
      const Tensor y = Tensor::empty(s, dt, device()), ly = Tensor::empty(s, dt, device());
      Context& ctx = Context::of(x);
      kernels::softmax_forward(ctx, x, y);
      kernels::log_softmax_forward(ctx, x, ly);
      const Tensor dx = nan_tensor(s, dt, device()), ldx = nan_tensor(s, dt, device());
      kernels::softmax_backward(ctx, y, dy, dx);
      kernels::log_softmax_backward(ctx, ly, dy, ldx);
      // Naive: the Jacobian-vector products written out with double softmax values.
      const auto p = naive_softmax(values(x), v);
      const auto g = values(dy);
      std::vector<double> ref(p.size()), lref(p.size());
      for (int64_t r = 0; r < v.rows; ++r) {
        double dot = 0, sum = 0;
        for (int64_t c = 0; c < v.classes; ++c) {
          dot += g[r * v.classes + c] * p[r * v.classes + c];
          sum += g[r * v.classes + c];
        }
        for (int64_t c = 0; c < v.classes; ++c) {
          const int64_t i = r * v.classes + c;
          ref[i] = p[i] * (g[i] - dot);
          lref[i] = g[i] - p[i] * sum;
        }
      }
      EXPECT_TRUE(all_close(values(dx), ref, 1e-4, 1e-6)) << dtype_name(dt) << " " << s;
      EXPECT_TRUE(all_close(values(ldx), lref, 1e-4, dt == DType::kFloat32 ? 1e-5 : 1e-12))
          << dtype_name(dt) << " " << s;
    }
}

TEST_P(SoftmaxTest, CrossEntropyMatchesNaiveWithAndWithoutSmoothing) {
  uint64_t seed = 200;
  for (DType dt : {DType::kFloat32, DType::kFloat64})
    for (double eps : {0.0, 0.1})
      for (Shape s : {Shape{1, 1}, Shape{5, 7}, Shape{33, 31}, Shape{3, 1025}, Shape{2, 3000}}) {
        const int64_t rows = s[0], classes = s[1];
        const Tensor x = random_tensor(s, seed++, dt, device(), -4, 4);
        const auto labels = random_labels(rows, classes, seed++);
        const Tensor lt = Tensor::from_vector<int32_t>(labels, {rows}, device());
        const Tensor loss = nan_tensor({1}, dt, device()), lse = nan_tensor({rows}, dt, device());
        Context& ctx = Context::of(x);
        kernels::softmax_cross_entropy_forward(ctx, x, lt, eps, loss, lse);

        // Independent reference: -sum q log p with q built explicitly, averaged over rows.
        const auto vx = values(x);
        const auto logp = naive_log_softmax(vx, RowRef(s));
        const auto q = target(labels, classes, eps);
        double ref = 0;
        std::vector<double> ref_lse(rows);
        for (int64_t r = 0; r < rows; ++r) {
          for (int64_t c = 0; c < classes; ++c) ref -= q[r * classes + c] * logp[r * classes + c];
          ref_lse[r] = vx[r * classes] - logp[r * classes];
        }
        ref /= static_cast<double>(rows);
        EXPECT_NEAR(loss.item(), ref, rtol(dt) * 10 * std::max(1.0, std::fabs(ref)))
            << dtype_name(dt) << " eps " << eps << " " << s;
        EXPECT_TRUE(all_close(values(lse), ref_lse, rtol(dt), atol(dt)));

        // Backward with an upstream gradient held on the device.
        const double up = 0.7;
        const Tensor dloss = dt == DType::kFloat64
                                 ? Tensor::from_vector<double>({up}, {1}, device())
                                 : Tensor::from_vector<float>({float(up)}, {1}, device());
        const Tensor dx = nan_tensor(s, dt, device());
        kernels::softmax_cross_entropy_backward(ctx, x, lt, eps, lse, dloss, dx);
        const auto p = naive_softmax(vx, RowRef(s));
        std::vector<double> gref(p.size());
        for (size_t i = 0; i < p.size(); ++i) gref[i] = (p[i] - q[i]) * up / rows;
        EXPECT_TRUE(all_close(values(dx), gref, 1e-4, dt == DType::kFloat32 ? 1e-7 : 1e-14))
            << dtype_name(dt) << " eps " << eps << " " << s;
      }
}

// A masked logit (-inf) away from the label: the loss is finite without label smoothing (as
// torch.nn.functional.cross_entropy), and the masked class gets no gradient. Rows short (one warp)
// and long (one block) on CUDA.
TEST_P(SoftmaxTest, CrossEntropyIgnoresMaskedLogitsWithoutSmoothing) {
  for (DType dt : {DType::kFloat32, DType::kFloat64})
    for (int64_t classes : {5, 1500}) {
      const Shape s{2, classes};
      std::vector<double> x = random_values(s.numel(), 77, -2, 2);
      x[1] = -std::numeric_limits<double>::infinity();            // row 0, class 1
      x[classes + 3] = -std::numeric_limits<double>::infinity();  // row 1, class 3
      const std::vector<int32_t> labels{0, 2};
      const Tensor t = dt == DType::kFloat64
                           ? Tensor::from_vector<double>(x, s, device())
                           : Tensor::from_vector<float>({x.begin(), x.end()}, s, device());
      const Tensor lt = Tensor::from_vector<int32_t>(labels, {2}, device());
      const Tensor loss = nan_tensor({1}, dt, device()), lse = nan_tensor({2}, dt, device());
      Context& ctx = Context::of(t);
      kernels::softmax_cross_entropy_forward(ctx, t, lt, 0.0, loss, lse);
      const auto logp = naive_log_softmax(values(t), RowRef(s));
      const double ref = -(logp[0] + logp[classes + 2]) / 2;
      EXPECT_NEAR(loss.item(), ref, rtol(dt) * 10 * std::max(1.0, std::fabs(ref)))
          << dtype_name(dt) << " " << s;
      const Tensor dloss = dt == DType::kFloat64
                               ? Tensor::from_vector<double>({1.0}, {1}, device())
                               : Tensor::from_vector<float>({1.0f}, {1}, device());
      const Tensor dx = nan_tensor(s, dt, device());
      kernels::softmax_cross_entropy_backward(ctx, t, lt, 0.0, lse, dloss, dx);
      const auto g = values(dx);
      for (double v : g) EXPECT_TRUE(std::isfinite(v)) << dtype_name(dt) << " " << s;
      EXPECT_EQ(g[1], 0.0);
      EXPECT_EQ(g[classes + 3], 0.0);
    }
}

TEST_P(SoftmaxTest, BadLabelIsReported) {
  const Tensor x = random_tensor({3, 10}, 9, DType::kFloat32, device());
  for (int32_t bad : {12, -1}) {
    const Tensor lt = Tensor::from_vector<int32_t>({0, 5, bad}, {3}, device());
    const Tensor loss = Tensor::empty({1}, DType::kFloat32, device());
    const Tensor lse = Tensor::empty({3}, DType::kFloat32, device());
    Context& ctx = Context::of(x);
    if (device().is_cpu()) {
      expect_error([&] { kernels::softmax_cross_entropy_forward(ctx, x, lt, 0, loss, lse); },
                   {"row 2", std::to_string(bad), "[0, 10)"});
      const Tensor count = Tensor::empty({1}, DType::kInt32, device());
      expect_error([&] { kernels::topk_correct(ctx, x, lt, 1, count); },
                   {"row 2", std::to_string(bad)});
    } else {
      // The GPU does not stop to look (unless CYCLONE_SYNC=1, which makes it an Error): the loss
      // turns NaN so that a trainer's non-finite check sees it.
      try {
        kernels::softmax_cross_entropy_forward(ctx, x, lt, 0, loss, lse);
        EXPECT_TRUE(std::isnan(loss.item()));
      } catch (const Error& e) {
        EXPECT_NE(e.message().find("row 2"), std::string::npos) << e.message();
      }
    }
  }
}

// The backward of a bad label. kernels/softmax.h documents the forward only (an Error on the CPU,
// a NaN loss on the GPU); the backward keeps the same split: the CPU checks every row's label as
// the forward does (an Error naming the row and the value), and the CUDA kernel, which has no flag
// to raise, writes NaN over the bad row's gradient (a non-finite gradient norm, which the step
// guard skips) and the right gradient everywhere else. The lse of rows 0 and 1 is the forward's
// (a CUDA forward writes it for every row, bad or not, before any debug-mode Error).
TEST_P(SoftmaxTest, BadLabelInTheBackwardIsReported) {
  const Tensor x = random_tensor({3, 10}, 9, DType::kFloat32, device());
  for (int32_t bad : {12, -1}) {
    const std::vector<int32_t> labels{0, 5, bad};
    const Tensor lt = Tensor::from_vector<int32_t>(labels, {3}, device());
    const Tensor one = Tensor::from_vector<float>({1.f}, {1}, device());
    const Tensor dx = nan_tensor({3, 10}, DType::kFloat32, device());
    Context& ctx = Context::of(x);
    if (device().is_cpu()) {
      // Any lse: the label is checked before it is read.
      const Tensor lse = Tensor::zeros({3}, DType::kFloat32, device());
      expect_error([&] { kernels::softmax_cross_entropy_backward(ctx, x, lt, 0.1, lse, one, dx); },
                   {"softmax_cross_entropy_backward", "row 2", std::to_string(bad), "[0, 10)"});
      continue;
    }
    const Tensor loss = Tensor::empty({1}, DType::kFloat32, device());
    const Tensor lse = nan_tensor({3}, DType::kFloat32, device());
    try {
      kernels::softmax_cross_entropy_forward(ctx, x, lt, 0.1, loss, lse);
    } catch (const Error&) {  // CYCLONE_SYNC=1: the forward's flag was read (see above)
    }
    kernels::softmax_cross_entropy_backward(ctx, x, lt, 0.1, lse, one, dx);
    const auto g = values(dx);
    const auto p = naive_softmax(values(x), RowRef(Shape{3, 10}));
    const auto q = target({0, 5}, 10, 0.1);
    for (int64_t c = 0; c < 10; ++c) {
      EXPECT_TRUE(std::isnan(g[20 + c])) << "label " << bad << " class " << c << ": " << g[20 + c];
      for (int64_t r = 0; r < 2; ++r)
        EXPECT_NEAR(g[r * 10 + c], (p[r * 10 + c] - q[r * 10 + c]) / 3, 1e-6)
            << "label " << bad << " row " << r << " class " << c;
    }
  }
}

TEST_P(SoftmaxTest, ArgumentErrorsNameShapes) {
  const Tensor x = random_tensor({4, 6}, 1, DType::kFloat32, device());
  const Tensor loss = Tensor::empty({1}, DType::kFloat32, device());
  const Tensor lse = Tensor::empty({4}, DType::kFloat32, device());
  Context& ctx = Context::of(x);
  const Tensor short_labels = Tensor::from_vector<int32_t>({0, 1, 2}, {3}, device());
  expect_error([&] { kernels::softmax_cross_entropy_forward(ctx, x, short_labels, 0, loss, lse); },
               {"softmax_cross_entropy", "[4, 6]", "[3]"});
  const Tensor float_labels = random_tensor({4}, 2, DType::kFloat32, device());
  expect_error([&] { kernels::softmax_cross_entropy_forward(ctx, x, float_labels, 0, loss, lse); },
               {"int32"});
  const Tensor labels = Tensor::from_vector<int32_t>({0, 1, 2, 3}, {4}, device());
  expect_error([&] { kernels::softmax_cross_entropy_forward(ctx, x, labels, 1.5, loss, lse); },
               {"label_smoothing", "1.5"});
  const Tensor y = Tensor::empty({4, 5}, DType::kFloat32, device());
  expect_error([&] { kernels::softmax_forward(ctx, x, y); }, {"softmax", "[4, 6]", "[4, 5]"});
  const Tensor count = Tensor::empty({1}, DType::kInt32, device());
  expect_error([&] { kernels::topk_correct(ctx, x, labels, 7, count); }, {"k", "7", "[4, 6]"});
}

// Logits drawn from a few values so that ties are common.
Tensor tied_logits(const Shape& s, uint64_t seed, DType dt, Device d) {
  std::vector<double> v = random_values(s.numel(), seed, 0, 4);
  for (double& e : v) e = std::floor(e);
  return dt == DType::kFloat64 ? Tensor::from_vector<double>(v, s, d)
                               : Tensor::from_vector<float>({v.begin(), v.end()}, s, d);
}

TEST_P(SoftmaxTest, ArgmaxAndTopkMatchNaiveWithTies) {
  uint64_t seed = 300;
  for (DType dt : {DType::kFloat32, DType::kFloat64})
    for (Shape s : {Shape{1, 1}, Shape{9, 7}, Shape{40, 31}, Shape{5, 1025}, Shape{3, 3000}}) {
      const int64_t rows = s[0], classes = s[1];
      for (bool ties : {false, true}) {
        const Tensor x =
            ties ? tied_logits(s, seed++, dt, device()) : random_tensor(s, seed++, dt, device());
        const auto vx = values(x);
        const Tensor am = Tensor::empty({rows}, DType::kInt32, device());
        kernels::argmax_rows(Context::of(x), x, am);
        const auto got = values(am);
        for (int64_t r = 0; r < rows; ++r) {
          const double* row = vx.data() + r * classes;
          EXPECT_EQ(got[r], std::max_element(row, row + classes) - row) << s << " row " << r;
        }
        const auto labels = random_labels(rows, classes, seed++);
        const Tensor lt = Tensor::from_vector<int32_t>(labels, {rows}, device());
        for (int k : {1, 3, 5}) {
          if (k > classes) continue;
          const Tensor count = Tensor::empty({1}, DType::kInt32, device());
          kernels::topk_correct(Context::of(x), x, lt, k, count);
          // Naive: sort the indices by (value descending, index ascending), take the first k.
          int64_t ref = 0;
          for (int64_t r = 0; r < rows; ++r) {
            std::vector<int64_t> idx(classes);
            for (int64_t c = 0; c < classes; ++c) idx[c] = c;
            const double* row = vx.data() + r * classes;
            std::stable_sort(idx.begin(), idx.end(),
                             [row](int64_t a, int64_t b) { return row[a] > row[b]; });
            ref += std::find(idx.begin(), idx.begin() + k, labels[r]) != idx.begin() + k;
          }
          EXPECT_EQ(count.item<int32_t>(), ref) << s << " k " << k << " ties " << ties;
        }
      }
    }
}

CYCLONE_INSTANTIATE_DEVICE_TEST(SoftmaxTest);

// ---- CUDA only: the same random inputs on both devices ----

TEST(SoftmaxCuda, MatchesCpu) {
  CYCLONE_SKIP_IF_UNAVAILABLE(Device::cuda());
  const Device g = Device::cuda();
  for (Shape s : {Shape{64, 10}, Shape{17, 1000}, Shape{8, 4099}}) {
    const int64_t rows = s[0];
    const Tensor x = random_tensor(s, 77, DType::kFloat32, Device::cpu(), -6, 6);
    const Tensor xg = x.to(g);
    const Tensor y = Tensor::empty(s, DType::kFloat32, Device::cpu()),
                 yg = Tensor::empty(s, DType::kFloat32, g);
    kernels::log_softmax_forward(Context::of(x), x, y);
    kernels::log_softmax_forward(Context::of(xg), xg, yg);
    EXPECT_TRUE(all_close(yg.to(Device::cpu()), y, 1e-5, 1e-5)) << s;
    const auto labels = random_labels(rows, s[1], 78);
    const Tensor lt = Tensor::from_vector<int32_t>(labels, {rows}, Device::cpu());
    const Tensor ltg = lt.to(g);
    const Tensor loss = Tensor::empty({1}, DType::kFloat32, Device::cpu());
    const Tensor lse = Tensor::empty({rows}, DType::kFloat32, Device::cpu());
    const Tensor lossg = Tensor::empty({1}, DType::kFloat32, g);
    const Tensor lseg = Tensor::empty({rows}, DType::kFloat32, g);
    kernels::softmax_cross_entropy_forward(Context::of(x), x, lt, 0.1, loss, lse);
    kernels::softmax_cross_entropy_forward(Context::of(xg), xg, ltg, 0.1, lossg, lseg);
    EXPECT_NEAR(lossg.item(), loss.item(), 1e-5 * std::fabs(loss.item())) << s;
    const Tensor one = Tensor::from_vector<float>({1.f}, {1}, Device::cpu());
    const Tensor dx = Tensor::empty(s, DType::kFloat32, Device::cpu()),
                 dxg = Tensor::empty(s, DType::kFloat32, g);
    kernels::softmax_cross_entropy_backward(Context::of(x), x, lt, 0.1, lse, one, dx);
    kernels::softmax_cross_entropy_backward(Context::of(xg), xg, ltg, 0.1, lseg, one.to(g), dxg);
    EXPECT_TRUE(all_close(dxg.to(Device::cpu()), dx, 1e-4, 1e-8)) << s;
  }
}

// More rows than the capped grid has row groups. RowMap::blocks clamps the grid to 65535 blocks;
// with 3 classes every row kernel (softmax / log_softmax forward and backward, the cross-entropy
// rows, argmax, top-k) takes the warp group, 8 rows per block, so 65535 blocks cover 524,280 rows
// and rows 524,280..599,999 are their groups' second trip round the row loop. mean_kernel (one
// block of 512 threads) loops for any rows > 512, and the cross-entropy backward's grid-stride
// launch (grid_for(1.8 M) = 4224 blocks of 256) takes its elements in two passes.
TEST(SoftmaxCuda, MoreRowsThanTheGridMatchesCpu) {
  CYCLONE_SKIP_IF_UNAVAILABLE(Device::cuda());
  const Device c = Device::cpu(), g = Device::cuda();
  const Shape s{600000, 3};
  const int64_t rows = s[0];
  const Tensor x = random_tensor(s, 81, DType::kFloat32, c, -6, 6), xg = x.to(g);
  const Tensor dy = random_tensor(s, 82, DType::kFloat32, c, -1, 1), dyg = dy.to(g);
  auto empty = [&](Device d) { return nan_tensor(s, DType::kFloat32, d); };
  auto back = [&](const Tensor& t) { return t.to(c); };
  for (bool log : {false, true}) {
    const Tensor y = empty(c), yg = empty(g), dx = empty(c), dxg = empty(g);
    if (log) {
      kernels::log_softmax_forward(Context::of(x), x, y);
      kernels::log_softmax_forward(Context::of(xg), xg, yg);
      kernels::log_softmax_backward(Context::of(x), y, dy, dx);
      kernels::log_softmax_backward(Context::of(xg), yg, dyg, dxg);
    } else {
      kernels::softmax_forward(Context::of(x), x, y);
      kernels::softmax_forward(Context::of(xg), xg, yg);
      kernels::softmax_backward(Context::of(x), y, dy, dx);
      kernels::softmax_backward(Context::of(xg), yg, dyg, dxg);
    }
    const char* what = log ? "log_softmax" : "softmax";
    EXPECT_TRUE(all_close(back(yg), y, 1e-5, log ? 1e-5 : 1e-6)) << what;
    EXPECT_TRUE(all_close(back(dxg), dx, 1e-4, 1e-5)) << what << " backward";
  }

  const auto labels = random_labels(rows, s[1], 83);
  const Tensor lt = Tensor::from_vector<int32_t>(labels, {rows}, c), ltg = lt.to(g);
  const Tensor loss = nan_tensor({1}, DType::kFloat32, c),
               lossg = nan_tensor({1}, DType::kFloat32, g);
  const Tensor lse = nan_tensor({rows}, DType::kFloat32, c),
               lseg = nan_tensor({rows}, DType::kFloat32, g);
  kernels::softmax_cross_entropy_forward(Context::of(x), x, lt, 0.1, loss, lse);
  kernels::softmax_cross_entropy_forward(Context::of(xg), xg, ltg, 0.1, lossg, lseg);
  EXPECT_NEAR(lossg.item(), loss.item(), 1e-5 * std::fabs(loss.item()));
  EXPECT_TRUE(all_close(back(lseg), lse, 1e-5, 1e-5)) << "lse";
  const Tensor up = Tensor::from_vector<float>({0.7f}, {1}, c);
  const Tensor dx = empty(c), dxg = empty(g);
  kernels::softmax_cross_entropy_backward(Context::of(x), x, lt, 0.1, lse, up, dx);
  kernels::softmax_cross_entropy_backward(Context::of(xg), xg, ltg, 0.1, lseg, up.to(g), dxg);
  // |dx| <= 0.7 / 600000 ~ 1.2e-6: the absolute floor is 1e-5 of that.
  EXPECT_TRUE(all_close(back(dxg), dx, 1e-4, 1e-11)) << "cross-entropy backward";

  const Tensor am = Tensor::empty({rows}, DType::kInt32, c),
               amg = Tensor::empty({rows}, DType::kInt32, g);
  kernels::argmax_rows(Context::of(x), x, am);
  kernels::argmax_rows(Context::of(xg), xg, amg);
  EXPECT_EQ(amg.to_vector<int32_t>(), am.to_vector<int32_t>());
  for (int k : {1, 2}) {
    const Tensor n = Tensor::empty({1}, DType::kInt32, c),
                 ng = Tensor::empty({1}, DType::kInt32, g);
    kernels::topk_correct(Context::of(x), x, lt, k, n);
    kernels::topk_correct(Context::of(xg), xg, ltg, k, ng);
    EXPECT_EQ(ng.item<int32_t>(), n.item<int32_t>()) << "k " << k;
  }
}

}  // namespace
}  // namespace cyclone
