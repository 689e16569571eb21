// Activations: gradient checks (float64, CPU; the checker skips kinks), known values against
// PyTorch's, selection by name, and CUDA-vs-CPU float32 parity of forward and backward.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "common/test_util.h"

namespace cyclone {
namespace {

struct ActCase {
  const char* name;
  std::function<Tensor(const Tensor&)> fn;
};

void PrintTo(const ActCase& c, std::ostream* os) { *os << c.name; }

std::vector<ActCase> act_cases() {
  return {
      {"relu", [](const Tensor& x) { return relu(x); }},
      {"leaky_relu", [](const Tensor& x) { return leaky_relu(x); }},
      {"leaky_relu_slope", [](const Tensor& x) { return leaky_relu(x, 0.3); }},
      {"elu", [](const Tensor& x) { return elu(x); }},
      {"elu_alpha", [](const Tensor& x) { return elu(x, 0.5); }},
      {"selu", [](const Tensor& x) { return selu(x); }},
      {"tanh", [](const Tensor& x) { return tanh(x); }},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }},
      {"gelu", [](const Tensor& x) { return gelu(x); }},
      {"gelu_tanh", [](const Tensor& x) { return gelu(x, true); }},
      {"silu", [](const Tensor& x) { return silu(x); }},
      {"by_name_swish", [](const Tensor& x) { return activation("swish", x); }},
      {"composite", [](const Tensor& x) { return gelu(selu(x) * 0.5) + silu(elu(x, 2.0)); }},
  };
}

class ActivationGradCheck : public ::testing::TestWithParam<ActCase> {};

TEST_P(ActivationGradCheck, AnalyticMatchesFiniteDifferences) {
  const ActCase& c = GetParam();
  // Values on both sides of every kink, plus the kink itself (which the checker must skip).
  Tensor x = testing::random_tensor({5, 7}, 17, DType::kFloat64, Device::cpu(), -4, 4);
  auto v = x.to_vector<double>();
  v[0] = 0.0;
  x = Tensor::from_vector(v, x.shape(), Device::cpu());
  x.set_requires_grad();
  GradCheckResult r = gradcheck([&](const std::vector<Tensor>& in) { return c.fn(in[0]); }, {x});
  EXPECT_TRUE(r.ok) << c.name << ": " << r.message;
  EXPECT_GE(r.checked, 34);
}

INSTANTIATE_TEST_SUITE_P(Activations, ActivationGradCheck, ::testing::ValuesIn(act_cases()),
                         [](const ::testing::TestParamInfo<ActCase>& i) { return i.param.name; });

class ActivationParity : public ::testing::TestWithParam<ActCase> {};

TEST_P(ActivationParity, CudaForwardAndBackwardMatchCpuInFloat32) {
  if (!cuda_available()) GTEST_SKIP() << "no usable CUDA device on this machine";
  const ActCase& c = GetParam();
  auto run = [&](Device d) {
    Tensor x = testing::random_tensor({1031}, 3, DType::kFloat32, Device::cpu(), -6, 6).to(d);
    x.set_requires_grad();
    Tensor y = c.fn(x);
    y.backward(full_like(y, 0.75));
    return std::vector<Tensor>{y.detach(), x.grad()};
  };
  auto cpu = run(Device::cpu());
  auto gpu = run(Device::cuda(0));
  EXPECT_TRUE(testing::all_close(gpu[0], cpu[0], 1e-5, 1e-6)) << c.name << " forward";
  EXPECT_TRUE(testing::all_close(gpu[1], cpu[1], 1e-5, 1e-6)) << c.name << " backward";
}

INSTANTIATE_TEST_SUITE_P(ActivationsCuda, ActivationParity, ::testing::ValuesIn(act_cases()),
                         [](const ::testing::TestParamInfo<ActCase>& i) { return i.param.name; });

