// batched_transpose and the NCHW <-> NHWC conversions on every device, against index arithmetic:
// every element size (uint8, bfloat16, float32, float64), shapes that are not multiples of the
// 32-element tile, a single row or column, an empty tensor; the round trip is the identity;
// CPU-vs-CUDA parity is exact (bytes move, nothing is computed); errors name the shapes.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/test_util.h"

namespace cyclone {
namespace {

using testing::DeviceTest;
using testing::random_tensor;
using testing::values;

struct View {
  int64_t b, r, c;
};
const View kViews[] = {{1, 1, 1},  {2, 3, 5},  {3, 33, 65},  {1, 64, 32},
                       {4, 1, 70}, {5, 70, 1}, {2, 100, 37}, {8, 160, 9}};

// The raw bytes of a tensor, on the host: the kernel moves bytes, so the test compares bytes.
std::vector<uint8_t> bytes_of(const Tensor& t) {
  std::vector<uint8_t> b(static_cast<size_t>(t.numel()) * dtype_size(t.dtype()));
  t.copy_to_host(b.data());
  return b;
}

// Distinct-ish bytes of any dtype: random float32 values reinterpreted.
Tensor random_bytes(const Shape& shape, uint64_t seed, DType dt, Device d) {
  const size_t n = static_cast<size_t>(shape.numel()) * dtype_size(dt);
  const std::vector<double> v = testing::random_values(static_cast<int64_t>(n), seed, 0.0, 256.0);
  std::vector<uint8_t> b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(v[i]);
  return Tensor::from_host(b.data(), shape, dt, d);
}

class TransposeTest : public DeviceTest {};

TEST_P(TransposeTest, MovesEveryElementToItsTransposedPlace) {
  uint64_t seed = 1;
  for (DType dt : {DType::kFloat32, DType::kFloat64, DType::kBFloat16, DType::kUInt8})
    for (const View& v : kViews) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " [" + std::to_string(v.b) + ", " +
                   std::to_string(v.r) + ", " + std::to_string(v.c) + "]");
      const Tensor x = random_bytes({v.b, v.r, v.c}, seed++, dt, device());
      const Tensor y = Tensor::zeros({v.b, v.c, v.r}, dt, device());
      kernels::batched_transpose(Context::of(x), x, v.b, v.r, v.c, y);
      const std::vector<uint8_t> xs = bytes_of(x), ys = bytes_of(y);
      const int64_t e = static_cast<int64_t>(dtype_size(dt));
      for (int64_t b = 0; b < v.b; ++b)
        for (int64_t r = 0; r < v.r; ++r)
          for (int64_t c = 0; c < v.c; ++c)
            for (int64_t k = 0; k < e; ++k)
              ASSERT_EQ(ys[((b * v.c + c) * v.r + r) * e + k],
                        xs[((b * v.r + r) * v.c + c) * e + k])
                  << "b " << b << " r " << r << " c " << c;
    }
}

TEST_P(TransposeTest, ChannelsLastRoundTripIsTheIdentity) {
  const Tensor x = random_tensor({3, 5, 7, 9}, 42, DType::kFloat32, device());
  Context& ctx = Context::of(x);
  const Tensor l = kernels::to_channels_last(ctx, x);
  EXPECT_EQ(l.shape(), Shape({3, 7, 9, 5}));
  const std::vector<double> xs = values(x), ls = values(l);
  // l[n, h, w, c] = x[n, c, h, w]
  EXPECT_EQ(ls[((1 * 7 + 2) * 9 + 3) * 5 + 4], xs[((1 * 5 + 4) * 7 + 2) * 9 + 3]);
  const Tensor back = kernels::to_channels_first(ctx, l);
  EXPECT_EQ(back.shape(), x.shape());
  EXPECT_EQ(values(back), xs);
}

TEST_P(TransposeTest, EmptyTensor) {
  const Tensor x = Tensor::empty({0, 4, 5, 6}, DType::kFloat32, device());
  const Tensor l = kernels::to_channels_last(Context::of(x), x);
  EXPECT_EQ(l.shape(), Shape({0, 5, 6, 4}));
}

CYCLONE_INSTANTIATE_DEVICE_TEST(TransposeTest);

TEST(TransposeCuda, ParityWithCpuIsExact) {
  CYCLONE_SKIP_IF_UNAVAILABLE(Device::cuda());
  for (DType dt : {DType::kFloat32, DType::kFloat64, DType::kBFloat16}) {
    // Larger than one grid row of tiles, and uneven.
    const Tensor x = random_bytes({3, 130, 517}, 9, dt, Device::cpu());
    const Tensor yc = Tensor::empty({3, 517, 130}, dt, Device::cpu());
    kernels::batched_transpose(Context::of(x), x, 3, 130, 517, yc);
    const Tensor xg = x.to(Device::cuda());
    const Tensor yg = Tensor::zeros({3, 517, 130}, dt, Device::cuda());
    kernels::batched_transpose(Context::of(xg), xg, 3, 130, 517, yg);
    EXPECT_EQ(bytes_of(yg), bytes_of(yc)) << dtype_name(dt);
  }
}

using ::cyclone::testing::expect_error;

TEST(TransposeErrors, NameTheShapes) {
  const Tensor x = Tensor::zeros({2, 3, 4}, DType::kFloat32, Device::cpu());
  const Tensor y = Tensor::empty({2, 4, 3}, DType::kFloat32, Device::cpu());
  expect_error([&] { kernels::batched_transpose(Context::of(x), x, 2, 3, 5, y); },
               {"batched_transpose", "[2, 3, 4]", "[2, 3, 5]"});
  const Tensor yd = Tensor::empty({2, 4, 3}, DType::kFloat64, Device::cpu());
  expect_error([&] { kernels::batched_transpose(Context::of(x), x, 2, 3, 4, yd); },
               {"batched_transpose"});
  expect_error([&] { kernels::to_channels_last(Context::of(x), x); },
               {"to_channels_last", "rank-4", "[2, 3, 4]"});
}

}  // namespace
}  // namespace cyclone
