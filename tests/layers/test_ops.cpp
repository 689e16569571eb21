// Gradient checks (float64, CPU) for every differentiable elementwise op, including broadcast
// operands, and CUDA-vs-CPU gradient parity in float32.
#include <gtest/gtest.h>

#include <functional>

#include "common/test_util.h"

namespace cyclone {
namespace {

using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

struct OpCase {
  const char* name;
  std::vector<Shape> shapes;
  double lo, hi;  // input range (positive where the op needs it)
  Fn fn;
};

void PrintTo(const OpCase& c, std::ostream* os) { *os << c.name; }

std::vector<OpCase> op_cases() {
  using V = std::vector<Tensor>;
  return {
      {"add", {{3, 4}, {3, 4}}, -1, 1, [](const V& v) { return v[0] + v[1]; }},
      {"add_scalar_broadcast", {{3, 4}, {1}}, -1, 1, [](const V& v) { return v[0] + v[1]; }},
      {"add_channel_broadcast", {{2, 3, 2, 2}, {3}}, -1, 1, [](const V& v) { return v[0] + v[1]; }},
      {"add_channel_left", {{4}, {3, 4}}, -1, 1, [](const V& v) { return v[0] + v[1]; }},
      {"add_outer_broadcast", {{3, 4}, {3, 1}}, -1, 1, [](const V& v) { return v[0] + v[1]; }},
      {"div_outer_broadcast",
       {{2, 3, 2}, {2, 1, 1}},
       0.5,
       2,
       [](const V& v) { return v[1] / v[0]; }},
      {"sub", {{2, 5}, {5}}, -1, 1, [](const V& v) { return v[0] - v[1]; }},
      {"mul", {{2, 3, 2}, {2, 3, 2}}, -1, 1, [](const V& v) { return v[0] * v[1]; }},
      {"mul_channel", {{2, 3, 2}, {3}}, -1, 1, [](const V& v) { return v[0] * v[1]; }},
      {"div", {{7}, {7}}, 0.5, 2, [](const V& v) { return v[0] / v[1]; }},
      {"div_scalar_tensor", {{7}, {1}}, 0.5, 2, [](const V& v) { return v[0] / v[1]; }},
      {"maximum", {{9}, {9}}, -1, 1, [](const V& v) { return maximum(v[0], v[1]); }},
      {"minimum", {{9}, {1}}, -1, 1, [](const V& v) { return minimum(v[0], v[1]); }},
      {"add_s", {{5}}, -1, 1, [](const V& v) { return v[0] + 3.0; }},
      {"rsub_s", {{5}}, -1, 1, [](const V& v) { return 2.0 - v[0]; }},
      {"mul_s", {{5}}, -1, 1, [](const V& v) { return v[0] * -2.5; }},
      {"div_s", {{5}}, -1, 1, [](const V& v) { return v[0] / 4.0; }},
      {"pow", {{5}}, 0.5, 2, [](const V& v) { return pow(v[0], 2.7); }},
      {"clamp", {{11}}, -2, 2, [](const V& v) { return clamp(v[0], -0.5, 0.7); }},
      {"neg", {{5}}, -1, 1, [](const V& v) { return -v[0]; }},
      {"exp", {{5}}, -1, 1, [](const V& v) { return exp(v[0]); }},
      {"log", {{5}}, 0.2, 3, [](const V& v) { return log(v[0]); }},
      {"sqrt", {{5}}, 0.2, 3, [](const V& v) { return sqrt(v[0]); }},
      {"square", {{5}}, -2, 2, [](const V& v) { return square(v[0]); }},
      {"abs", {{6}}, -2, 2, [](const V& v) { return abs(v[0]); }},
      {"relu", {{4, 4}}, -2, 2, [](const V& v) { return relu(v[0]); }},
      {"sigmoid", {{4, 4}}, -4, 4, [](const V& v) { return sigmoid(v[0]); }},
      {"tanh", {{4, 4}}, -3, 3, [](const V& v) { return tanh(v[0]); }},
      {"reshape_flatten",
       {{2, 3, 4}},
       -1,
       1,
       [](const V& v) {
         return square(v[0].reshape({6, -1}).flatten(0));
       }},
      {"clone", {{3}}, -1, 1, [](const V& v) { return v[0].clone() * v[0]; }},
      {"sum_to_channels", {{2, 3, 4}}, -1, 1, [](const V& v) { return square(sum_to(v[0], {3})); }},
      {"composite",
       {{3, 4}, {4}},
       -1,
       1,
       [](const V& v) { return tanh(v[0] * v[1] + sigmoid(v[0])) / (1.0 + square(v[1])); }},
  };
}

class OpGradCheck : public ::testing::TestWithParam<OpCase> {};

TEST_P(OpGradCheck, AnalyticMatchesFiniteDifferences) {
  const OpCase& c = GetParam();
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < c.shapes.size(); ++i) {
    Tensor t =
        testing::random_tensor(c.shapes[i], 100 + i, DType::kFloat64, Device::cpu(), c.lo, c.hi);
    t.set_requires_grad();
    inputs.push_back(t);
  }
  GradCheckResult r = gradcheck(c.fn, inputs);
  EXPECT_TRUE(r.ok) << c.name << ": " << r.message;
  EXPECT_GT(r.checked, 0);
}

INSTANTIATE_TEST_SUITE_P(Ops, OpGradCheck, ::testing::ValuesIn(op_cases()),
                         [](const ::testing::TestParamInfo<OpCase>& i) { return i.param.name; });

// The same forward and backward on the GPU in float32 must match the CPU's.
class OpGradParity : public ::testing::TestWithParam<OpCase> {};

TEST_P(OpGradParity, CudaGradientsMatchCpu) {
  if (!cuda_available()) GTEST_SKIP() << "no usable CUDA device on this machine";
  const OpCase& c = GetParam();
  auto run = [&](Device d) {
    std::vector<Tensor> inputs;
    for (size_t i = 0; i < c.shapes.size(); ++i) {
      Tensor t =
          testing::random_tensor(c.shapes[i], 100 + i, DType::kFloat32, Device::cpu(), c.lo, c.hi)
              .to(d);
      t.set_requires_grad();
      inputs.push_back(t);
    }
    Tensor y = c.fn(inputs);
    y.backward(full_like(y, 0.5));
    std::vector<Tensor> out{y.detach()};
    for (auto& t : inputs) out.push_back(t.grad());
    return out;
  };
  auto cpu = run(Device::cpu());
  auto gpu = run(Device::cuda(0));
  for (size_t i = 0; i < cpu.size(); ++i)
    EXPECT_TRUE(testing::all_close(gpu[i], cpu[i], 1e-5, 1e-6)) << c.name << " output " << i;
}

INSTANTIATE_TEST_SUITE_P(OpsCuda, OpGradParity, ::testing::ValuesIn(op_cases()),
                         [](const ::testing::TestParamInfo<OpCase>& i) { return i.param.name; });

TEST(Ops, FactoriesAndCast) {
  Tensor f = full({2, 2}, 1.5, DType::kFloat64, Device::cpu());
  EXPECT_EQ(f.to_vector<double>(), std::vector<double>(4, 1.5));
  EXPECT_EQ(ones({3}, DType::kInt32, Device::cpu()).to_vector<int32_t>(),
            std::vector<int32_t>(3, 1));
  Tensor c = cast(f, DType::kFloat32);
  EXPECT_EQ(c.dtype(), DType::kFloat32);
  EXPECT_EQ(c.to_vector<float>(), std::vector<float>(4, 1.5f));
  EXPECT_EQ(zeros_like(f).to_vector<double>(), std::vector<double>(4, 0.0));
}

TEST(Ops, CastIsDifferentiableBetweenFloatTypes) {
  Tensor x = Tensor::from_vector<double>({1, 2}, {2}, Device::cpu());
  x.set_requires_grad();
  Tensor y = cast(x, DType::kFloat32) * 3.0;
  y.backward(ones_like(y));
  EXPECT_EQ(x.grad().dtype(), DType::kFloat64);
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{3, 3}));
}

