// dropout: the keep-mask reproduced bit for bit from the Philox reference (core/philox.h), so
// CPU and CUDA masks are the same for the same generator state; scaling, gradient, eval/p = 0
// identity, argument errors, and keep-rate statistics.
#include <gtest/gtest.h>

#include <cmath>

#include "common/test_util.h"
#include "cyclone/core/philox.h"

namespace cyclone {
namespace {

// The expected output of dropout(x, p) from the generator state (seed, offset) it starts at:
// element i is kept when the Philox uniform i of the fill is below 1 - p (in T), and then scaled
// by T(1 / (1 - p)).
template <class T>
std::vector<T> expected_dropout(const std::vector<T>& x, double p, uint64_t seed, uint64_t offset) {
  constexpr int V = philox::kValuesPerCounter<T>;
  const T keep = static_cast<T>(1.0 - p), scale = static_cast<T>(1.0 / (1.0 - p));
  std::vector<T> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    T u[V];
    philox::uniform_values<T>(seed, offset + i / V, u);
    out[i] = u[i % V] < keep ? x[i] * scale : T(0);
  }
  return out;
}

template <class T>
void check_mask_reproduced(Device dev) {
  const double p = 0.37;
  const int64_t n = 1031;  // not a multiple of the values per counter
  Tensor x = testing::random_tensor({n}, 7, dtype_of<T>, Device::cpu(), 0.5, 2).to(dev);
  Generator gen(20240601);
  gen.reserve(5);  // start mid-stream
  const uint64_t seed = gen.seed(), offset = gen.offset();
  x.set_requires_grad();
  Tensor y = dropout(x, p, true, gen);
  const auto want = expected_dropout<T>(x.to_vector<T>(), p, seed, offset);
  EXPECT_EQ(y.to_vector<T>(), want);
  EXPECT_EQ(gen.offset(), offset + kernels::random_counters(n, dtype_of<T>));
  // The gradient is the same mask and scale.
  y.backward(ones_like(y));
  const auto ones_v = std::vector<T>(n, T(1));
  EXPECT_EQ(x.grad().to_vector<T>(), expected_dropout<T>(ones_v, p, seed, offset));
}

class DropoutTest : public testing::DeviceTest {};

TEST_P(DropoutTest, MaskIsThePhiloxReferenceFloat32) { check_mask_reproduced<float>(device()); }
TEST_P(DropoutTest, MaskIsThePhiloxReferenceFloat64) { check_mask_reproduced<double>(device()); }

TEST_P(DropoutTest, KeepRateAndMeanArePreserved) {
  const int64_t n = 200000;
  Tensor x = ones({n}, DType::kFloat32, device());
  Generator gen(3);
  const auto v = testing::values(dropout(x, 0.25, true, gen));
  double kept = 0, sum = 0;
  for (double e : v) {
    ASSERT_TRUE(e == 0.0 || std::fabs(e - 1 / 0.75) < 1e-6) << e;
    kept += e != 0.0;
    sum += e;
  }
  EXPECT_NEAR(kept / n, 0.75, 5 * std::sqrt(0.75 * 0.25 / n));
  EXPECT_NEAR(sum / n, 1.0, 0.01);
}

CYCLONE_INSTANTIATE_DEVICE_TEST(DropoutTest);

TEST(Dropout, SameSeedSameMaskOnTheCpu) {
  Tensor x = testing::random_tensor({3, 5, 7}, 1, DType::kFloat32, Device::cpu());
  Generator a(99), b(99), c(100);
  const auto ya = dropout(x, 0.5, true, a).to_vector<float>();
  EXPECT_EQ(ya, dropout(x, 0.5, true, b).to_vector<float>());
  EXPECT_NE(ya, dropout(x, 0.5, true, c).to_vector<float>());
  // The next call continues the stream: a different mask.
  EXPECT_NE(ya, dropout(x, 0.5, true, a).to_vector<float>());
}

TEST(Dropout, IdentityInEvalAndForPZero) {
  Tensor x = testing::random_tensor({4, 4}, 2, DType::kFloat32, Device::cpu());
  Generator gen(1);
  EXPECT_TRUE(dropout(x, 0.5, false, gen).same(x));
  EXPECT_TRUE(dropout(x, 0.0, true, gen).same(x));
  EXPECT_EQ(gen.offset(), 0u);  // no random numbers drawn
}

TEST(Dropout, RejectsPOutsideZeroToOne) {
  Tensor x = Tensor::zeros({4}, DType::kFloat32, Device::cpu());
  Generator gen(1);
  for (double p : {1.0, -0.1, 1.5, double(NAN)}) {
    EXPECT_THROW(dropout(x, p, true, gen), Error) << p;
    EXPECT_THROW(dropout(x, p, false, gen), Error) << p;
  }
  try {
    dropout(x, 1.0, true, gen);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[0, 1)"), std::string::npos) << e.what();
  }
  EXPECT_EQ(gen.offset(), 0u);
}

}  // namespace
}  // namespace cyclone
