// The image modules (layers/conv_modules.h), the residual blocks (layers/residual.h) and the
// weight-decay split (layers/param_groups.h): PyTorch names and layouts, initial values, train/eval
// behaviour of BatchNorm2d and Dropout, and the blocks' shortcuts against hand-built references.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "common/test_util.h"
#include "cyclone/layers/conv_modules.h"
#include "cyclone/layers/param_groups.h"
#include "cyclone/layers/residual.h"

namespace cyclone {
namespace {

std::vector<std::string> names_of(const NamedTensors& ts) {
  std::vector<std::string> out;
  for (const auto& [n, t] : ts) out.push_back(n);
  return out;
}

TEST(Conv2dModule, PyTorchNamesLayoutAndZeroBias) {
  Generator g(1);
  Conv2d conv(3, 8, 3, 2, 1, 1, true, Device::cpu(), &g);
  EXPECT_EQ(names_of(conv.named_parameters()), (std::vector<std::string>{"weight", "bias"}));
  EXPECT_EQ(conv.weight().shape(), (Shape{8, 3, 3, 3}));
  EXPECT_EQ(conv.bias().shape(), (Shape{8}));
  for (double v : testing::values(conv.bias())) EXPECT_EQ(v, 0.0);
  // he_normal: truncated to 2 stddev of sqrt(2 / fan_in) / 0.8796 (layers/init.h).
  const double bound = 2 * std::sqrt(2.0 / 27) / 0.87962566103423978;
  for (double v : testing::values(conv.weight())) EXPECT_LE(std::abs(v), bound + 1e-6);
  EXPECT_EQ(conv(Tensor::zeros({2, 3, 9, 9})).shape(), (Shape{2, 8, 5, 5}));
  EXPECT_EQ(conv.str(), "Conv2d(3, 8, kernel_size=3, stride=2, padding=1)\n");

  Conv2d no_bias(3, 4, 1, 1, 0, 1, false);
  EXPECT_EQ(no_bias.num_parameters(), 12);
  EXPECT_EQ(no_bias.extra_repr(), "3, 4, kernel_size=1, stride=1, bias=false");
  EXPECT_THROW(Conv2d(0, 4, 3), Error);
  EXPECT_THROW(Conv2d(3, 4, 3, 0), Error);
  EXPECT_THROW(Conv2d(3, 4, 3, 1, 0, 1, true, Device::cpu(), nullptr, "he_normall"), Error);
}

TEST(Conv2dModule, InitIsDeterministicFromTheGenerator) {
  Generator a(42), b(42), c(43);
  Conv2d x(4, 4, 3, 1, 1, 1, false, Device::cpu(), &a),
      y(4, 4, 3, 1, 1, 1, false, Device::cpu(), &b), z(4, 4, 3, 1, 1, 1, false, Device::cpu(), &c);
  EXPECT_TRUE(testing::all_close(x.weight(), y.weight(), 0, 0));
  EXPECT_FALSE(testing::all_close(x.weight(), z.weight(), 0, 0));
  Generator d(42);
  Conv2d zeros(4, 4, 3, 1, 1, 1, false, Device::cpu(), &d, "zeros");
  for (double v : testing::values(zeros.weight())) EXPECT_EQ(v, 0.0);
}

TEST(BatchNorm2dModule, PyTorchNamesAndInitialValues) {
  BatchNorm2d bn(4);
  EXPECT_EQ(names_of(bn.named_parameters()), (std::vector<std::string>{"weight", "bias"}));
  EXPECT_EQ(names_of(bn.named_buffers()),
            (std::vector<std::string>{"running_mean", "running_var", "num_batches_tracked"}));
  EXPECT_EQ(testing::values(bn.weight()), std::vector<double>(4, 1.0));
  EXPECT_EQ(testing::values(bn.bias()), std::vector<double>(4, 0.0));
  EXPECT_EQ(testing::values(bn.running_mean()), std::vector<double>(4, 0.0));
  EXPECT_EQ(testing::values(bn.running_var()), std::vector<double>(4, 1.0));
  EXPECT_EQ(bn.num_batches_tracked().dtype(), DType::kInt32);
  EXPECT_EQ(bn.num_batches_tracked().rank(), 0);
  EXPECT_EQ(bn.num_batches_tracked().item<int32_t>(), 0);
  BatchNorm2d plain(4, 1e-5, 0.1, /*affine=*/false);
  EXPECT_EQ(plain.num_parameters(), 0);
  EXPECT_EQ(plain.named_buffers().size(), 3u);
  EXPECT_THROW(BatchNorm2d(0), Error);
  EXPECT_THROW(bn(Tensor::zeros({2, 3, 4, 4})), Error);  // 3 channels, 4 expected
  EXPECT_THROW(bn(Tensor::zeros({2, 4})), Error);        // not NCHW
}

TEST(BatchNorm2dModule, RunningStatsChangeOnlyInTraining) {
  BatchNorm2d bn(3);
  Tensor x = testing::random_tensor({4, 3, 5, 5}, 11, DType::kFloat32, Device::cpu(), 1.0, 3.0);
  bn(x);
  bn(x);
  EXPECT_EQ(bn.num_batches_tracked().item<int32_t>(), 2);
  // After two updates with momentum 0.1: running_mean = (1 - 0.9^2) * batch_mean.
  const auto xs = testing::values(x);
  for (int c = 0; c < 3; ++c) {
    double mean = 0;
    for (int n = 0; n < 4; ++n)
      for (int i = 0; i < 25; ++i) mean += xs[static_cast<size_t>((n * 3 + c) * 25 + i)];
    mean /= 100;
    EXPECT_NEAR(testing::values(bn.running_mean())[c], 0.19 * mean, 1e-5);
  }
  const auto mean_before = testing::values(bn.running_mean());
  const auto var_before = testing::values(bn.running_var());
  bn.eval();
  Tensor y = bn(x);
  EXPECT_EQ(testing::values(bn.running_mean()), mean_before);
  EXPECT_EQ(testing::values(bn.running_var()), var_before);
  EXPECT_EQ(bn.num_batches_tracked().item<int32_t>(), 2);
  // Eval normalises with the running statistics: y = (x - rm) / sqrt(rv + eps).
  const auto ys = testing::values(y);
  for (size_t i = 0; i < xs.size(); ++i) {
    const size_t c = (i / 25) % 3;
    EXPECT_NEAR(ys[i], (xs[i] - mean_before[c]) / std::sqrt(var_before[c] + 1e-5), 1e-4);
  }
}

TEST(BatchNorm2dModule, EvalOutputDoesNotDependOnTheBatch) {
  BatchNorm2d bn(2);
  bn(testing::random_tensor({6, 2, 3, 3}, 5));  // some running statistics
  Tensor batch = testing::random_tensor({4, 2, 3, 3}, 6);
  Tensor first = batch.slice(0, 1).clone();
  bn.eval();
  const auto all = testing::values(bn(batch));
  const auto alone = testing::values(bn(first));
  ASSERT_EQ(alone.size(), 18u);
  for (size_t i = 0; i < alone.size(); ++i) EXPECT_EQ(all[i], alone[i]) << i;
  // Training mode is the opposite: the first sample's output depends on its batch mates.
  bn.train();
  const auto all_t = testing::values(bn(batch));
  const auto two_t = testing::values(bn(batch.slice(0, 2).clone()));
  bool differs = false;
  for (size_t i = 0; i < 18; ++i) differs |= std::abs(all_t[i] - two_t[i]) > 1e-4;
  EXPECT_TRUE(differs);
}

TEST(DropoutModule, IdentityInEvalAndScaledMaskInTraining) {
  auto gen = std::make_shared<Generator>(3);
  Dropout drop(0.25, gen);
  Tensor x = testing::random_tensor({64, 32}, 8, DType::kFloat32, Device::cpu(), 0.5, 1.5);
  const auto xs = testing::values(x);
  drop.eval();
  EXPECT_EQ(testing::values(drop(x)), xs);
  drop.train();
  const auto ys = testing::values(drop(x));
  int64_t zeros = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    if (ys[i] == 0) {
      ++zeros;
    } else {
      EXPECT_NEAR(ys[i], xs[i] / 0.75, 1e-5) << i;
    }
  }
  const double frac = static_cast<double>(zeros) / static_cast<double>(xs.size());
  EXPECT_NEAR(frac, 0.25, 0.04);  // 2048 draws: 4 standard deviations is ~0.038
  // The mask comes from the given generator: replaying its state replays the mask.
  Dropout again(0.25, std::make_shared<Generator>(3));
  EXPECT_EQ(testing::values(again(x)), ys);
  // And the next mask is a new one.
  EXPECT_NE(testing::values(drop(x)), ys);
  EXPECT_THROW(Dropout(1.0), Error);
  EXPECT_THROW(Dropout(-0.1), Error);
  EXPECT_EQ(Dropout(0.0)(x).same(x), true);
}

TEST(PoolModules, ShapesAndValues) {
  Tensor x = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
                                        {1, 1, 4, 4}, Device::cpu());
  EXPECT_EQ(MaxPool2d(2)(x).to_vector<float>(), (std::vector<float>{6, 8, 14, 16}));
  EXPECT_EQ(AvgPool2d(2)(x).to_vector<float>(), (std::vector<float>{3.5, 5.5, 11.5, 13.5}));
  EXPECT_EQ(MaxPool2d(3, 1, 1)(x).shape(), (Shape{1, 1, 4, 4}));
  EXPECT_EQ(GlobalAvgPool2d()(x).to_vector<float>(), (std::vector<float>{8.5}));
  EXPECT_EQ(GlobalAvgPool2d()(Tensor::zeros({3, 5, 2, 2})).shape(), (Shape{3, 5}));
  EXPECT_EQ(MaxPool2d(2).str(), "MaxPool2d(kernel_size=2, stride=2)\n");
  EXPECT_THROW(MaxPool2d(0), Error);
  EXPECT_THROW(AvgPool2d(2, 2, 2), Error);  // padding over half the kernel
}

