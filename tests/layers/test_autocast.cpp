// Mixed precision (layers/autocast.h): under a bfloat16 scope, linear and conv2d compute from
// bfloat16-rounded operands and return bfloat16 (the bias rounded and added in bfloat16),
// gradients reach the float32 parameters in float32, float64 is left alone, scopes nest;
// Module::set_compute_dtype runs a whole model with bfloat16 activations (batch norm, ReLU,
// residual adds, pooling) and returns float32, and bf16 training lowers the loss as float32 does.
#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <vector>

#include "common/test_util.h"

namespace cyclone {
namespace {

using testing::DeviceTest;
using testing::random_tensor;
using testing::relative_error;
using testing::values;

// x and the gradients of every parameter-like input, after sum(y * g).backward().
struct Pass {
  std::vector<double> y;
  std::vector<std::vector<double>> grads;
  std::vector<DType> grad_dtypes;
  DType y_dtype;
};

template <class F>
Pass run_pass(F&& f, const std::vector<Tensor>& inputs, const Tensor& g, bool bf16) {
  for (const Tensor& t : inputs) t.zero_grad(true);
  std::optional<AutocastScope> scope;
  if (bf16) scope.emplace(DType::kBFloat16);
  const Tensor out = f();
  scope.reset();
  Pass p;
  p.y_dtype = out.dtype();
  const Tensor y = cast(out, DType::kFloat32);
  p.y = values(y);
  sum(mul(y, g)).backward();
  for (const Tensor& t : inputs) {
    p.grads.push_back(values(t.grad()));
    p.grad_dtypes.push_back(t.grad().dtype());
  }
  return p;
}

// Close to float32 (bfloat16 has an 8-bit mantissa) but not equal to it: the product really
// was computed from rounded operands.
void expect_bf16_of(const std::vector<double>& got, const std::vector<double>& fp32,
                    const char* what) {
  const double err = relative_error(got, fp32);
  EXPECT_LT(err, 1.5e-2) << what;
  EXPECT_GT(err, 1e-5) << what << ": identical to float32, so bfloat16 was not used";
}

class AutocastTest : public DeviceTest {};

TEST_P(AutocastTest, LinearComputesInBfloat16) {
  const Device d = device();
  const Tensor x = random_tensor({6, 67}, 1, DType::kFloat32, d);
  const Tensor w = random_tensor({9, 67}, 2, DType::kFloat32, d);
  const Tensor b = random_tensor({9}, 3, DType::kFloat32, d);
  const Tensor g = random_tensor({6, 9}, 4, DType::kFloat32, d);
  for (const Tensor& t : {x, w, b}) t.set_requires_grad(true);
  auto f = [&] { return linear(x, w, b); };
  const Pass lo = run_pass(f, {x, w, b}, g, true), hi = run_pass(f, {x, w, b}, g, false);
  EXPECT_EQ(lo.y_dtype, DType::kBFloat16);
  EXPECT_EQ(hi.y_dtype, DType::kFloat32);
  for (DType t : lo.grad_dtypes) EXPECT_EQ(t, DType::kFloat32);
  expect_bf16_of(lo.y, hi.y, "y");
  expect_bf16_of(lo.grads[0], hi.grads[0], "dx");
  expect_bf16_of(lo.grads[1], hi.grads[1], "dw");
  expect_bf16_of(lo.grads[2], hi.grads[2], "db");

  // y is the product of the rounded operands accumulated in float32 and rounded, plus the rounded
  // bias, rounded again.
  auto rounded = [](const Tensor& t) {
    std::vector<double> v = values(t);
    for (double& e : v) e = static_cast<float>(bfloat16(static_cast<float>(e)));
    return v;
  };
  const std::vector<double> xr = rounded(x), wr = rounded(w), bv = values(b);
  std::vector<double> ref(6 * 9);
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 9; ++j) {
      double s = 0;
      for (int k = 0; k < 67; ++k) s += xr[i * 67 + k] * wr[j * 67 + k];
      const float prod = bfloat16(static_cast<float>(s));
      const float bias = bfloat16(static_cast<float>(bv[j]));
      ref[i * 9 + j] = static_cast<float>(bfloat16(prod + bias));
    }
  // The float32 accumulation order may move a product across a rounding boundary: one ulp.
  EXPECT_TRUE(testing::all_close(lo.y, ref, 0x1p-7, 1e-5));
}

TEST_P(AutocastTest, Conv2dComputesInBfloat16) {
  const Device d = device();
  const Tensor x = random_tensor({2, 5, 9, 9}, 11, DType::kFloat32, d);
  const Tensor w = random_tensor({7, 5, 3, 3}, 12, DType::kFloat32, d);
  const Tensor b = random_tensor({7}, 13, DType::kFloat32, d);
  const Tensor g = random_tensor({2, 7, 5, 5}, 14, DType::kFloat32, d);
  for (const Tensor& t : {x, w, b}) t.set_requires_grad(true);
  auto f = [&] { return conv2d(x, w, b, /*stride=*/2, /*padding=*/1); };
  const Pass lo = run_pass(f, {x, w, b}, g, true), hi = run_pass(f, {x, w, b}, g, false);
  EXPECT_EQ(lo.y_dtype, DType::kBFloat16);
  for (DType t : lo.grad_dtypes) EXPECT_EQ(t, DType::kFloat32);
  expect_bf16_of(lo.y, hi.y, "y");
  expect_bf16_of(lo.grads[0], hi.grads[0], "dx");
  expect_bf16_of(lo.grads[1], hi.grads[1], "dw");
  expect_bf16_of(lo.grads[2], hi.grads[2], "db");
}

// The logits and the parameters' gradients of one cross-entropy pass, each checked float32 (the
// parameters, their gradients, the running statistics and the model's output stay float32 in
// every compute dtype) and the autocast scope checked closed after the forward.
struct ModelPass {
  std::vector<double> logits, grads;
};
ModelPass model_pass(Module& model, const Tensor& x, const Tensor& labels) {
  for (const Tensor& p : model.parameters()) p.zero_grad(true);
  const Tensor logits = model(x);
  EXPECT_EQ(logits.dtype(), DType::kFloat32);
  EXPECT_EQ(autocast_dtype(), DType::kFloat32) << "the scope must end with the forward";
  cross_entropy(logits, labels).backward();
  ModelPass out{values(logits), {}};
  for (const auto& [name, p] : model.named_parameters()) {
    EXPECT_EQ(p.dtype(), DType::kFloat32) << name;
    EXPECT_EQ(p.grad().dtype(), DType::kFloat32) << name;
    const auto gv = values(p.grad());
    out.grads.insert(out.grads.end(), gv.begin(), gv.end());
  }
  for (const auto& [name, b] : model.named_buffers()) {  // running statistics
    if (is_floating(b.dtype())) {
      EXPECT_EQ(b.dtype(), DType::kFloat32) << name;
    }
  }
  return out;
}

// A whole model: set_compute_dtype runs its forward under the scope (and closes it after), and
// the result is float32's within bf16 noise; back to float32 it computes exactly as before.
// LeNet-5 and one batch of four 28x28 images: pass(dtype) is model_pass in that compute dtype.
struct LeNetBatch {
  std::shared_ptr<Module> model;
  Tensor x, labels;
  explicit LeNetBatch(Device d) {
    ModelOptions mo;
    mo.device = d;
    mo.in_channels = 1;
    mo.height = mo.width = 28;
    mo.seed = 3;
    model = make_model("lenet5", mo);
    x = random_tensor({4, 1, 28, 28}, 21, DType::kFloat32, d);
    labels = Tensor::from_vector<int32_t>({1, 7, 3, 0}, {4}, d);
  }
  ModelPass pass(DType compute) {
    model->set_compute_dtype(compute);
    EXPECT_EQ(model->compute_dtype(), compute);
    return model_pass(*model, x, labels);
  }
};

TEST_P(AutocastTest, ModuleComputeDtypeRunsTheModelInBfloat16) {
  LeNetBatch lenet(device());
  const ModelPass fp32 = lenet.pass(DType::kFloat32);
  const ModelPass bf16 = lenet.pass(DType::kBFloat16);
  expect_bf16_of(bf16.logits, fp32.logits, "logits");
  // Gradients pass through five bf16 products backward (and the forward's rounding): a few
  // percent (3.5 % here on the CPU), as with PyTorch's autocast.
  const double err = relative_error(bf16.grads, fp32.grads);
  EXPECT_LT(err, 6e-2);
  EXPECT_GT(err, 1e-5);
  const ModelPass again = lenet.pass(DType::kFloat32);
  EXPECT_EQ(again.logits, fp32.logits);
  EXPECT_EQ(again.grads, fp32.grads);
}

// float16 autocast: the same mechanism with float16 activations (5-bit exponent, 10-bit mantissa):
// closer to float32 than bfloat16 where nothing overflows or underflows, as here at
// initialisation (the training path scales the loss against underflow: train/step.h).
TEST_P(AutocastTest, ModuleComputeDtypeRunsTheModelInFloat16) {
  LeNetBatch lenet(device());
  const ModelPass fp32 = lenet.pass(DType::kFloat32);
  const ModelPass bf16 = lenet.pass(DType::kBFloat16);
  const ModelPass fp16 = lenet.pass(DType::kFloat16);
  const double logit_err = relative_error(fp16.logits, fp32.logits);
  const double grad_err = relative_error(fp16.grads, fp32.grads);
  EXPECT_LT(logit_err, 2e-3);
  EXPECT_GT(logit_err, 0.0);  // it did compute in float16
  EXPECT_LT(grad_err, 1e-2);
  EXPECT_LT(grad_err, relative_error(bf16.grads, fp32.grads));
}

// A residual network's ops take bfloat16 activations: batch norm (float32 parameters and running
// statistics), ReLU, the residual add and pooling.
TEST_P(AutocastTest, BlocksRunWithBfloat16Activations) {
  const Device d = device();
  ModelOptions mo;
  mo.device = d;
  mo.seed = 7;
  auto model = make_model("resnet8", mo);
  const Tensor x = random_tensor({4, 3, 32, 32}, 61, DType::kFloat32, d);
  const Tensor labels = Tensor::from_vector<int32_t>({1, 7, 3, 0}, {4}, d);
  const ModelPass fp32 = model_pass(*model, x, labels);
  model->set_compute_dtype(DType::kBFloat16);
  const ModelPass bf16 = model_pass(*model, x, labels);
  expect_bf16_of(bf16.logits, fp32.logits, "logits");
  // The gradients of a BN network at initialisation are sums that cancel heavily, so bfloat16
  // rounding shows: 9 % here overall, 20-50 % in the first layers' weight gradients. PyTorch's
  // CPU autocast (bf16) on its ResNet-8 with the same input gives the same picture (22-31 % in the
  // first layers, 0.6 % at the head; benchmarks/pytorch/train.py's CifarResNet, torch 2.15).
  const double err = relative_error(bf16.grads, fp32.grads);
  EXPECT_LT(err, 0.2);
  EXPECT_GT(err, 1e-5);
}

// SGD from one initialisation, 30 steps on one batch: bf16 lowers the loss as float32 does.
TEST_P(AutocastTest, Bfloat16TrainingLowersTheLossLikeFloat32) {
  const Device d = device();
  const Tensor x = random_tensor({32, 1, 28, 28}, 31, DType::kFloat32, d);
  std::vector<int32_t> ly;
  for (int i = 0; i < 32; ++i) ly.push_back((i * 7) % 10);
  const Tensor labels = Tensor::from_vector<int32_t>(ly, {32}, d);
  auto train = [&](DType compute) {
    ModelOptions mo;
    mo.device = d;
    mo.in_channels = 1;
    mo.height = mo.width = 28;
    mo.seed = 5;
    auto model = make_model("lenet5", mo);
    model->set_compute_dtype(compute);
    auto opt = optim::make_optimizer("sgd", model->named_parameters(),
                                     R"({"lr": 0.005, "momentum": 0.9})");
    std::vector<double> losses;
    for (int s = 0; s < 30; ++s) {
      opt->zero_grad();
      const Tensor loss = cross_entropy((*model)(x), labels);
      losses.push_back(loss.item());
      loss.backward();
      opt->step();
    }
    return losses;
  };
  const std::vector<double> f = train(DType::kFloat32), b = train(DType::kBFloat16);
  EXPECT_NEAR(b.front(), f.front(), 2e-2 * f.front());
  EXPECT_LT(f.back(), 0.1 * f.front());  // 3.88 -> 0.19 on the CPU
  EXPECT_LT(b.back(), 0.1 * b.front());
  EXPECT_NEAR(b.back(), f.back(), 0.25 * f.back() + 0.05);
}

// The ops without a bfloat16 kernel take bfloat16 activations through float32 (via_float32): the
// result is the float32 op on the widened input, rounded; gradients come back bfloat16, and a
// bfloat16 tensor used twice accumulates its gradient (in float, rounded once).
TEST_P(AutocastTest, PoolingReductionsAndAccumulationTakeBfloat16) {
  const Device d = device();
  const Tensor xf = random_tensor({2, 3, 6, 6}, 71, DType::kFloat32, d);
  const Tensor x = cast(xf, DType::kBFloat16);  // a bfloat16 leaf
  x.set_requires_grad(true);
  const Tensor wide = cast(x, DType::kFloat32).detach();
  auto same = [&](const Tensor& got, const Tensor& want_f32, const char* what) {
    EXPECT_EQ(got.dtype(), DType::kBFloat16) << what;
    EXPECT_EQ(values(got), values(cast(want_f32, DType::kBFloat16))) << what;
  };
  same(max_pool2d(x, 2), max_pool2d(wide, 2), "max_pool2d");
  same(avg_pool2d(x, 3), avg_pool2d(wide, 3), "avg_pool2d");
  same(global_avg_pool(x), global_avg_pool(wide), "global_avg_pool");
  same(sum(x, 1), sum(wide, 1), "sum over an axis");
  same(mean(x), mean(wide), "mean");
  // d/dx of sum(2 x + x) = 3 everywhere, reached through two uses of x.
  sum(cast(add(mul(x, 2.0), x), DType::kFloat32)).backward();
  EXPECT_EQ(x.grad().dtype(), DType::kBFloat16);
  for (double v : values(x.grad())) EXPECT_EQ(v, 3.0);
  // The pooled gradient is the float32 op's, rounded.
  x.zero_grad(true);
  sum(cast(global_avg_pool(x), DType::kFloat32)).backward();
  for (double v : values(x.grad())) EXPECT_EQ(v, static_cast<float>(bfloat16(1.0f / 36)));
}

CYCLONE_INSTANTIATE_DEVICE_TEST(AutocastTest);

TEST(Autocast, OffByDefaultScopesNestAndFloat64IsLeftAlone) {
  EXPECT_EQ(autocast_dtype(), DType::kFloat32);
  const Tensor a = random_tensor({5, 8}, 41, DType::kFloat64);
  const Tensor b = random_tensor({8, 3}, 42, DType::kFloat64);
  const std::vector<double> plain = values(matmul(a, b));
  {
    AutocastScope outer(DType::kBFloat16);
    EXPECT_EQ(autocast_dtype(), DType::kBFloat16);
    const Tensor y = matmul(a, b);  // float64: not a float32 product, left alone
    EXPECT_EQ(y.dtype(), DType::kFloat64);
    EXPECT_EQ(values(y), plain);
    {
      AutocastScope inner(DType::kFloat32);
      EXPECT_EQ(autocast_dtype(), DType::kFloat32);
    }
    EXPECT_EQ(autocast_dtype(), DType::kBFloat16);
  }
  EXPECT_EQ(autocast_dtype(), DType::kFloat32);
  testing::expect_error([] { AutocastScope bad(DType::kInt32); }, {"autocast", "int32"});
  ModelOptions mo;
  auto model = make_model("lenet5", mo);
  testing::expect_error([&] { model->set_compute_dtype(DType::kFloat64); },
                        {"set_compute_dtype", "float64"});
}

// backward() inside an autocast scope does not reach back into a float32 forward: the products
// of the backward stay float32 (as PyTorch, whose autocast leaves the backward alone).
TEST(Autocast, BackwardInsideTheScopeKeepsTheForwardsDtype) {
  const Tensor x = random_tensor({4, 5}, 51, DType::kFloat32);
  auto grads = [&](bool in_scope) {
    Tensor w = random_tensor({6, 5}, 52, DType::kFloat32), b = random_tensor({6}, 53);
    w.set_requires_grad();
    b.set_requires_grad();
    const Tensor y = linear(x, w, b);  // float32 forward, no scope
    const Tensor loss = sum(mul(y, y));
    if (in_scope) {
      AutocastScope scope(DType::kBFloat16);
      loss.backward();
    } else {
      loss.backward();
    }
    EXPECT_EQ(w.grad().dtype(), DType::kFloat32);
    return values(w.grad());
  };
  EXPECT_EQ(grads(true), grads(false));
}

// The same bf16 model on both devices: bf16 tensor cores against the CPU's widened float32.
TEST(AutocastCuda, LeNetMatchesCpu) {
  CYCLONE_SKIP_IF_UNAVAILABLE(Device::cuda());
  auto logits_on = [](Device d) {
    ModelOptions mo;
    mo.device = d;
    mo.in_channels = 1;
    mo.height = mo.width = 28;
    mo.seed = 9;
    auto model = make_model("lenet5", mo);
    model->set_compute_dtype(DType::kBFloat16);
    return values((*model)(random_tensor({8, 1, 28, 28}, 51, DType::kFloat32, d)));
  };
  EXPECT_LT(relative_error(logits_on(Device::cuda()), logits_on(Device::cpu())), 1e-2);
}

}  // namespace
}  // namespace cyclone