// Two floating dtypes promote as PyTorch does: the wider one (bfloat16 with float16 gives
// float32); the value is the wide op on the widened operand, and each gradient comes back in its
// operand's dtype.
TEST(Ops, MixedFloatOperandsPromoteAsPyTorch) {
  struct Mix {
    DType a, b, want;
  };
  for (const Mix& m : {Mix{DType::kFloat32, DType::kBFloat16, DType::kFloat32},
                       Mix{DType::kFloat16, DType::kFloat64, DType::kFloat64},
                       Mix{DType::kBFloat16, DType::kFloat16, DType::kFloat32}}) {
    SCOPED_TRACE(std::string(dtype_name(m.a)) + " with " + dtype_name(m.b));
    for (auto op : {&add, &sub, &mul, &div, &maximum}) {
      Tensor a = testing::random_tensor({3, 4}, 1, m.a, Device::cpu(), 0.5, 2);
      Tensor b = testing::random_tensor({4}, 2, m.b, Device::cpu(), 0.5, 2);  // broadcast too
      a.set_requires_grad();
      b.set_requires_grad();
      const Tensor y = op(a, b);
      ASSERT_EQ(y.dtype(), m.want);
      const Tensor want = op(cast(a.detach(), m.want), cast(b.detach(), m.want));
      EXPECT_EQ(testing::values(y), testing::values(want));
      sum(cast(y, DType::kFloat64)).backward();
      EXPECT_EQ(a.grad().dtype(), m.a);
      EXPECT_EQ(b.grad().dtype(), m.b);
    }
  }
}

}  // namespace
}  // namespace cyclone