TEST(WideBasicBlock, NamesAndProjectionOnlyWhenTheShapeChanges) {
  Generator g(1);
  BlockOptions o;
  o.gen = &g;
  WideBasicBlock same(8, 8, 1, 0.0, o), wider(8, 16, 2, 0.3, o);
  EXPECT_FALSE(same.has_projection());
  EXPECT_TRUE(wider.has_projection());
  EXPECT_EQ(
      names_of(wider.state_dict()),
      (std::vector<std::string>{"bn1.weight", "bn1.bias", "conv1.weight", "bn2.weight", "bn2.bias",
                                "conv2.weight", "convShortcut.weight", "bn1.running_mean",
                                "bn1.running_var", "bn1.num_batches_tracked", "bn2.running_mean",
                                "bn2.running_var", "bn2.num_batches_tracked"}));
  // 2*8 + 9*8*16 + 2*16 + 9*16*16 + 8*16
  EXPECT_EQ(wider.num_parameters(), 16 + 1152 + 32 + 2304 + 128);
  EXPECT_EQ(wider(Tensor::zeros({2, 8, 8, 8})).shape(), (Shape{2, 16, 4, 4}));
  EXPECT_EQ(same(Tensor::zeros({2, 8, 8, 8})).shape(), (Shape{2, 8, 8, 8}));
}

