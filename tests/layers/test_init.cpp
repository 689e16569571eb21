// Initializers: fans as PyTorch/Keras compute them, the statistics of every named distribution on
// large tensors (mean, std, bounds), reproducibility from the seed, and errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "common/test_util.h"

namespace cyclone {
namespace {

constexpr double kTruncStd = 0.87962566103423978;

struct Stats {
  double mean = 0, std = 0, min = 0, max = 0;
};

Stats stats(const Tensor& t) {
  const auto v = testing::values(t);
  Stats s;
  for (double e : v) s.mean += e;
  s.mean /= v.size();
  for (double e : v) s.std += (e - s.mean) * (e - s.mean);
  s.std = std::sqrt(s.std / v.size());
  s.min = *std::min_element(v.begin(), v.end());
  s.max = *std::max_element(v.begin(), v.end());
  return s;
}

TEST(Init, FansFollowPyTorchAndKeras) {
  EXPECT_EQ(fans({10, 20}).fan_in, 20);  // linear [out, in]
  EXPECT_EQ(fans({10, 20}).fan_out, 10);
  EXPECT_EQ(fans({64, 3, 5, 5}).fan_in, 75);  // conv [out, in, kh, kw]
  EXPECT_EQ(fans({64, 3, 5, 5}).fan_out, 1600);
  EXPECT_EQ(fans({7}).fan_in, 7);  // Keras' rank-1 rule
  EXPECT_EQ(fans({7}).fan_out, 7);
  EXPECT_EQ(fans(Shape(std::vector<int64_t>{})).fan_in, 1);
}

struct InitCase {
  const char* name;
  bool truncated_normal, uniform;  // neither: an untruncated normal
  double variance_scale;
  bool fan_avg;
};

class InitStats : public ::testing::TestWithParam<InitCase> {};

TEST_P(InitStats, MatchTheFormulaOnALargeTensor) {
  const InitCase& c = GetParam();
  for (Shape shape : {Shape{512, 600}, Shape{128, 64, 3, 3}}) {
    for (DType dt : {DType::kFloat32, DType::kFloat64}) {
      Tensor w = testing::nan_tensor(shape, dt, Device::cpu());
      Generator gen(42);
      init_tensor(c.name, w, gen);
      const Fans f = fans(shape);
      const double n = c.fan_avg ? (f.fan_in + f.fan_out) / 2.0 : f.fan_in;
      const double want_std = std::sqrt(c.variance_scale / n);
      const Stats s = stats(w);
      const double count = static_cast<double>(shape.numel());
      const std::string what = std::string(c.name) + " " + dtype_name(dt);
      EXPECT_NEAR(s.mean, 0.0, 5 * want_std / std::sqrt(count)) << what;
      EXPECT_NEAR(s.std / want_std, 1.0, 0.01) << what;
      if (c.truncated_normal) {
        const double bound = 2 * want_std / kTruncStd;
        EXPECT_LE(s.max, bound * (1 + 1e-7)) << what;
        EXPECT_GE(s.min, -bound * (1 + 1e-7)) << what;
        EXPECT_GT(s.max, 0.99 * bound) << what;  // the tails reach the cut
        EXPECT_LT(s.min, -0.99 * bound) << what;
      } else if (c.uniform) {
        const double limit = std::sqrt(3 * c.variance_scale / n);
        EXPECT_LE(s.max, limit) << what;
        EXPECT_GE(s.min, -limit) << what;
        EXPECT_GT(s.max, 0.999 * limit) << what;
      } else {
        EXPECT_GT(s.max, 3.5 * want_std) << what;  // untruncated: tails beyond 2 std exist
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Named, InitStats,
                         ::testing::Values(InitCase{"he_normal", true, false, 2.0, false},
                                           InitCase{"he_uniform", false, true, 2.0, false},
                                           InitCase{"glorot_normal", true, false, 1.0, true},
                                           InitCase{"glorot_uniform", false, true, 1.0, true},
                                           InitCase{"lecun_normal", true, false, 1.0, false},
                                           InitCase{"lecun_uniform", false, true, 1.0, false},
                                           InitCase{"kaiming_normal", false, false, 2.0, false},
                                           InitCase{"kaiming_uniform", false, true, 2.0, false},
                                           InitCase{"xavier_normal", false, false, 1.0, true},
                                           InitCase{"xavier_uniform", false, true, 1.0, true}),
                         [](const ::testing::TestParamInfo<InitCase>& i) {
                           return std::string(i.param.name);
                         });

TEST(Init, TruncatedNormalQuantiles) {
  EXPECT_DOUBLE_EQ(truncated_normal_from_uniform(0.0), -2.0);
  EXPECT_NEAR(truncated_normal_from_uniform(0.5), 0.0, 1e-15);
  EXPECT_NEAR(truncated_normal_from_uniform(1 - 1e-16), 2.0, 1e-9);
  // The truncated CDF at 1: (Phi(1) - Phi(-2)) / (Phi(2) - Phi(-2)).
  const double phi = [](double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }(1.0);
  const double lo = 0.5 * std::erfc(2 / std::sqrt(2.0)), hi = 0.5 * std::erfc(-2 / std::sqrt(2.0));
  EXPECT_NEAR(truncated_normal_from_uniform((phi - lo) / (hi - lo)), 1.0, 1e-12);
  double prev = -3;
  for (int k = 0; k <= 1000; ++k) {
    const double z = truncated_normal_from_uniform(k / 1000.0 * (1 - 1e-12));
    EXPECT_GT(z, prev);
    prev = z;
  }
}

TEST(Init, ReproducibleFromTheSeed) {
  for (const std::string& name : init_names()) {
    Tensor a = Tensor::empty({33, 17}, DType::kFloat32, Device::cpu());
    Tensor b = Tensor::empty({33, 17}, DType::kFloat32, Device::cpu());
    Tensor c = Tensor::empty({33, 17}, DType::kFloat32, Device::cpu());
    Generator ga(7), gb(7), gc(8);
    init_tensor(name, a, ga);
    init_tensor(name, b, gb);
    init_tensor(name, c, gc);
    EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>()) << name;
    EXPECT_EQ(ga.offset(), gb.offset()) << name;
    if (name != "zeros" && name != "ones") {
      EXPECT_NE(a.to_vector<float>(), c.to_vector<float>()) << name;
      EXPECT_GT(ga.offset(), 0u) << name;
      // Consecutive draws from one generator differ.
      init_tensor(name, b, ga);
      EXPECT_NE(a.to_vector<float>(), b.to_vector<float>()) << name;
    }
  }
}

TEST(Init, ConstantsAndDefault) {
  Tensor w = testing::random_tensor({3, 4}, 1, DType::kFloat64, Device::cpu());
  Generator gen(1);
  init_tensor("zeros", w, gen);
  EXPECT_EQ(w.to_vector<double>(), std::vector<double>(12, 0.0));
  init_tensor("ones", w, gen);
  EXPECT_EQ(w.to_vector<double>(), std::vector<double>(12, 1.0));
  EXPECT_EQ(gen.offset(), 0u);
  EXPECT_EQ(std::string(kDefaultInit), "he_normal");
  EXPECT_EQ(init_names().front(), "he_normal");
}

TEST(Init, DoesNotRecordHistory) {
  Tensor w = Tensor::empty({8, 8}, DType::kFloat32, Device::cpu());
  w.set_requires_grad();
  init_tensor("he_normal", w);
  EXPECT_TRUE(w.is_leaf());
  EXPECT_TRUE(w.requires_grad());
}

TEST(Init, ErrorsListTheValidNames) {
  Tensor w = Tensor::empty({3, 4}, DType::kFloat32, Device::cpu());
  try {
    init_tensor("he_norml", w);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("he_norml"), std::string::npos) << m;
    for (const std::string& name : init_names()) EXPECT_NE(m.find(name), std::string::npos) << m;
  }
  Tensor ints = Tensor::empty({3, 4}, DType::kInt32, Device::cpu());
  EXPECT_THROW(init_tensor("he_normal", ints), Error);
  EXPECT_THROW(init_tensor("he_normal", Tensor()), Error);
  Tensor zero_fan = Tensor::empty({4, 0}, DType::kFloat32, Device::cpu());
  EXPECT_NO_THROW(init_tensor("he_normal", zero_fan));  // nothing to fill
}

TEST(InitCuda, SameValuesAsTheCpu) {
  if (!cuda_available()) GTEST_SKIP() << "no usable CUDA device on this machine";
  for (const std::string& name : init_names()) {
    Tensor a = Tensor::empty({65, 31}, DType::kFloat32, Device::cpu());
    Tensor b = Tensor::empty({65, 31}, DType::kFloat32, Device::cuda(0));
    Generator ga(5), gb(5);
    init_tensor(name, a, ga);
    init_tensor(name, b, gb);
    EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>()) << name;
  }
}

}  // namespace
}  // namespace cyclone
