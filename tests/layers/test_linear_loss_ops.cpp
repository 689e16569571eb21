// matmul / linear / softmax / log_softmax / cross_entropy: forward against naive loops, gradients
// against finite differences (float64 CPU), and CUDA float32 gradients against the CPU's.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "common/test_util.h"

namespace cyclone {
namespace {

using testing::random_tensor;
using testing::values;

// Labels for a [rows, classes] problem, on the device of `like`.
Tensor labels_for(const Tensor& like, int64_t rows, int64_t classes) {
  std::vector<int32_t> l;
  for (int64_t r = 0; r < rows; ++r) l.push_back(static_cast<int32_t>((r * 7 + 3) % classes));
  return Tensor::from_vector<int32_t>(l, {rows}, like.device());
}

struct Case {
  std::string name;
  std::vector<Shape> shapes;
  std::function<Tensor(const std::vector<Tensor>&)> fn;
};

std::vector<Case> cases() {
  std::vector<Case> c;
  // matmul: every transpose combination, 2-D and batched (both batched, either one shared).
  const int64_t batch = 2, m = 3, n = 4, k = 5;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      const Shape sa = ta ? Shape{k, m} : Shape{m, k};
      const Shape sb = tb ? Shape{n, k} : Shape{k, n};
      const Shape ba{batch, sa[0], sa[1]}, bb{batch, sb[0], sb[1]};
      const std::string t = std::string(ta ? "T" : "N") + (tb ? "T" : "N");
      auto mm = [ta, tb](const std::vector<Tensor>& x) { return matmul(x[0], x[1], ta, tb); };
      c.push_back({"matmul_2d_" + t, {sa, sb}, mm});
      c.push_back({"matmul_batched_" + t, {ba, bb}, mm});
      c.push_back({"matmul_shared_a_" + t, {sa, bb}, mm});
      c.push_back({"matmul_shared_b_" + t, {ba, sb}, mm});
    }
  c.push_back({"linear_bias", {{6, 5}, {4, 5}, {4}}, [](const std::vector<Tensor>& x) {
                 return linear(x[0], x[1], x[2]);
               }});
  c.push_back({"linear_no_bias", {{6, 5}, {4, 5}}, [](const std::vector<Tensor>& x) {
                 return linear(x[0], x[1]);
               }});
  c.push_back({"linear_rank3_bias", {{2, 3, 5}, {4, 5}, {4}}, [](const std::vector<Tensor>& x) {
                 return linear(x[0], x[1], x[2]);
               }});
  c.push_back({"softmax", {{4, 7}}, [](const std::vector<Tensor>& x) { return softmax(x[0]); }});
  c.push_back(
      {"softmax_rank3", {{2, 3, 5}}, [](const std::vector<Tensor>& x) { return softmax(x[0]); }});
  c.push_back(
      {"log_softmax", {{4, 7}}, [](const std::vector<Tensor>& x) { return log_softmax(x[0]); }});
  c.push_back({"log_softmax_rank3", {{2, 3, 5}}, [](const std::vector<Tensor>& x) {
                 return log_softmax(x[0]);
               }});
  for (double eps : {0.0, 0.1}) {
    c.push_back({eps == 0 ? "cross_entropy" : "cross_entropy_smoothed",
                 {{6, 5}},
                 [eps](const std::vector<Tensor>& x) {
                   return cross_entropy(x[0], labels_for(x[0], 6, 5), eps);
                 }});
  }
  // A composition: the loss of a linear layer, so gradients flow through several nodes.
  c.push_back(
      {"linear_then_cross_entropy", {{6, 5}, {3, 5}, {3}}, [](const std::vector<Tensor>& x) {
         return cross_entropy(linear(x[0], x[1], x[2]), labels_for(x[0], 6, 3), 0.1);
       }});
  return c;
}

// gtest prints a parameter in test names and failures: the case's name, not its bytes.
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

std::string case_name(const ::testing::TestParamInfo<Case>& i) { return i.param.name; }

class LinearLossGradCheck : public ::testing::TestWithParam<Case> {};

TEST_P(LinearLossGradCheck, AnalyticMatchesFiniteDifferences) {
  const Case& c = GetParam();
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < c.shapes.size(); ++i) {
    Tensor t = random_tensor(c.shapes[i], 300 + i, DType::kFloat64, Device::cpu(), -2, 2);
    t.set_requires_grad();
    inputs.push_back(t);
  }
  const GradCheckResult r = gradcheck(c.fn, inputs);
  EXPECT_TRUE(r.ok) << c.name << ": " << r.message;
  EXPECT_GT(r.checked, 0);
}

