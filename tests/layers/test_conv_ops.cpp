// conv2d / max_pool2d / avg_pool2d / global_avg_pool as differentiable ops: gradients against
// finite differences (float64 CPU, every input: x, weight, bias), CUDA float32 gradients against
// the CPU's, and errors from the op entry points.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "cyclone/layers/layout.h"

namespace cyclone {
namespace {

using testing::random_tensor;
using testing::values;

struct Case {
  std::string name;
  std::vector<Shape> shapes;
  std::function<Tensor(const std::vector<Tensor>&)> fn;
};

std::vector<Case> cases() {
  std::vector<Case> c;
  auto conv = [](Conv2dParams p, bool bias) {
    return [p, bias](const std::vector<Tensor>& x) {
      return conv2d(x[0], x[1], bias ? x[2] : Tensor(), p);
    };
  };
  c.push_back({"conv_3x3_pad1_bias",
               {{2, 3, 5, 5}, {4, 3, 3, 3}, {4}},
               conv(Conv2dParams::square(1, 1), true)});
  c.push_back({"conv_stride2_nonsquare_bias",
               {{2, 2, 7, 6}, {3, 2, 3, 3}, {3}},
               conv(Conv2dParams::square(2, 1), true)});
  c.push_back({"conv_dilation2_no_bias",
               {{1, 2, 7, 7}, {2, 2, 3, 3}},
               conv(Conv2dParams::square(1, 2, 2), false)});
  c.push_back({"conv_1x1_bias", {{2, 4, 3, 4}, {3, 4, 1, 1}, {3}}, conv(Conv2dParams{}, true)});
  c.push_back({"conv_mixed_params_cin1",
               {{2, 1, 6, 5}, {2, 1, 3, 2}, {2}},
               conv(Conv2dParams{2, 1, 1, 0, 1, 2}, true)});
  c.push_back({"conv_int_overload",
               {{1, 2, 6, 6}, {2, 2, 3, 3}, {2}},
               [](const std::vector<Tensor>& x) { return conv2d(x[0], x[1], x[2], 2, 1); }});
  c.push_back({"max_pool_k2", {{2, 3, 6, 6}}, [](const std::vector<Tensor>& x) {
                 return max_pool2d(x[0], 2);
               }});
  c.push_back({"max_pool_k3_s2_p1_overlap", {{2, 2, 7, 6}}, [](const std::vector<Tensor>& x) {
                 return max_pool2d(x[0], 3, 2, 1);
               }});
  c.push_back({"avg_pool_k2", {{2, 3, 6, 5}}, [](const std::vector<Tensor>& x) {
                 return avg_pool2d(x[0], 2);
               }});
  c.push_back({"avg_pool_k3_s2_p1_overlap", {{2, 2, 7, 6}}, [](const std::vector<Tensor>& x) {
                 return avg_pool2d(x[0], 3, 2, 1);
               }});
  c.push_back({"avg_pool_nonsquare", {{1, 2, 6, 7}}, [](const std::vector<Tensor>& x) {
                 return avg_pool2d(x[0], Pool2dParams{3, 2, 1, 2, 1, 0});
               }});
  c.push_back({"global_avg_pool", {{3, 4, 5, 3}}, [](const std::vector<Tensor>& x) {
                 return global_avg_pool(x[0]);
               }});
  // A LeNet-like stack, so gradients flow through several of these nodes.
  c.push_back({"conv_pool_conv_gap",
               {{2, 1, 12, 12}, {3, 1, 5, 5}, {3}, {4, 3, 3, 3}, {4}},
               [](const std::vector<Tensor>& x) {
                 Tensor h = max_pool2d(relu(conv2d(x[0], x[1], x[2], 1, 2)), 2);
                 return global_avg_pool(conv2d(h, x[3], x[4]));
               }});
  return c;
}

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }
std::string case_name(const ::testing::TestParamInfo<Case>& i) { return i.param.name; }

class ConvOpsGradCheck : public ::testing::TestWithParam<Case> {};

TEST_P(ConvOpsGradCheck, AnalyticMatchesFiniteDifferences) {
  const Case& c = GetParam();
  std::vector<Tensor> inputs;
  for (size_t i = 0; i < c.shapes.size(); ++i) {
    Tensor t = random_tensor(c.shapes[i], 700 + i, DType::kFloat64, Device::cpu(), -2, 2);
    t.set_requires_grad();
    inputs.push_back(t);
  }
  const GradCheckResult r = gradcheck(c.fn, inputs);
  EXPECT_TRUE(r.ok) << c.name << ": " << r.message;
  EXPECT_GT(r.checked, 0);
}

INSTANTIATE_TEST_SUITE_P(ConvOps, ConvOpsGradCheck, ::testing::ValuesIn(cases()), case_name);

class ConvOpsGradParity : public ::testing::TestWithParam<Case> {};

TEST_P(ConvOpsGradParity, CudaGradientsMatchCpu) {
  CYCLONE_SKIP_IF_UNAVAILABLE(Device::cuda());
  const Case& c = GetParam();
  auto run = [&](Device d) {
    std::vector<Tensor> inputs;
    for (size_t i = 0; i < c.shapes.size(); ++i) {
      Tensor t = random_tensor(c.shapes[i], 700 + i, DType::kFloat32, Device::cpu(), -2, 2).to(d);
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

INSTANTIATE_TEST_SUITE_P(ConvOpsCuda, ConvOpsGradParity, ::testing::ValuesIn(cases()), case_name);

// ---- forward values and shapes through the op entry points ----

TEST(ConvOps, ShapesFollowPyTorch) {
  const Tensor x = random_tensor({2, 3, 32, 32}, 1, DType::kFloat32, Device::cpu());
  EXPECT_EQ(conv2d(x, random_tensor({16, 3, 3, 3}, 2), Tensor(), 1, 1).shape(),
            (Shape{2, 16, 32, 32}));
  EXPECT_EQ(conv2d(x, random_tensor({8, 3, 1, 1}, 3), Tensor(), 2).shape(), (Shape{2, 8, 16, 16}));
  EXPECT_EQ(max_pool2d(x, 2).shape(), (Shape{2, 3, 16, 16}));
  EXPECT_EQ(max_pool2d(x, 3, 2, 1).shape(), (Shape{2, 3, 16, 16}));
  EXPECT_EQ(avg_pool2d(x, 5, 1).shape(), (Shape{2, 3, 28, 28}));
  EXPECT_EQ(global_avg_pool(x).shape(), (Shape{2, 3}));
}

TEST(ConvOps, BiasGradientIsSumOverBatchAndSpace) {
  const Tensor x = random_tensor({2, 2, 4, 4}, 1, DType::kFloat64, Device::cpu());
  const Tensor w = random_tensor({3, 2, 3, 3}, 2, DType::kFloat64, Device::cpu());
  Tensor b = random_tensor({3}, 3, DType::kFloat64, Device::cpu());
  b.set_requires_grad();
  Tensor y = conv2d(x, w, b, 1, 1);
  const Tensor g = random_tensor(y.shape(), 4, DType::kFloat64, Device::cpu());
  y.backward(g);
  const auto vg = values(g), vb = values(b.grad());
  for (int64_t c = 0; c < 3; ++c) {
    double s = 0;
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t i = 0; i < 16; ++i) s += vg[(n * 3 + c) * 16 + i];
    EXPECT_NEAR(vb[c], s, 1e-12);
  }
}

// bfloat16 / float16 data with a bias, outside any autocast scope (a model cast to 16 bits): the
// result is float32's conv of the same values plus bias, rounded to the dtype, and the bias gets
// its gradient. Both layouts.
class ConvOpsHalfBias : public testing::DeviceTest {};

TEST_P(ConvOpsHalfBias, SixteenBitDataTakesABias) {
  const Device d = device();
  for (DType dt : {DType::kBFloat16, DType::kFloat16}) {
    for (bool cl : {false, true}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + (cl ? " channels last" : ""));
      Conv2dParams p = Conv2dParams::square(1, 1);
      p.channels_last = cl;
      auto in = [&](const Shape& s, uint64_t seed) {
        const Tensor t = random_tensor(s, seed, dt, d, -1, 1);
        return cl && s.rank() == 4 ? to_channels_last(t) : t;
      };
      const Tensor x = in({2, 3, 6, 5}, 1), w = in({4, 3, 3, 3}, 2);
      Tensor b = random_tensor({4}, 3, dt, d, -1, 1);
      b.set_requires_grad();
      const Tensor y = conv2d(x, w, b, p);
      EXPECT_EQ(y.dtype(), dt);
      // Rounded twice (the product, then the sum with the bias): each within u of its value.
      const double u = dt == DType::kBFloat16 ? 0x1p-8 : 0x1p-11;
      const auto prod = values(conv2d(cast(x, DType::kFloat64), cast(w, DType::kFloat64), {}, p));
      const auto bias = values(cast(b.detach(), DType::kFloat64)), got = values(y.detach());
      const int64_t cout = 4, per_out = cl ? 1 : 30;  // where the channel index sits in y
      for (size_t i = 0; i < got.size(); ++i) {
        const double want = prod[i] + bias[(i / per_out) % cout];
        ASSERT_LE(std::abs(got[i] - want), 2 * u * (std::abs(prod[i]) + std::abs(want)) + 1e-9)
            << "element " << i;
      }
      y.backward(ones_like(y.detach()));
      ASSERT_TRUE(b.grad().defined());
      // d(sum y)/d bias_c = N * Hout * Wout = 60, exact in both dtypes.
      for (double g : values(cast(b.grad(), DType::kFloat64))) EXPECT_EQ(g, 60.0);
    }
  }
}

CYCLONE_INSTANTIATE_DEVICE_TEST(ConvOpsHalfBias);

using ::cyclone::testing::expect_error;

TEST(ConvOps, Errors) {
  const Tensor x = Tensor::zeros({2, 3, 8, 8}, DType::kFloat32, Device::cpu());
  expect_error(
      [&] {
        conv2d(x, Tensor::zeros({4, 5, 3, 3}));
      },
      {"conv2d", "[2, 3, 8, 8]", "[4, 5, 3, 3]"});
  expect_error(
      [&] {
        conv2d(x, Tensor::zeros({4, 3, 9, 9}));
      },
      {"conv2d", "output size", "input 8 x 8", "stride (1, 1)", "padding (0, 0)"});
  expect_error(
      [&] {
        conv2d(x, Tensor::zeros({4, 3, 3, 3}), Tensor::zeros({3}));
      },
      {"bias has shape [3]", "expected [4]"});
  expect_error([&] { max_pool2d(x, 9); }, {"max_pool2d", "output size", "input 8 x 8"});
  expect_error([&] { avg_pool2d(x, 2, 2, 2); }, {"avg_pool2d", "at most half"});
  expect_error([&] { global_avg_pool(Tensor::zeros({2, 3})); }, {"global_avg_pool", "[2, 3]"});
}

}  // namespace
}  // namespace cyclone
