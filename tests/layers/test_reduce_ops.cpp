// Differentiable reductions: gradient checks (float64, CPU) for every op and axis, forward shapes
// and values, torch's gradient routing for max (the argmax index along an axis, an even split
// among ties over every element), and CUDA-vs-CPU gradient parity in float32.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include "common/test_util.h"

namespace cyclone {
namespace {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

struct ReduceCase {
  std::string name;
  Shape shape;
  Fn fn;
};

std::vector<ReduceCase> reduce_cases() {
  using V = std::vector<Tensor>;
  std::vector<ReduceCase> cases = {
      {"sum_all", {3, 4}, [](const V& v) { return sum(v[0]); }},
      {"mean_all", {2, 3, 5}, [](const V& v) { return mean(v[0]); }},
      {"max_all", {2, 3, 5}, [](const V& v) { return max(v[0]); }},
      {"sum_all_of_one", {1}, [](const V& v) { return sum(v[0]); }},
      // Non-linear on top, so the incoming gradient differs per element.
      {"square_of_sum_all", {7}, [](const V& v) { return square(sum(v[0])); }},
      {"expand_axis",
       {3, 4},
       [](const V& v) {
         return expand_axis(v[0], {3, 5, 4}, 1);
       }},
      // The variance of each row: expand_axis broadcasts the row means back.
      {"row_variance",
       {4, 6},
       [](const V& v) {
         return mean(square(v[0] - expand_axis(mean(v[0], 1), v[0].shape(), 1)), 1);
       }},
  };
  const Shape s{3, 4, 5};
  const std::pair<int, const char*> axes[] = {
      {0, "axis0"}, {1, "axis1"}, {2, "axis2"}, {-1, "axis_last"}};
  for (const auto& [axis_value, axis_name] : axes)
    for (bool keep : {false, true}) {
      const int axis = axis_value;  // a lambda may not capture a structured binding (clang 14)
      const std::string tag = std::string(axis_name) + (keep ? "_keepdim" : "");
      cases.push_back({"sum_" + tag, s, [=](const V& v) { return sum(v[0], axis, keep); }});
      cases.push_back({"mean_" + tag, s, [=](const V& v) { return mean(v[0], axis, keep); }});
      cases.push_back({"max_" + tag, s, [=](const V& v) { return max(v[0], axis, keep); }});
      cases.push_back(
          {"square_of_sum_" + tag, s, [=](const V& v) { return square(sum(v[0], axis, keep)); }});
    }
  return cases;
}

std::string case_name(const ::testing::TestParamInfo<ReduceCase>& i) { return i.param.name; }
// So that gtest (and ctest's test names) print the case's name rather than its bytes.
void PrintTo(const ReduceCase& c, std::ostream* os) { *os << c.name; }

class ReduceOpsGradCheck : public ::testing::TestWithParam<ReduceCase> {};

TEST_P(ReduceOpsGradCheck, AnalyticMatchesFiniteDifferences) {
  const ReduceCase& c = GetParam();
  Tensor x = testing::random_tensor(c.shape, 200, DType::kFloat64, Device::cpu(), -1, 1);
  x.set_requires_grad();
  GradCheckResult r = gradcheck(c.fn, {x});
  EXPECT_TRUE(r.ok) << c.name << ": " << r.message;
  EXPECT_GT(r.checked, 0);
}

INSTANTIATE_TEST_SUITE_P(ReduceOps, ReduceOpsGradCheck, ::testing::ValuesIn(reduce_cases()),
                         case_name);

// The same forward and backward on the GPU in float32 must match the CPU's.
class ReduceOpsGradParity : public ::testing::TestWithParam<ReduceCase> {};

TEST_P(ReduceOpsGradParity, CudaGradientsMatchCpu) {
  if (!cuda_available()) GTEST_SKIP() << "no usable CUDA device on this machine";
  const ReduceCase& c = GetParam();
  auto run = [&](Device d) {
    Tensor x = testing::random_tensor(c.shape, 200, DType::kFloat32, Device::cpu(), -1, 1).to(d);
    x.set_requires_grad();
    Tensor y = c.fn({x});
    y.backward(full_like(y, 0.5));
    return std::vector<Tensor>{y.detach(), x.grad()};
  };
  auto cpu = run(Device::cpu());
  auto gpu = run(Device::cuda(0));
  for (size_t i = 0; i < cpu.size(); ++i)
    EXPECT_TRUE(testing::all_close(gpu[i], cpu[i], 1e-5, 1e-6)) << c.name << " output " << i;
}

INSTANTIATE_TEST_SUITE_P(ReduceOpsCuda, ReduceOpsGradParity, ::testing::ValuesIn(reduce_cases()),
                         case_name);

// ---- forward shapes and values ----

TEST(ReduceOps, ShapesFollowTorch) {
  Tensor x = testing::random_tensor({2, 3, 4}, 1, DType::kFloat64);
  EXPECT_EQ(sum(x).shape(), Shape{});
  EXPECT_EQ(sum(x).numel(), 1);
  EXPECT_EQ(mean(x).shape(), Shape{});
  EXPECT_EQ(max(x).shape(), Shape{});
  EXPECT_EQ(sum(x, 1).shape(), (Shape{2, 4}));
  EXPECT_EQ(sum(x, 1, true).shape(), (Shape{2, 1, 4}));
  EXPECT_EQ(mean(x, -1).shape(), (Shape{2, 3}));
  EXPECT_EQ(max(x, 0, true).shape(), (Shape{1, 3, 4}));
  EXPECT_EQ(argmax(x, 2).shape(), (Shape{2, 3}));
  EXPECT_EQ(argmax(x, 2).dtype(), DType::kInt32);
  EXPECT_EQ(sum(sum(x, 0), 0).shape(), Shape{4});
  EXPECT_EQ(sum(Tensor::zeros({5}, DType::kFloat64), 0).shape(), Shape{});
}

// backward() of a 16-bit one-element root seeds it with 1 in its own dtype: the gradient of
// sum(x) is all ones, of mean(x) 1/n (exact in both dtypes for n = 8).
TEST(ReduceOps, SixteenBitRootsBackpropagateOne) {
  for (DType dt : {DType::kBFloat16, DType::kFloat16}) {
    SCOPED_TRACE(dtype_name(dt));
    for (bool use_mean : {false, true}) {
      Tensor x = testing::random_tensor({8}, 3, dt, Device::cpu(), -1, 1);
      x.set_requires_grad();
      const Tensor root = use_mean ? mean(x) : sum(x);
      ASSERT_EQ(root.dtype(), dt);
      root.backward();
      ASSERT_TRUE(x.grad().defined());
      for (double g : testing::values(x.grad())) EXPECT_EQ(g, use_mean ? 0.125 : 1.0);
    }
  }
}

TEST(ReduceOps, ValuesMatchNaiveLoops) {
  Tensor x = testing::random_tensor({2, 3, 4}, 2, DType::kFloat64, Device::cpu(), -1, 1);
  const auto v = testing::values(x);
  double total = 0, biggest = -INFINITY;
  for (double e : v) total += e, biggest = std::max(biggest, e);
  EXPECT_NEAR(sum(x).item<double>(), total, 1e-12);
  EXPECT_NEAR(mean(x).item<double>(), total / 24, 1e-12);
  EXPECT_EQ(max(x).item<double>(), biggest);
  // Over axis 1 of [2, 3, 4]: out[o, i] over k < 3 of v[(o*3 + k)*4 + i].
  const auto s = testing::values(sum(x, 1)), m = testing::values(mean(x, 1, true)),
             mx = testing::values(max(x, 1));
  const auto am = argmax(x, 1).to_vector<int32_t>();
  for (int o = 0; o < 2; ++o)
    for (int i = 0; i < 4; ++i) {
      double acc = 0, best = -INFINITY;
      int arg = 0;
      for (int k = 0; k < 3; ++k) {
        const double e = v[(o * 3 + k) * 4 + i];
        acc += e;
        if (e > best) best = e, arg = k;
      }
      EXPECT_NEAR(s[o * 4 + i], acc, 1e-12);
      EXPECT_NEAR(m[o * 4 + i], acc / 3, 1e-12);
      EXPECT_EQ(mx[o * 4 + i], best);
      EXPECT_EQ(am[o * 4 + i], arg);
    }
}

// ---- gradient routing of max ----

TEST(ReduceOps, MaxOverAnAxisSendsTheGradientToTheArgmaxOnly) {
  // Rows with ties: torch.max(x, 1) returns the first maximum and its gradient goes there alone.
  Tensor x = Tensor::from_vector<double>({1, 3, 3, 2, 2, 0, -1, -5, 4}, {3, 3}, Device::cpu());
  x.set_requires_grad();
  Tensor y = max(x, 1);
  y.backward(Tensor::from_vector<double>({10, 20, 30}, {3}, Device::cpu()));
  const auto idx = argmax(x.detach(), 1).to_vector<int32_t>();
  std::vector<double> expected(9, 0.0);
  for (int r = 0; r < 3; ++r) expected[r * 3 + idx[r]] = 10.0 * (r + 1);
  EXPECT_EQ(idx, (std::vector<int32_t>{1, 0, 2}));
  EXPECT_EQ(testing::values(x.grad()), expected);

  // Along axis 0 (strided), keepdim.
  Tensor z = Tensor::from_vector<double>({5, 1, 5, 7, 0, 7}, {3, 2}, Device::cpu());
  z.set_requires_grad();
  max(z, 0, true).backward(Tensor::from_vector<double>({1, 2}, {1, 2}, Device::cpu()));
  EXPECT_EQ(testing::values(z.grad()), (std::vector<double>{1, 0, 0, 2, 0, 0}));
}

TEST(ReduceOps, MaxOfEverythingSplitsTheGradientAmongTies) {
  // torch.max(x) (no dim) uses evenly_distribute_backward.
  Tensor x = Tensor::from_vector<double>({1, 3, 3, -2, 3}, {5}, Device::cpu());
  x.set_requires_grad();
  mul(max(x), 6.0).backward();
  EXPECT_EQ(testing::values(x.grad()), (std::vector<double>{0, 2, 2, 0, 2}));

  // A NaN maximum: the gradient goes to the NaN elements.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor n = Tensor::from_vector<double>({1, nan, 3, nan}, {4}, Device::cpu());
  n.set_requires_grad();
  Tensor y = max(n);
  EXPECT_TRUE(std::isnan(y.item<double>()));
  y.backward();
  EXPECT_EQ(testing::values(n.grad()), (std::vector<double>{0, 0.5, 0, 0.5}));
}

TEST(ReduceOps, ArgmaxIsNotDifferentiableAndSumToStillWorks) {
  Tensor x = testing::random_tensor({4, 5}, 3, DType::kFloat32, Device::cpu());
  x.set_requires_grad();
  Tensor a = argmax(x, 1);
  EXPECT_FALSE(a.requires_grad());
  EXPECT_TRUE(a.is_leaf());
  // The lead's sum_to reduces through reduce_all / reduce_channels.
  Tensor g = testing::random_tensor({2, 3, 4}, 4, DType::kFloat32, Device::cpu());
  const auto gv = testing::values(g);
  const auto c = testing::values(sum_to(g, {3}));
  for (int ch = 0; ch < 3; ++ch) {
    double s = 0;
    for (int b = 0; b < 2; ++b)
      for (int i = 0; i < 4; ++i) s += gv[(b * 3 + ch) * 4 + i];
    EXPECT_NEAR(c[ch], s, 1e-5);
  }
  double all = 0;
  for (double e : gv) all += e;
  EXPECT_NEAR(sum_to(g, {1}).item<float>(), all, 1e-5);
}

TEST(ReduceOps, BadAxisNamesTheOpTheAxisAndTheShape) {
  Tensor x = Tensor::zeros({2, 3}, DType::kFloat32, Device::cpu());
  for (const auto& f :
       std::vector<std::function<void()>>{[&] { sum(x, 2); }, [&] { mean(x, -3); },
                                          [&] { max(x, 5, true); }, [&] { argmax(x, 2); }}) {
    try {
      f();
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      const std::string m = e.message();
      EXPECT_NE(m.find("axis"), std::string::npos) << m;
      EXPECT_NE(m.find("[2, 3]"), std::string::npos) << m;
    }
  }
}

}  // namespace
}  // namespace cyclone