INSTANTIATE_TEST_SUITE_P(LinearLossOps, LinearLossGradCheck, ::testing::ValuesIn(cases()),
                         case_name);

class LinearLossGradParity : public ::testing::TestWithParam<Case> {};

TEST_P(LinearLossGradParity, CudaGradientsMatchCpu) {
  CYCLONE_SKIP_IF_UNAVAILABLE(Device::cuda());
  const Case& c = GetParam();
  auto run = [&](Device d) {
    std::vector<Tensor> inputs;
    for (size_t i = 0; i < c.shapes.size(); ++i) {
      Tensor t = random_tensor(c.shapes[i], 300 + i, DType::kFloat32, Device::cpu(), -2, 2).to(d);
      t.set_requires_grad();
      inputs.push_back(t);
    }
    Tensor y = c.fn(inputs);
    const Tensor g = random_tensor(y.shape(), 99, DType::kFloat32, Device::cpu()).to(d);
    y.backward(g);
    std::vector<Tensor> out{y.detach()};
    for (auto& t : inputs) out.push_back(t.grad());
    return out;
  };
  const auto cpu = run(Device::cpu());
  const auto gpu = run(Device::cuda(0));
  for (size_t i = 0; i < cpu.size(); ++i)
    EXPECT_TRUE(testing::all_close(gpu[i], cpu[i], 1e-4, 1e-5)) << c.name << " output " << i;
}

INSTANTIATE_TEST_SUITE_P(LinearLossOpsCuda, LinearLossGradParity, ::testing::ValuesIn(cases()),
                         case_name);

// ---- forward values ----

TEST(LinearLossOps, LinearMatchesNaive) {
  const Tensor x = random_tensor({3, 4}, 1, DType::kFloat64, Device::cpu());
  const Tensor w = random_tensor({2, 4}, 2, DType::kFloat64, Device::cpu());
  const Tensor b = random_tensor({2}, 3, DType::kFloat64, Device::cpu());
  const auto vx = values(x), vw = values(w), vb = values(b);
  const Tensor y = linear(x, w, b);
  ASSERT_EQ(y.shape(), (Shape{3, 2}));
  const auto vy = values(y);
  for (int i = 0; i < 3; ++i)
    for (int o = 0; o < 2; ++o) {
      double s = vb[o];
      for (int j = 0; j < 4; ++j) s += vx[i * 4 + j] * vw[o * 4 + j];
      EXPECT_NEAR(vy[i * 2 + o], s, 1e-12);
    }
  const Tensor x3 = random_tensor({2, 3, 4}, 4, DType::kFloat64, Device::cpu());
  EXPECT_EQ(linear(x3, w, b).shape(), (Shape{2, 3, 2}));
}

TEST(LinearLossOps, ShapeErrorsNameBothShapes) {
  const Tensor a = random_tensor({2, 3}, 1, DType::kFloat32, Device::cpu());
  const Tensor b = random_tensor({4, 5}, 2, DType::kFloat32, Device::cpu());
  try {
    (void)matmul(a, b);
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("matmul"), std::string::npos) << e.message();
    EXPECT_NE(e.message().find("[2, 3]"), std::string::npos) << e.message();
    EXPECT_NE(e.message().find("[4, 5]"), std::string::npos) << e.message();
  }
  try {
    (void)linear(a, b);
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("linear"), std::string::npos) << e.message();
    EXPECT_NE(e.message().find("[2, 3]"), std::string::npos) << e.message();
    EXPECT_NE(e.message().find("[4, 5]"), std::string::npos) << e.message();
  }
}

