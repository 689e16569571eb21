// Channels-last training (layers/layout.h): the differentiable layout changes (finite-difference
// gradient checks), the scope, and whole models — LeNet-5 (biased convolutions, max pooling,
// Flatten before Linear), ResNet-8 (batch norm, the option-A shortcut's 1x1 strided convolution,
// global average pooling) and WRN-10-2 (projection shortcuts, dropout off) — whose logits and
// parameter gradients with set_channels_last(true) equal the NCHW model's, in training and eval
// mode, in float32 and under bf16 autocast, with unchanged state dicts; CPU-vs-CUDA parity.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/test_util.h"

namespace cyclone {
namespace {

using testing::DeviceTest;
using testing::random_tensor;
using testing::relative_error;
using testing::values;

class LayoutTest : public DeviceTest {};

TEST_P(LayoutTest, RelayoutsHaveFiniteDifferenceGradients) {
  const Tensor x = random_tensor({2, 3, 4, 5}, 1, DType::kFloat64, device());
  x.set_requires_grad(true);
  GradCheckResult r =
      gradcheck([](const std::vector<Tensor>& in) { return to_channels_last(in[0]); }, {x});
  EXPECT_TRUE(r.ok) << r.message;
  r = gradcheck([](const std::vector<Tensor>& in) { return to_channels_first(in[0]); }, {x});
  EXPECT_TRUE(r.ok) << r.message;
}

TEST_P(LayoutTest, ConvInLayoutHasFiniteDifferenceGradients) {
  // Channels last with a bias and a 3x3 weight (transposed per call) and a 1x1 weight (a view).
  const Tensor x = random_tensor({2, 5, 5, 3}, 2, DType::kFloat64, device());
  const Tensor w3 = random_tensor({4, 3, 3, 3}, 3, DType::kFloat64, device());
  const Tensor w1 = random_tensor({4, 3, 1, 1}, 4, DType::kFloat64, device());
  const Tensor b = random_tensor({4}, 5, DType::kFloat64, device());
  for (const Tensor& t : {x, w3, w1, b}) t.set_requires_grad(true);
  ChannelsLastScope scope;
  GradCheckResult r = gradcheck(
      [](const std::vector<Tensor>& in) {
        return conv2d_in_layout(in[0], in[1], in[2], Conv2dParams::square(2, 1));
      },
      {x, w3, b});
  EXPECT_TRUE(r.ok) << r.message;
  r = gradcheck(
      [](const std::vector<Tensor>& in) {
        return conv2d_in_layout(in[0], in[1], Tensor(), Conv2dParams::square(2));
      },
      {x, w1});
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(Layout, ScopesNestAndRestore) {
  EXPECT_FALSE(channels_last_active());
  {
    ChannelsLastScope on;
    EXPECT_TRUE(channels_last_active());
    const Tensor a = Tensor::zeros({2, 3, 4, 5}, DType::kFloat32, Device::cpu());
    EXPECT_EQ(channel_axis(a), 3);
    EXPECT_EQ(channel_axis(Tensor::zeros({2, 3}, DType::kFloat32, Device::cpu())), 1);
    {
      ChannelsLastScope off(false);
      EXPECT_FALSE(channels_last_active());
      EXPECT_EQ(channel_axis(a), 1);
    }
    EXPECT_TRUE(channels_last_active());
  }
  EXPECT_FALSE(channels_last_active());
}

// Each image layer in a channels-last scope takes [N, H, W, C] and returns its NCHW result in
// NHWC (Flatten and GlobalAvgPool2d: the NCHW result itself).
TEST_P(LayoutTest, LayersTakeAndReturnNhwcInTheScope) {
  const Device d = device();
  const Tensor x = random_tensor({2, 4, 6, 5}, 8, DType::kFloat32, d);  // NCHW, C = 4
  const Tensor xl = to_channels_last(x);                                // [2, 6, 5, 4]
  auto bn = std::make_shared<BatchNorm2d>(4, 1e-5, 0.1, true, d);
  const std::vector<std::shared_ptr<Module>> layers = {
      std::make_shared<Conv2d>(4, 3, 3, 2, 1, 1, true, d),
      bn,
      std::make_shared<MaxPool2d>(2),
      std::make_shared<AvgPool2d>(3, 1, 1),
      std::make_shared<GlobalAvgPool2d>(),
      std::make_shared<Flatten>()};
  for (const auto& layer : layers) {
    SCOPED_TRACE(layer->type_name());
    const NamedTensors state = bn->state_dict();
    const Tensor plain = layer->forward(x);
    bn->load_state_dict(state);  // the same running statistics for the second call
    Tensor in_scope;
    {
      ChannelsLastScope scope;
      in_scope = layer->forward(xl);
    }
    const bool image = plain.rank() == 4;
    if (image) {
      EXPECT_EQ(in_scope.shape(), to_channels_last(plain).shape());
    }
    // Two cuDNN kernels (NHWC, NCHW) on CUDA: other summation orders.
    EXPECT_LT(relative_error(values(image ? to_channels_first(in_scope) : in_scope), values(plain)),
              device().is_cuda() ? 1e-5 : 1e-6);
  }
  // An NCHW tensor in the scope is read as NHWC: BatchNorm2d(4) sees 5 channels and says so.
  ChannelsLastScope scope;
  testing::expect_error([&] { bn->forward(x); }, {"BatchNorm2d(4)", "channels last", "5 channels"});
}

// Logits and every parameter's gradient (in state-dict order) after one cross-entropy pass.
struct LayoutPass {
  std::vector<double> logits, grads;
};
LayoutPass layout_pass(Module& model, const Tensor& x, const Tensor& labels) {
  for (const Tensor& p : model.parameters()) p.zero_grad(true);
  const Tensor logits = model(x);
  EXPECT_FALSE(channels_last_active()) << "the scope must end with the forward";
  cross_entropy(logits, labels).backward();
  LayoutPass out{values(logits), {}};
  for (const auto& [name, p] : model.named_parameters()) {
    const auto gv = values(p.grad());
    out.grads.insert(out.grads.end(), gv.begin(), gv.end());
  }
  return out;
}

struct ModelCase {
  const char* name;
  int64_t channels, hw;
};
const ModelCase kModels[] = {{"lenet5", 1, 28}, {"resnet8", 3, 16}, {"wrn-10-2", 3, 16}};

std::shared_ptr<Module> build(const ModelCase& c, Device d) {
  ModelOptions mo;
  mo.device = d;
  mo.in_channels = static_cast<int>(c.channels);
  mo.height = mo.width = static_cast<int>(c.hw);
  mo.seed = 5;
  return make_model(c.name, mo);
}

// The NCHW and the channels-last pass of one model from one initialisation; running statistics
// are restored in between so both passes see the same state. tol bounds the logits and the
// state, grad_tol (tol when 0) the gradients: batch norm at initialisation amplifies a
// difference in summation order several-fold in the weight gradients.
void expect_same_passes(const ModelCase& c, Device d, DType compute, bool training, double tol,
                        double grad_tol = 0) {
  SCOPED_TRACE(std::string(c.name) + (training ? " train " : " eval ") + dtype_name(compute));
  auto model = build(c, d);
  model->train(training);
  model->set_compute_dtype(compute);
  const Tensor x = random_tensor({4, c.channels, c.hw, c.hw}, 7, DType::kFloat32, d);
  const Tensor labels = Tensor::from_vector<int32_t>({1, 7, 3, 0}, {4}, d);
  NamedTensors before;
  for (const auto& [n, t] : model->state_dict()) before.emplace_back(n, t.clone());
  const LayoutPass nchw = layout_pass(*model, x, labels);
  NamedTensors after_nchw;
  for (const auto& [n, t] : model->state_dict()) after_nchw.emplace_back(n, t.clone());
  model->load_state_dict(before);
  model->set_channels_last(true);
  EXPECT_TRUE(model->channels_last());
  const LayoutPass nhwc = layout_pass(*model, x, labels);
  EXPECT_LT(relative_error(nhwc.logits, nchw.logits), tol);
  EXPECT_LT(relative_error(nhwc.grads, nchw.grads), grad_tol > 0 ? grad_tol : tol);
  // The same state dict: names, shapes (PyTorch's layouts) and the running statistics' update.
  const NamedTensors after_nhwc = model->state_dict();
  ASSERT_EQ(after_nhwc.size(), after_nchw.size());
  for (size_t i = 0; i < after_nhwc.size(); ++i) {
    EXPECT_EQ(after_nhwc[i].first, after_nchw[i].first);
    EXPECT_EQ(after_nhwc[i].second.shape(), after_nchw[i].second.shape()) << after_nhwc[i].first;
    if (is_floating(after_nhwc[i].second.dtype())) {
      EXPECT_LT(relative_error(values(after_nhwc[i].second), values(after_nchw[i].second)), tol)
          << after_nhwc[i].first;
    }
  }
}

// The CPU runs channels last as the NCHW kernels between transposes (the same sums); CUDA runs
// cuDNN's NHWC kernels, other algorithms summing in another order (~1e-6 per layer in fp32).
TEST_P(LayoutTest, ModelsComputeTheSameInChannelsLast) {
  const bool cuda = device().is_cuda();
  for (const ModelCase& c : kModels)
    for (bool training : {true, false})
      expect_same_passes(c, device(), DType::kFloat32, training, cuda ? 1e-4 : 1e-5,
                         cuda ? 1e-3 : 0);
}

TEST_P(LayoutTest, ChannelsLastComposesWithBfloat16Autocast) {
  // The same bf16 roundings in either layout; only the summation order of the (widened) products
  // and of the pooling means differs, which can flip a bf16 rounding here and there. On CUDA the
  // two layouts run different cuDNN kernels, every layer's output is rounded to bf16 after its own
  // order of sums, and batch norm at initialisation amplifies the differences in the weight
  // gradients about tenfold, as in float32 above (1e-4 -> 1e-3): an H200 with cuDNN 9.19 gave
  // 0.038 (ResNet-8) and 0.068 (WRN-10-2) with logits within 2e-2
  // (benchmarks/results/2026-11-27-h200-71ea5f2/tests.log).
  const bool cuda = device().is_cuda();
  for (const ModelCase& c : kModels)
    expect_same_passes(c, device(), DType::kBFloat16, true, 2e-2, cuda ? 0.15 : 0);
}

TEST(Layout, SummaryReportsNchwShapes) {
  ModelOptions mo;
  mo.seed = 1;
  auto model = make_model("resnet8", mo);
  const std::string plain = summary(*model, Shape({1, 3, 32, 32}));
  model->set_channels_last(true);
  EXPECT_EQ(summary(*model, Shape({1, 3, 32, 32})), plain);
}

// Fine-tuning's pieces (precomputed features) run in the model's layout and hand NCHW maps over.
TEST(Layout, StageSlicesComputeLikeTheModel) {
  auto model = build(kModels[2], Device::cpu());  // WRN-10-2
  model->eval();
  model->set_channels_last(true);
  const size_t n = model->stages().size();
  StageSlice body(*model, 0, 1), head(*model, 1, n);
  EXPECT_TRUE(body.channels_last() && head.channels_last());
  const Tensor x = random_tensor({2, 3, 16, 16}, 4);
  const Tensor features = body(x);
  EXPECT_EQ(features.shape(), Shape({2, 16, 16, 16}));  // the first convolution's NCHW output
  EXPECT_LT(relative_error(values(head(features)), values((*model)(x))), 1e-6);
}

TEST(Layout, ScopeReadsRank4InputsOnly) {
  // A channels-last model given a rank-2 input (an MLP) runs as before.
  ModelOptions mo;
  mo.in_channels = 1;
  mo.height = mo.width = 4;
  mo.seed = 2;
  auto model = make_model("mlp-8", mo);
  const Tensor x = random_tensor({3, 16}, 3);
  const std::vector<double> plain = values((*model)(x));
  model->set_channels_last(true);
  EXPECT_EQ(values((*model)(x)), plain);
}

CYCLONE_INSTANTIATE_DEVICE_TEST(LayoutTest);

// The GPU's channels-last models (cuDNN NHWC convolutions, the channels-innermost batch-norm
// sums) against the CPU's NCHW ones.
TEST(LayoutCuda, ChannelsLastModelsMatchTheCpu) {
  CYCLONE_SKIP_IF_UNAVAILABLE(Device::cuda());
  for (const ModelCase& c : kModels) {
    SCOPED_TRACE(c.name);
    auto cpu = build(c, Device::cpu());
    auto gpu = build(c, Device::cuda());
    gpu->set_channels_last(true);
    const Tensor x = random_tensor({4, c.channels, c.hw, c.hw}, 9, DType::kFloat32, Device::cpu());
    const Tensor labels = Tensor::from_vector<int32_t>({1, 7, 3, 0}, {4}, Device::cpu());
    const LayoutPass a = layout_pass(*cpu, x, labels);
    const LayoutPass b = layout_pass(*gpu, x.to(Device::cuda()), labels.to(Device::cuda()));
    // fp32 (no TF32 unless asked): GPU.md's float32 parity bound, with margin for BN networks.
    EXPECT_LT(relative_error(b.logits, a.logits), 1e-4);
    EXPECT_LT(relative_error(b.grads, a.grads), 1e-3);
  }
}

}  // namespace
}  // namespace cyclone