// Values from PyTorch 2.x (float64): F.gelu, F.gelu(approximate='tanh'), F.selu, F.elu, F.silu,
// F.leaky_relu at x = 1, -1, -2.
TEST(Activations, MatchPyTorchValues) {
  Tensor x = Tensor::from_vector<double>({1, -1, -2}, {3}, Device::cpu());
  auto at = [](const Tensor& t, int i) { return t.to_vector<double>()[i]; };
  EXPECT_NEAR(at(gelu(x), 0), 0.8413447460685429, 1e-15);
  EXPECT_NEAR(at(gelu(x), 1), -0.15865525393145707, 1e-15);
  EXPECT_NEAR(at(gelu(x, true), 0), 0.8411919906082768, 1e-15);
  EXPECT_NEAR(at(selu(x), 0), 1.0507009873554805, 1e-15);
  EXPECT_NEAR(at(selu(x), 1), -1.1113307378125628, 1e-15);
  EXPECT_NEAR(at(elu(x), 1), -0.6321205588285577, 1e-15);
  EXPECT_NEAR(at(elu(x, 2.0), 2), 2 * (std::exp(-2.0) - 1), 1e-15);
  EXPECT_NEAR(at(silu(x), 0), 0.7310585786300049, 1e-15);
  EXPECT_NEAR(at(silu(x), 2), -0.2384058440442351, 1e-15);
  EXPECT_EQ(at(leaky_relu(x), 2), -0.02);
  EXPECT_EQ(at(leaky_relu(x, 0.2), 0), 1.0);
}

TEST(Activations, GradientAtTheKinkIsTheLeftDerivativeAsInPyTorch) {
  Tensor x = Tensor::from_vector<double>({0, 0, 0}, {3}, Device::cpu());
  x.set_requires_grad();
  leaky_relu(x, 0.25).backward(ones_like(x));
  EXPECT_EQ(x.grad().to_vector<double>()[0], 0.25);
  x.zero_grad();
  elu(x, 0.5).backward(ones_like(x));
  EXPECT_EQ(x.grad().to_vector<double>()[0], 0.5);
  x.zero_grad();
  selu(x).backward(ones_like(x));
  EXPECT_NEAR(x.grad().to_vector<double>()[0], 1.0507009873554805 * 1.6732632423543772, 1e-15);
}

TEST(Activations, ByNameMatchesTheFunctions) {
  Tensor x = testing::random_tensor({2, 3, 4}, 9, DType::kFloat32, Device::cpu(), -3, 3);
  const std::vector<std::pair<std::string, Tensor>> expected = {
      {"relu", relu(x)},    {"leaky_relu", leaky_relu(x, 0.01)},
      {"elu", elu(x, 1.0)}, {"selu", selu(x)},
      {"tanh", tanh(x)},    {"sigmoid", sigmoid(x)},
      {"gelu", gelu(x)},    {"gelu_tanh", gelu(x, true)},
      {"silu", silu(x)},    {"swish", silu(x)}};
  EXPECT_EQ(activation_names().size(), expected.size());
  for (const auto& [name, want] : expected) {
    EXPECT_EQ(activation(name, x).to_vector<float>(), want.to_vector<float>()) << name;
  }
  for (const std::string& name : activation_names()) EXPECT_NO_THROW(activation(name, x)) << name;
}

TEST(Activations, UnknownNameListsTheValidOnes) {
  Tensor x = Tensor::zeros({2}, DType::kFloat32, Device::cpu());
  try {
    activation("softplus", x);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("softplus"), std::string::npos) << m;
    for (const std::string& name : activation_names())
      EXPECT_NE(m.find(name), std::string::npos) << m;
  }
  EXPECT_THROW(leaky_relu(x, NAN), Error);
  EXPECT_THROW(elu(x, INFINITY), Error);
}

TEST(Activations, SeluKeepsUnitVarianceOfAStandardNormal) {
  // The property SELU's constants were chosen for: mean 0, variance 1 are a fixed point.
  Tensor z = Tensor::empty({200000}, DType::kFloat64, Device::cpu());
  Generator gen(5);
  kernels::normal_(Context::current(Device::cpu()), z, 0.0, 1.0, gen);
  const auto v = selu(z).to_vector<double>();
  double mean = 0, sq = 0;
  for (double e : v) mean += e;
  mean /= v.size();
  for (double e : v) sq += (e - mean) * (e - mean);
  EXPECT_NEAR(mean, 0.0, 0.01);
  EXPECT_NEAR(sq / v.size(), 1.0, 0.02);
}

}  // namespace
}  // namespace cyclone