// A float64 batch into a float32 layer names the layer's op and both dtypes (it named the GEMM
// kernel underneath); PyTorch refuses the same.
TEST(LinearLossOps, MixedDtypeOperandsAreRefusedNamingTheOp) {
  const Tensor x = random_tensor({2, 3}, 1, DType::kFloat64, Device::cpu());
  const Tensor w = random_tensor({4, 3}, 2, DType::kFloat32, Device::cpu());
  ::cyclone::testing::expect_error([&] { (void)linear(x, w); }, {"linear", "float64", "float32"});
  ::cyclone::testing::expect_error([&] { (void)matmul(x, w, false, true); },
                                   {"matmul", "float64", "float32"});
  EXPECT_EQ(linear(cast(x, DType::kFloat32), w).dtype(), DType::kFloat32);
}

TEST(LinearLossOps, CrossEntropyIsAScalarEqualToMeanNll) {
  const Tensor x = random_tensor({4, 6}, 5, DType::kFloat64, Device::cpu());
  const Tensor labels = labels_for(x, 4, 6);
  const Tensor loss = cross_entropy(x, labels);
  EXPECT_EQ(loss.rank(), 0);
  // Without smoothing: the mean of -log_softmax at the labels.
  const auto lp = values(log_softmax(x));
  const auto l = values(labels);
  double ref = 0;
  for (int r = 0; r < 4; ++r) ref -= lp[r * 6 + static_cast<int>(l[r])];
  EXPECT_NEAR(loss.item(), ref / 4, 1e-12);
}

TEST(LinearLossOps, AccuracyTopk) {
  // Row 0: label 2 is the max; row 1: label 0 is second; row 2: label 1 is last.
  const Tensor x = Tensor::from_vector<float>({0, 1, 5, 3, 4, 0, 2, 1, 3}, {3, 3}, Device::cpu());
  const Tensor labels = Tensor::from_vector<int32_t>({2, 0, 1}, {3}, Device::cpu());
  EXPECT_DOUBLE_EQ(accuracy_topk(x, labels, 1), 1.0 / 3);
  EXPECT_DOUBLE_EQ(accuracy_topk(x, labels, 2), 2.0 / 3);
  EXPECT_DOUBLE_EQ(accuracy_topk(x, labels, 3), 1.0);
}

// bfloat16 / float16 logits (a model cast to 16 bits, or a bare autocast scope): softmax,
// log_softmax, cross_entropy, argmax and accuracy compute as on the float32 widening of the same
// values; the loss is 16-bit outside autocast and float32 inside it (as PyTorch's autocast), and
// the logits' gradient comes back in their dtype.
TEST(LinearLossOps, SixteenBitLogits) {
  const Tensor labels = Tensor::from_vector<int32_t>({1, 0, 3, 2}, {4}, Device::cpu());
  for (DType dt : {DType::kBFloat16, DType::kFloat16}) {
    SCOPED_TRACE(dtype_name(dt));
    Tensor x = random_tensor({4, 5}, 7, dt, Device::cpu(), -2, 2);
    const Tensor f = cast(x, DType::kFloat32);
    EXPECT_EQ(values(softmax(x)), values(cast(softmax(f), dt)));
    EXPECT_EQ(values(log_softmax(x)), values(cast(log_softmax(f), dt)));
    EXPECT_EQ(argmax(x, 1).to_vector<int32_t>(), argmax(f, 1).to_vector<int32_t>());
    EXPECT_EQ(accuracy_topk(x, labels, 2), accuracy_topk(f, labels, 2));
    x.set_requires_grad();
    const Tensor loss = cross_entropy(x, labels, 0.1);
    EXPECT_EQ(loss.dtype(), dt);
    EXPECT_EQ(values(loss), values(cast(cross_entropy(f, labels, 0.1), dt)));
    loss.backward();
    EXPECT_EQ(x.grad().dtype(), dt);
    {
      AutocastScope scope(dt);
      EXPECT_EQ(cross_entropy(x, labels).dtype(), DType::kFloat32);
    }
  }
}

}  // namespace
}  // namespace cyclone
