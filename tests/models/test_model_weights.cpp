// Models and their weights: state-dict round trips with batch-norm buffers, loading state dicts
// named as the PyTorch reference implementations name them, CPU-vs-CUDA parity of a whole
// training step, and a small CNN that memorises a fixed batch.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <set>

#include "common/test_util.h"
#include "cyclone/core/generator.h"
#include "cyclone/models/registry.h"

namespace cyclone {
namespace {

ModelOptions cifar(uint64_t seed) {
  ModelOptions o;
  o.seed = seed;
  return o;
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          (name + std::to_string(::getpid()) + ".safetensors"))
      .string();
}

// The state dict of xternalz/WideResNet-pytorch's WideResNet(depth, num_classes=10, widen_factor)
// as PyTorch writes it: names and shapes, derived here from that code's structure.
std::map<std::string, Shape> reference_wrn_state(int depth, int k, int64_t classes) {
  std::map<std::string, Shape> s;
  auto bn = [&](const std::string& p, int64_t c) {
    for (const char* n : {"weight", "bias", "running_mean", "running_var"}) s[p + "." + n] = {c};
    s[p + ".num_batches_tracked"] = Shape();
  };
  const int n = (depth - 4) / 6;
  const int64_t widths[] = {16, 16LL * k, 32LL * k, 64LL * k};
  s["conv1.weight"] = {16, 3, 3, 3};
  for (int g = 1; g <= 3; ++g)
    for (int i = 0; i < n; ++i) {
      const std::string p = "block" + std::to_string(g) + ".layer." + std::to_string(i) + ".";
      const int64_t in = i == 0 ? widths[g - 1] : widths[g], out = widths[g];
      bn(p + "bn1", in);
      s[p + "conv1.weight"] = {out, in, 3, 3};
      bn(p + "bn2", out);
      s[p + "conv2.weight"] = {out, out, 3, 3};
      if (in != out) s[p + "convShortcut.weight"] = {out, in, 1, 1};
    }
  bn("bn1", widths[3]);
  s["fc.weight"] = {classes, widths[3]};
  s["fc.bias"] = {classes};
  return s;
}

// akamaster/pytorch_resnet_cifar10's resnet20() state dict.
std::map<std::string, Shape> reference_resnet20_state() {
  std::map<std::string, Shape> s;
  auto bn = [&](const std::string& p, int64_t c) {
    for (const char* n : {"weight", "bias", "running_mean", "running_var"}) s[p + "." + n] = {c};
    s[p + ".num_batches_tracked"] = Shape();
  };
  s["conv1.weight"] = {16, 3, 3, 3};
  bn("bn1", 16);
  int64_t in = 16;
  for (int g = 1; g <= 3; ++g) {
    const int64_t w = 16LL << (g - 1);
    for (int i = 0; i < 3; ++i) {
      const std::string p = "layer" + std::to_string(g) + "." + std::to_string(i) + ".";
      s[p + "conv1.weight"] = {w, i == 0 ? in : w, 3, 3};
      bn(p + "bn1", w);
      s[p + "conv2.weight"] = {w, w, 3, 3};
      bn(p + "bn2", w);
    }
    in = w;
  }
  s["linear.weight"] = {10, 64};
  s["linear.bias"] = {10};
  return s;
}

// A state dict with the reference's names and shapes and distinct values, as PyTorch would hand
// it over (num_batches_tracked converted to int32, see layers/conv_modules.h).
NamedTensors make_state(const std::map<std::string, Shape>& ref) {
  NamedTensors out;
  uint64_t seed = 100;
  for (const auto& [name, shape] : ref) {
    if (name.ends_with("num_batches_tracked")) {
      out.emplace_back(name, Tensor::from_vector<int32_t>({17}, shape, Device::cpu()));
    } else if (name.ends_with("running_var")) {
      out.emplace_back(
          name, testing::random_tensor(shape, seed++, DType::kFloat32, Device::cpu(), 0.5, 2.0));
    } else {
      out.emplace_back(
          name, testing::random_tensor(shape, seed++, DType::kFloat32, Device::cpu(), -0.2, 0.2));
    }
  }
  return out;
}

void expect_loads_reference(Module& m, const std::map<std::string, Shape>& ref) {
  std::set<std::string> mine;
  for (const auto& [n, t] : m.state_dict()) {
    mine.insert(n);
    auto it = ref.find(n);
    ASSERT_NE(it, ref.end()) << "'" << n << "' is not a name of the reference";
    EXPECT_EQ(t.shape(), it->second) << n;
  }
  for (const auto& [n, s] : ref) EXPECT_TRUE(mine.count(n)) << "'" << n << "' is missing";
  const NamedTensors state = make_state(ref);
  EXPECT_TRUE(m.load_state_dict(state).empty());  // strict
  std::map<std::string, Tensor> now;
  for (const auto& [n, t] : m.state_dict()) now[n] = t;
  for (const auto& [n, t] : state) EXPECT_TRUE(testing::all_close(now.at(n), t, 0, 0)) << n;
}

TEST(ModelWeights, WideResNetLoadsTheReferenceNaming) {
  // Naming: xternalz/WideResNet-pytorch (wideresnet.py) -> conv1, block{g}.layer.{i}.{bn1, conv1,
  // bn2, conv2, convShortcut}, bn1, fc. See models/wide_resnet.h.
  auto m = make_model("wrn-16-2", cifar(1));
  expect_loads_reference(*m, reference_wrn_state(16, 2, 10));
  // WRN-10-1 has no projection in block1 (16 -> 16): the reference has none there either.
  auto thin = make_model("wrn-10-1", cifar(1));
  expect_loads_reference(*thin, reference_wrn_state(10, 1, 10));
}

TEST(ModelWeights, CifarResNetLoadsTheReferenceNaming) {
  // Naming: akamaster/pytorch_resnet_cifar10 (resnet.py). See models/resnet_cifar.h.
  auto m = make_model("resnet20", cifar(1));
  expect_loads_reference(*m, reference_resnet20_state());
}

TEST(ModelWeights, WideResNetStateDictRoundTripsWithBatchNormBuffers) {
  auto a = make_model("wrn-16-2", cifar(1));
  // Two training-mode forwards move the running statistics and the batch counters off their
  // initial values, so the buffers carry information the round trip must keep.
  Tensor x = testing::random_tensor({4, 3, 32, 32}, 2);
  (*a)(x);
  (*a)(x);
  const std::string path = temp_path("wrn16_2");
  a->save(path);
  auto b = make_model("wrn-16-2", cifar(2));
  EXPECT_TRUE(b->load(path).empty());
  std::filesystem::remove(path);
  const NamedTensors sa = a->state_dict(), sb = b->state_dict();
  ASSERT_EQ(sa.size(), sb.size());
  for (size_t i = 0; i < sa.size(); ++i) {
    EXPECT_EQ(sa[i].first, sb[i].first);
    EXPECT_TRUE(testing::all_close(sa[i].second, sb[i].second, 0, 0)) << sa[i].first;
  }
  EXPECT_EQ(b->submodule("block1.layer.0.bn1").named_buffers()[2].second.item<int32_t>(), 2);
  a->eval();
  b->eval();
  EXPECT_TRUE(testing::all_close((*a)(x), (*b)(x), 0, 0));
}

// A whole WRN-16-2 training step (forward in train mode with dropout, loss, backward) on both
// devices from the same seed: the same initial weights, the same dropout masks, and logits, loss
// and every gradient within fp32 relative error (GPU.md: far under 1e-3).
TEST(ModelWeights, CudaWideResNetStepMatchesTheCpu) {
  CYCLONE_SKIP_IF_UNAVAILABLE(Device::cuda());
  ModelOptions o = cifar(5);
  o.dropout = 0.3;
  auto cpu = make_model("wrn-16-2", o);
  o.device = Device::cuda();
  auto gpu = make_model("wrn-16-2", o);
  const NamedTensors pc = cpu->named_parameters(), pg = gpu->named_parameters();
  ASSERT_EQ(pc.size(), pg.size());
  for (size_t i = 0; i < pc.size(); ++i)
    EXPECT_TRUE(testing::all_close(pg[i].second.to(Device::cpu()), pc[i].second, 0, 0))
        << "initial " << pc[i].first;
  Tensor x = testing::random_tensor({2, 3, 32, 32}, 9);
  Tensor y = Tensor::from_vector<int32_t>({3, 7}, {2}, Device::cpu());
  Tensor logits_c = (*cpu)(x), logits_g = (*gpu)(x.to(Device::cuda()));
  Tensor loss_c = cross_entropy(logits_c, y),
         loss_g = cross_entropy(logits_g, y.to(Device::cuda()));
  loss_c.backward();
  loss_g.backward();
  EXPECT_LT(testing::relative_error(testing::values(logits_g), testing::values(logits_c)), 1e-4);
  EXPECT_NEAR(loss_g.item(), loss_c.item(), 1e-4 * std::abs(loss_c.item()) + 1e-6);
  // All gradients together within 1e-3; each tensor within 2e-2, since another summation order
  // can put a ReLU input on the other side of zero (~1 in 5e6 of them), which moves that
  // channel's batch-norm bias gradient by ~5e-3 of its small tensor.
  std::vector<double> all_g, all_c;
  for (size_t i = 0; i < pc.size(); ++i) {
    ASSERT_TRUE(pg[i].second.grad().defined()) << pc[i].first;
    const auto g = testing::values(pg[i].second.grad()), c = testing::values(pc[i].second.grad());
    EXPECT_LT(testing::relative_error(g, c), 2e-2) << "grad " << pc[i].first;
    all_g.insert(all_g.end(), g.begin(), g.end());
    all_c.insert(all_c.end(), c.begin(), c.end());
  }
  EXPECT_LT(testing::relative_error(all_g, all_c), 1e-3) << "all gradients";
  const NamedTensors bc = cpu->named_buffers(), bg = gpu->named_buffers();
  for (size_t i = 0; i < bc.size(); ++i)
    EXPECT_TRUE(testing::all_close(bg[i].second.to(Device::cpu()), bc[i].second, 1e-4, 1e-5))
        << bc[i].first;
}

// A CIFAR ResNet with its parameters and buffers in float64 (a gradient check's reference) runs,
// option-A shortcut included, and computes float32's logits more precisely.
TEST(ModelWeights, CifarResNetRunsInFloat64) {
  auto m = make_model("resnet8", cifar(4));
  m->eval();
  const Tensor x = testing::random_tensor({2, 3, 32, 32}, 5);
  const Tensor y32 = (*m)(x);
  for (auto& [n, p] : m->named_parameters()) p.set_data(cast(p.detach(), DType::kFloat64));
  for (auto& [n, b] : m->named_buffers())
    if (is_floating(b.dtype())) b.set_data(cast(b.detach(), DType::kFloat64));
  const Tensor y64 = (*m)(cast(x, DType::kFloat64));
  EXPECT_EQ(y64.dtype(), DType::kFloat64);
  EXPECT_LT(testing::relative_error(testing::values(y64), testing::values(y32)), 1e-5);
}

// A model's dropout draws on the host from its own generator (none handed in through
// ModelOptions): the calling thread's reservation count shows it in training and not in eval,
// which is how train::StepRunner knows a CUDA graph would repeat the mask.
TEST(ModelWeights, DropoutDrawsShowInTheThreadsReservations) {
  ModelOptions o = cifar(2);
  o.dropout = 0.3;
  ASSERT_EQ(o.dropout_generator, nullptr);
  auto m = make_model("wrn-10-1", o);
  const Tensor x = testing::random_tensor({2, 3, 32, 32}, 3);
  uint64_t before = thread_random_reservations();
  (*m)(x);
  EXPECT_GT(thread_random_reservations(), before);
  m->eval();
  before = thread_random_reservations();
  (*m)(x);
  EXPECT_EQ(thread_random_reservations(), before);
}

TEST(ModelWeights, LeNet5OverfitsEightImages) {
  ModelOptions o;
  o.in_channels = 1;
  o.height = o.width = 28;
  o.seed = 3;
  auto m = make_model("lenet5", o);
  Tensor x = testing::random_tensor({8, 1, 28, 28}, 4, DType::kFloat32, Device::cpu(), 0.0, 1.0);
  Tensor y = Tensor::from_vector<int32_t>({0, 1, 2, 3, 4, 5, 6, 7}, {8}, Device::cpu());
  const auto params = m->parameters();
  std::vector<Tensor> velocity;
  for (auto& p : params) velocity.push_back(Tensor::zeros(p.shape()));
  double first = 0, last = 0;
  for (int step = 0; step < 300; ++step) {
    Tensor loss = cross_entropy((*m)(x), y);
    last = loss.item();
    if (step == 0) first = last;
    if (last < 0.01) break;
    for (auto& p : params) p.zero_grad();
    loss.backward();
    // SGD with momentum 0.9, lr 0.01.
    autograd::NoGradGuard g;
    for (size_t i = 0; i < params.size(); ++i) {
      velocity[i].copy_from(velocity[i] * 0.9 + params[i].grad());
      params[i].copy_from(params[i] - velocity[i] * 0.01);
    }
  }
  EXPECT_GT(first, 1.0);
  EXPECT_LT(last, 0.01) << "LeNet-5 must memorise 8 images";
}

}  // namespace
}  // namespace cyclone