TEST(WideBasicBlock, ShortcutsMatchTheReference) {
  Generator g(2);
  BlockOptions o;
  o.gen = &g;
  WideBasicBlock same(4, 4, 1, 0.0, o), wider(4, 6, 2, 0.0, o);
  Tensor x = testing::random_tensor({2, 4, 6, 6}, 3);
  // With conv2 zeroed the residual branch vanishes and only the shortcut is left.
  for (auto* b : {&same, &wider})
    for (auto& [n, p] : b->named_parameters())
      if (n == "conv2.weight") p.zero_();
  same.eval();
  wider.eval();
  EXPECT_TRUE(testing::all_close(same(x), x, 0, 0));
  // The projection reads the pre-activated input: convShortcut(relu(bn1(x))). In eval mode with
  // fresh statistics, bn1(x) = x / sqrt(1 + eps).
  Tensor pre = relu(x * (1.0 / std::sqrt(1.0 + 1e-5)));
  Tensor expect =
      conv2d(pre, wider.submodule("convShortcut").named_parameters()[0].second, Tensor(), 2, 0, 1);
  EXPECT_TRUE(testing::all_close(wider(x), expect, 1e-5, 1e-5));
}

TEST(CifarBasicBlock, OptionAShortcutSubsamplesAndPadsInTheMiddle) {
  Generator g(4);
  BlockOptions o;
  o.gen = &g;
  CifarBasicBlock block(2, 6, 2, o);
  EXPECT_EQ(names_of(block.named_parameters()),
            (std::vector<std::string>{"conv1.weight", "bn1.weight", "bn1.bias", "conv2.weight",
                                      "bn2.weight", "bn2.bias"}));
  EXPECT_EQ(block.num_parameters(), 9 * 2 * 6 + 12 + 9 * 6 * 6 + 12);  // no shortcut parameters
  // bn2's scale at 0 silences the residual branch: out = relu(pad(x[:, :, ::2, ::2])).
  for (auto& [n, p] : block.named_parameters())
    if (n == "bn2.weight") p.zero_();
  Tensor x = testing::random_tensor({2, 2, 4, 4}, 9);
  x.set_requires_grad(true);
  Tensor y = block(x);
  ASSERT_EQ(y.shape(), (Shape{2, 6, 2, 2}));
  const auto xs = testing::values(x), ys = testing::values(y);
  for (int n = 0; n < 2; ++n)
    for (int c = 0; c < 6; ++c)
      for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) {
          // Channels 0, 1 and 4, 5 are padding; 2, 3 carry input channels 0, 1.
          const double v = (c >= 2 && c < 4)
                               ? xs[static_cast<size_t>(((n * 2 + c - 2) * 4 + 2 * i) * 4 + 2 * j)]
                               : 0.0;
          EXPECT_EQ(ys[static_cast<size_t>(((n * 6 + c) * 2 + i) * 2 + j)], std::max(v, 0.0));
        }
  // The gradient reaches exactly the kept positive positions, unscaled (through the shortcut; the
  // silenced branch passes zero).
  y.backward(ones_like(y));
  const auto gx = testing::values(x.grad());
  for (size_t k = 0; k < gx.size(); ++k) {
    const int64_t w = static_cast<int64_t>(k) % 4, h = (static_cast<int64_t>(k) / 4) % 4;
    const bool kept = h % 2 == 0 && w % 2 == 0 && xs[k] > 0;
    EXPECT_EQ(gx[k], kept ? 1.0 : 0.0) << k;
  }
  EXPECT_THROW(CifarBasicBlock(4, 3, 1, o), Error);  // cannot pad down
  EXPECT_THROW(CifarBasicBlock(4, 7, 1, o), Error);  // odd padding
}

TEST(ParamGroups, BiasesAndBatchNormAreExemptFromWeightDecay) {
  class Net : public Module {
   public:
    Net() {
      register_module("conv", std::make_shared<Conv2d>(3, 4, 3));
      register_module("bn", std::make_shared<BatchNorm2d>(4));
      register_module("fc", std::make_shared<Linear>(4, 2));
    }
    Tensor forward(const Tensor& x) override { return x; }
    std::string type_name() const override { return "Net"; }
  } net;
  EXPECT_EQ(no_weight_decay_names(net),
            (std::vector<std::string>{"conv.bias", "bn.weight", "bn.bias", "fc.bias"}));
  EXPECT_EQ(names_of(weight_decay_params(net)),
            (std::vector<std::string>{"conv.weight", "fc.weight"}));
  net.submodule("bn").freeze();
  EXPECT_EQ(names_of(no_weight_decay_params(net, /*trainable_only=*/true)),
            (std::vector<std::string>{"conv.bias", "fc.bias"}));
}

}  // namespace
}  // namespace cyclone
