// The model registry (models/registry.h): exact parameter counts against formulas written here
// independently of the model code, output shapes, naming (PyTorch reference layouts), seeding,
// errors, summary() and the weight-decay split.
#include <gtest/gtest.h>

#include <set>

#include "common/test_util.h"
#include "cyclone/layers/param_groups.h"
#include "cyclone/models/registry.h"

namespace cyclone {
namespace {

// ---- the reference counts, from the papers' architectures ----

int64_t bn(int64_t c) { return 2 * c; }                                        // weight + bias
int64_t conv(int64_t in, int64_t out, int64_t k) { return in * out * k * k; }  // no bias
int64_t fc(int64_t in, int64_t out) { return in * out + out; }

// WRN-D-K (Zagoruyko & Komodakis 2016): stem conv, 3 groups of n pre-activation blocks (BN, 3x3,
// BN, 3x3, a 1x1 projection where the width changes), final BN, linear.
int64_t wrn_count(int depth, int k, int64_t classes, int64_t in_ch = 3) {
  const int n = (depth - 4) / 6;
  const int64_t widths[] = {16, 16LL * k, 32LL * k, 64LL * k};
  int64_t p = conv(in_ch, 16, 3);
  for (int g = 1; g <= 3; ++g)
    for (int b = 0; b < n; ++b) {
      const int64_t in = b == 0 ? widths[g - 1] : widths[g], out = widths[g];
      p += bn(in) + conv(in, out, 3) + bn(out) + conv(out, out, 3);
      if (in != out || (b == 0 && g > 1)) p += conv(in, out, 1);
    }
  return p + bn(widths[3]) + fc(widths[3], classes);
}

// ResNet-N for CIFAR (He et al. 2016, Sec. 4.2), option A shortcuts (no parameters).
int64_t resnet_count(int depth, int64_t classes, int64_t in_ch = 3) {
  const int n = (depth - 2) / 6;
  int64_t p = conv(in_ch, 16, 3) + bn(16);
  int64_t in = 16;
  for (int64_t w : {16, 32, 64})
    for (int b = 0; b < n; ++b) {
      p += conv(b == 0 ? in : w, w, 3) + bn(w) + conv(w, w, 3) + bn(w);
      in = w;
    }
  return p + fc(64, classes);
}

// LeNet-5: 5x5 convs with biases, 400 -> 120 -> 84 -> classes for 28x28 (padded) or 32x32 input.
int64_t lenet_count(int64_t in_ch, int64_t classes) {
  return conv(in_ch, 6, 5) + 6 + conv(6, 16, 5) + 16 + fc(400, 120) + fc(120, 84) + fc(84, classes);
}

ModelOptions opts(int c, int h, int w, int classes) {
  ModelOptions o;
  o.in_channels = c;
  o.height = h;
  o.width = w;
  o.num_classes = classes;
  return o;
}

TEST(ModelRegistry, ReferenceFormulasGiveThePublishedCounts) {
  // Cross-checks of the formulas above against published figures: WRN-28-10's 36.5M (the
  // reference implementation prints 36,479,194), LeNet-5's 61,706 on MNIST, and the CIFAR
  // ResNets' 0.27M / 0.46M / 0.66M / 0.85M / 1.7M (He et al. 2016, Table 6; option A).
  EXPECT_EQ(wrn_count(28, 10, 10), 36479194);
  EXPECT_EQ(lenet_count(1, 10), 61706);
  EXPECT_EQ(resnet_count(20, 10), 269722);
  EXPECT_EQ(resnet_count(32, 10), 464154);
  EXPECT_EQ(resnet_count(44, 10), 658586);
  EXPECT_EQ(resnet_count(56, 10), 853018);
  EXPECT_EQ(resnet_count(110, 10), 1727962);
}

TEST(ModelRegistry, EveryRegisteredModelHasItsExactParameterCount) {
  // Counts do not depend on the values, so the cheap constant initializer keeps this fast.
  ModelOptions cifar = opts(3, 32, 32, 10), mnist = opts(1, 28, 28, 10);
  cifar.initializer = mnist.initializer = "zeros";
  const std::vector<std::tuple<std::string, ModelOptions, int64_t>> cases = {
      {"lenet5", mnist, 61706},
      {"lenet5", cifar, lenet_count(3, 10)},
      {"mlp", mnist, fc(784, 512) + fc(512, 256) + fc(256, 10)},
      {"wrn-16-4", cifar, wrn_count(16, 4, 10)},
      {"wrn-16-8", cifar, wrn_count(16, 8, 10)},
      {"wrn-28-10", cifar, 36479194},
      {"wrn-40-4", cifar, wrn_count(40, 4, 10)},
      {"resnet20", cifar, 269722},
      {"resnet32", cifar, resnet_count(32, 10)},
      {"resnet44", cifar, resnet_count(44, 10)},
      {"resnet56", cifar, 853018},
      {"resnet110", cifar, resnet_count(110, 10)},
  };
  std::set<std::string> covered;
  for (const auto& [name, o, expect] : cases) {
    auto m = make_model(name, o);
    EXPECT_EQ(m->num_parameters(), expect) << name << " on " << o.in_channels << "x" << o.height;
    covered.insert(name);
  }
  for (const auto& n : model_names()) EXPECT_TRUE(covered.count(n)) << n << " has no count test";
  // Patterns, other class counts and channel counts.
  ModelOptions c100 = opts(3, 32, 32, 100), gray = opts(1, 28, 28, 10);
  c100.initializer = gray.initializer = "zeros";
  EXPECT_EQ(make_model("wrn-28-10", c100)->num_parameters(), wrn_count(28, 10, 100));
  EXPECT_EQ(make_model("wrn-10-1", cifar)->num_parameters(), wrn_count(10, 1, 10));
  EXPECT_EQ(make_model("wrn-22-8", cifar)->num_parameters(), wrn_count(22, 8, 10));
  EXPECT_EQ(make_model("resnet8", gray)->num_parameters(), resnet_count(8, 10, 1));
  EXPECT_EQ(make_model("mlp-64-32-16", gray)->num_parameters(),
            fc(784, 64) + fc(64, 32) + fc(32, 16) + fc(16, 10));
}

TEST(ModelRegistry, OutputShapesOnEachInputSize) {
  const std::vector<std::pair<std::string, ModelOptions>> cases = {
      {"lenet5", opts(1, 28, 28, 10)},    {"lenet5", opts(3, 32, 32, 10)},
      {"mlp", opts(1, 28, 28, 10)},       {"mlp-32", opts(3, 32, 32, 100)},
      {"resnet20", opts(3, 32, 32, 10)},  {"resnet56", opts(3, 32, 32, 100)},
      {"resnet110", opts(1, 28, 28, 10)}, {"wrn-16-2", opts(3, 32, 32, 10)},
      {"wrn-10-1", opts(1, 28, 28, 10)},
  };
  for (const auto& [name, o] : cases) {
    auto m = make_model(name, o);
    Tensor x = testing::random_tensor({2, o.in_channels, o.height, o.width}, 1);
    EXPECT_EQ((*m)(x).shape(), (Shape{2, o.num_classes})) << name;
  }
}

TEST(ModelRegistry, OutputShapesOfTheWideNetworks) {
  for (const std::string name : {"wrn-16-4", "wrn-16-8", "wrn-28-10", "wrn-40-4"}) {
    ModelOptions o = opts(3, 32, 32, 10);
    o.initializer = "zeros";  // the values do not matter here
    auto m = make_model(name, o);
    m->eval();
    autograd::NoGradGuard no_grad;
    EXPECT_EQ((*m)(testing::random_tensor({1, 3, 32, 32}, 1)).shape(), (Shape{1, 10})) << name;
  }
}

TEST(ModelRegistry, ErrorsNameTheOffendingNameOrDepth) {
  const ModelOptions o = opts(3, 32, 32, 10);
  auto message = [&](const std::string& name, const ModelOptions& opt) -> std::string {
    try {
      make_model(name, opt);
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  const std::string unknown = message("vgg16", o);
  for (const char* part :
       {"vgg16", "lenet5", "wrn-28-10", "resnet56", "wrn-D-K", "resnetN", "mlp-H1-H2"})
    EXPECT_NE(unknown.find(part), std::string::npos) << part << " in: " << unknown;
  EXPECT_NE(message("wrn-27-10", o).find("depth 27"), std::string::npos) << message("wrn-27-10", o);
  EXPECT_NE(message("resnet21", o).find("depth 21"), std::string::npos) << message("resnet21", o);
  EXPECT_NE(message("wrn-28-0", o).find("unknown model 'wrn-28-0'"), std::string::npos);
  EXPECT_NE(message("mlp-0", o).find("unknown model"), std::string::npos);
  EXPECT_NE(message("resnet", o).find("unknown model"), std::string::npos);
  EXPECT_NE(message("wrn-28-10-3", o).find("unknown model"), std::string::npos);
  // A typo gets the name it is closest to, as flags and config keys do.
  EXPECT_NE(message("lenet", o).find("(did you mean 'lenet5'?)"), std::string::npos)
      << message("lenet", o);
  ModelOptions typo = o;
  typo.activation = "rel";
  EXPECT_NE(message("lenet5", typo).find("unknown activation 'rel' (did you mean 'relu'?)"),
            std::string::npos)
      << message("lenet5", typo);
  typo = o;
  typo.initializer = "he_norml";
  EXPECT_NE(message("lenet5", typo).find("unknown initializer 'he_norml' (did you mean "
                                         "'he_normal'?)"),
            std::string::npos)
      << message("lenet5", typo);
  EXPECT_NE(message("lenet5", opts(1, 8, 8, 10)).find("8x8"), std::string::npos);
  ModelOptions bad = o;
  bad.num_classes = 0;
  EXPECT_NE(message("resnet20", bad).find("num_classes"), std::string::npos);
  bad = o;
  bad.dropout = 0.3;
  EXPECT_NE(message("resnet20", bad).find("dropout"), std::string::npos);
  bad.activation = "relux";
  EXPECT_NE(message("wrn-16-2", bad).find("relux"), std::string::npos);
  bad = o;
  bad.initializer = "glorot";
  EXPECT_NE(message("lenet5", bad).find("glorot"), std::string::npos);
}

TEST(ModelRegistry, WeightsAreDeterministicFromTheSeed) {
  ModelOptions o = opts(3, 32, 32, 10);
  o.seed = 7;
  auto a = make_model("resnet20", o), b = make_model("resnet20", o);
  o.seed = 8;
  auto c = make_model("resnet20", o);
  const NamedTensors sa = a->state_dict(), sb = b->state_dict(), sc = c->state_dict();
  ASSERT_EQ(sa.size(), sb.size());
  bool any_differs = false;
  for (size_t i = 0; i < sa.size(); ++i) {
    EXPECT_TRUE(testing::all_close(sa[i].second, sb[i].second, 0, 0)) << sa[i].first;
    if (sa[i].second.dtype() == DType::kFloat32)
      any_differs |= testing::values(sa[i].second) != testing::values(sc[i].second);
  }
  EXPECT_TRUE(any_differs);
}

TEST(ModelRegistry, SummaryOfLeNet5ListsEachLayersOutputShape) {
  auto m = make_model("lenet5", opts(1, 28, 28, 10));
  const std::string s = summary(*m, {2, 1, 28, 28});
  for (const char* part :
       {"conv1", "[2, 6, 28, 28]", "pool1", "[2, 6, 14, 14]", "conv2", "[2, 16, 10, 10]", "pool2",
        "[2, 16, 5, 5]", "flatten", "[2, 400]", "fc1", "[2, 120]", "fc2", "[2, 84]", "fc3",
        "[2, 10]", "total parameters: 61706"})
    EXPECT_NE(s.find(part), std::string::npos) << part << " in:\n" << s;
}

TEST(ModelRegistry, BiasAndBatchNormParametersAreExemptFromDecay) {
  auto m = make_model("wrn-16-2", opts(3, 32, 32, 10));
  int64_t exempt = 0;
  for (auto& [n, p] : no_weight_decay_params(*m)) {
    EXPECT_TRUE(n.find("bn") != std::string::npos || n == "fc.bias") << n;
    exempt += p.numel();
  }
  // Every BN's weight and bias (2 C each) plus the classifier's bias.
  int64_t bn_params = 0;
  for (auto& [n, p] : m->named_parameters())
    if (n.find("bn") != std::string::npos) bn_params += p.numel();
  EXPECT_EQ(exempt, bn_params + 10);
  EXPECT_EQ(no_weight_decay_params(*m).size() + weight_decay_params(*m).size(),
            m->named_parameters().size());
}

}  // namespace
}  // namespace cyclone
