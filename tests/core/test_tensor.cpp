// Tensor, Shape, DType and Device: the behaviour every other part of Cyclone relies on.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "common/test_util.h"
#include "cyclone/core/autograd.h"

namespace cyclone {
namespace {

using testing::DeviceTest;

TEST(Shape, NumelRankAndAxes) {
  Shape s{2, 3, 4};
  EXPECT_EQ(s.rank(), 3);
  EXPECT_EQ(s.numel(), 24);
  EXPECT_EQ(s[-1], 4);
  EXPECT_EQ(s.prod(1, 3), 12);
  EXPECT_EQ(Shape{}.numel(), 1);  // a scalar
  EXPECT_EQ((Shape{5, 0}).numel(), 0);
  EXPECT_EQ(s.str(), "[2, 3, 4]");
}

TEST(Shape, RejectsNegativeAndOverflowingDims) {
  EXPECT_THROW(Shape({2, -1}), Error);
  try {
    Shape({int64_t(1) << 40, int64_t(1) << 40});
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("64 bits"), std::string::npos) << e.what();
  }
  try {
    (void)Shape({2, 3})[5];
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("axis 5"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[2, 3]"), std::string::npos) << e.what();
  }
}

TEST(DType, SizesNamesAndParsing) {
  EXPECT_EQ(dtype_size(DType::kFloat32), 4u);
  EXPECT_EQ(dtype_size(DType::kFloat64), 8u);
  EXPECT_EQ(dtype_size(DType::kUInt8), 1u);
  EXPECT_EQ(dtype_size(DType::kBFloat16), 2u);
  for (DType t : {DType::kFloat32, DType::kFloat64, DType::kInt32, DType::kUInt8, DType::kBFloat16,
                  DType::kFloat16})
    EXPECT_EQ(parse_dtype(dtype_name(t)), t);
  EXPECT_THROW(parse_dtype("float128"), Error);
}

TEST(Device, ParsesSpecsAndRejectsBadOnes) {
  for (const char* good : {"", "auto", "cpu", "cuda", "cuda:0", "cuda:1023"})
    EXPECT_TRUE(device_spec_well_formed(good)) << good;
  for (const char* bad : {"gpu", "bogus", "cuda:", "cuda:x", "cuda:1024", "cuda:-1", "cpu:0"})
    EXPECT_FALSE(device_spec_well_formed(bad)) << bad;
  EXPECT_EQ(resolve_device("cpu"), Device::cpu());
  EXPECT_EQ(Device::cuda(1).str(), "cuda:1");
  const Device a = resolve_device("auto");
  EXPECT_EQ(a.is_cuda(), cuda_available());
  for (const char* bad : {"gpu", "cuda:", "cuda:x", "cuda:-1", "cud"}) {
    try {
      resolve_device(bad);
      FAIL() << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
  if (!cuda_available()) {
    // Asking for a GPU that is not there is an error that says how many there are.
    try {
      resolve_device("cuda:0");
      FAIL();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("--device=cpu"), std::string::npos) << e.what();
    }
  }
}

TEST(Device, NoGpuMeansCpuEverywhere) {
  if (cuda_available()) GTEST_SKIP() << "this checks the machine-without-GPU path";
  EXPECT_EQ(cuda_device_count(), 0);
  EXPECT_TRUE(resolve_device("auto").is_cpu());
  // Pinned memory silently degrades to ordinary host memory.
  Tensor p = Tensor::empty_pinned({4});
  EXPECT_TRUE(p.device().is_cpu());
}

TEST(Tensor, FactoriesAndAccess) {
  Tensor t = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3}, Device::cpu());
  EXPECT_EQ(t.shape(), Shape({2, 3}));
  EXPECT_EQ(t.dtype(), DType::kFloat32);
  EXPECT_EQ(t.numel(), 6);
  EXPECT_EQ(t.nbytes(), 24u);
  EXPECT_EQ(t.data<float>()[4], 5.0f);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % 64, 0u) << "CPU storage is 64-byte aligned";
  EXPECT_THROW(t.data<double>(), Error);  // wrong dtype access is caught
  Tensor z = Tensor::zeros({3}, DType::kInt32, Device::cpu());
  EXPECT_EQ(z.to_vector<int32_t>(), (std::vector<int32_t>{0, 0, 0}));
  EXPECT_THROW(Tensor::from_vector<float>({1, 2, 3}, {2, 2}, Device::cpu()), Error);
  EXPECT_EQ(Tensor::from_vector<double>({2.5}, {}, Device::cpu()).item(), 2.5);
}

TEST(Tensor, ReshapeIsAViewAndInfersMinusOne) {
  Tensor t = Tensor::from_vector<float>({0, 1, 2, 3, 4, 5}, {2, 3}, Device::cpu());
  Tensor r = t.reshape({3, -1});
  EXPECT_EQ(r.shape(), Shape({3, 2}));
  EXPECT_EQ(r.raw_data(), t.raw_data());
  r.data<float>()[0] = 42;
  EXPECT_EQ(t.data<float>()[0], 42) << "reshape must share storage";
  EXPECT_EQ(t.flatten(0).shape(), Shape({6}));
  try {
    t.reshape({4, 2});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[2, 3]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[4, 2]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(t.reshape({-1, -1}), Error);
  EXPECT_THROW(t.reshape({-1, 4}), Error);
}

TEST(Tensor, SliceSharesRowsOfTheFirstDimension) {
  Tensor t = Tensor::from_vector<int32_t>({0, 1, 2, 3, 4, 5, 6, 7}, {4, 2}, Device::cpu());
  Tensor s = t.slice(1, 3);
  EXPECT_EQ(s.shape(), Shape({2, 2}));
  EXPECT_EQ(s.to_vector<int32_t>(), (std::vector<int32_t>{2, 3, 4, 5}));
  s.data<int32_t>()[0] = -1;
  EXPECT_EQ(t.data<int32_t>()[2], -1);
  EXPECT_THROW(t.slice(3, 5), Error);
  EXPECT_EQ(t.slice(2, 2).numel(), 0);
}

TEST(Tensor, CloneAndCopyAreDeep) {
  Tensor t = Tensor::from_vector<float>({1, 2}, {2}, Device::cpu());
  Tensor c = t.clone();
  c.data<float>()[0] = 9;
  EXPECT_EQ(t.data<float>()[0], 1);
  Tensor d = Tensor::empty({2}, DType::kFloat32, Device::cpu());
  d.copy_from(t);
  EXPECT_EQ(d.to_vector<float>(), t.to_vector<float>());
  Tensor wrong = Tensor::empty({3}, DType::kFloat32, Device::cpu());
  try {
    wrong.copy_from(t);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[3] vs [2]"), std::string::npos) << e.what();
  }
}

TEST(Tensor, PrintsValuesShapeAndDevice) {
  Tensor t = Tensor::from_vector<float>({1, 2.5f, 3, 4}, {2, 2}, Device::cpu());
  EXPECT_EQ(t.str(), "tensor([[1, 2.5], [3, 4]], shape=[2, 2], dtype=float32, device=cpu)");
  std::vector<float> many(100);
  for (int i = 0; i < 100; ++i) many[i] = float(i);
  const std::string s = Tensor::from_vector<float>(many, {100}, Device::cpu()).str();
  EXPECT_NE(s.find("[0, 1, 2, ..., 97, 98, 99]"), std::string::npos) << s;
  EXPECT_EQ(Tensor().str(), "tensor(undefined)");
}

TEST(Tensor, UndefinedTensorUseIsAnError) {
  Tensor t;
  EXPECT_FALSE(t.defined());
  EXPECT_THROW((void)t.shape(), Error);
}

// More bytes than size_t holds (2^62 float32 elements: 2^64 bytes) once wrapped into a tiny
// allocation that every write overran: now an OutOfMemory error naming the shape. Linear(2^31,
// 2^31) reached it through Tensor::empty; zeros, full and from_host take the same path.
TEST(Tensor, ByteCountPastSizeTIsOutOfMemoryNotATinyBuffer) {
  const Shape huge({int64_t(1) << 62});
  testing::expect_error([&] { Tensor::zeros(huge, DType::kFloat32, Device::cpu()); },
                        {"out of memory", "[4611686018427387904]", "float32", "2^64 bytes"});
  EXPECT_THROW(
      Tensor::empty(Shape({int64_t(1) << 31, int64_t(1) << 31}), DType::kFloat64, Device::cpu()),
      OutOfMemory);
  EXPECT_THROW(Tensor::empty_pinned(huge, DType::kFloat32), OutOfMemory);
  // One element fewer than the wrap still asks the allocator, which says what it cannot have.
  EXPECT_THROW(Tensor::empty(Shape({int64_t(1) << 61}), DType::kFloat32, Device::cpu()),
               OutOfMemory);
}

TEST(Tensor, FromHostRefusesNullData) {
  testing::expect_error(
      [] { Tensor::from_host(nullptr, Shape({4}), DType::kFloat32, Device::cpu()); },
      {"from_host", "null data", "4 elements"});
  EXPECT_EQ(Tensor::from_host(nullptr, Shape({0, 3}), DType::kFloat32, Device::cpu()).numel(), 0);
}

TEST(Tensor, CpuMemoryStatsTrackLiveBytes) {
  const size_t before = cpu_memory_stats().current_bytes;
  {
    Tensor t = Tensor::empty({1024}, DType::kFloat64, Device::cpu());
    EXPECT_GE(cpu_memory_stats().current_bytes, before + 8192);
    EXPECT_GE(cpu_memory_stats().peak_bytes, before + 8192);
  }
  EXPECT_EQ(cpu_memory_stats().current_bytes, before);
}

class TensorDeviceTest : public DeviceTest {};

TEST_P(TensorDeviceTest, RoundTripsThroughTheDevice) {
  const auto v = testing::random_values(1025, 7);
  std::vector<float> f(v.begin(), v.end());
  Tensor host = Tensor::from_vector<float>(f, {1025}, Device::cpu());
  Tensor dev = host.to(device());
  EXPECT_EQ(dev.device(), device());
  EXPECT_EQ(dev.to(Device::cpu()).to_vector<float>(), f);
  EXPECT_EQ(dev.clone().to_vector<float>(), f);
  Tensor z = Tensor::zeros({31}, DType::kFloat64, device());
  EXPECT_EQ(z.to_vector<double>(), std::vector<double>(31, 0.0));
  Tensor pinned = host.pin_memory();
  Tensor back = Tensor::empty({1025}, DType::kFloat32, device());
  back.copy_from(pinned);
  EXPECT_EQ(back.to_vector<float>(), f);
}

// The autograd engine's dst += src (core/cuda/accumulate.cu on a GPU) against the CPU loop: the
// same one rounding per element (16-bit floats add in float), so the values agree exactly, on a
// partial block (1), a tail (1025) and a few hundred blocks with an odd tail after the 16-byte
// packs (300007), aligned and one element in. None of these makes a thread loop: the grid is
// capped at 65535 blocks of 256 threads, so the grid-stride loop takes a second pass only past
// ~16.8 M packs (~67 M float32 elements aligned, ~16.8 M one element in), which no test allocates.
TEST_P(TensorDeviceTest, GradientAccumulationMatchesTheCpu) {
  for (DType dt : {DType::kFloat32, DType::kFloat64, DType::kBFloat16, DType::kFloat16})
    for (int64_t n : {1, 1025, 300007}) {
      const Tensor dst = testing::random_tensor({n}, 5, dt, Device::cpu(), -2, 2);
      const Tensor src = testing::random_tensor({n}, 6, dt, Device::cpu(), -2, 2);
      const Tensor on_dev = dst.clone().to(device());
      autograd::accumulate(on_dev, src.to(device()));
      autograd::accumulate(dst, src);
      EXPECT_EQ(testing::values(on_dev), testing::values(dst)) << dtype_name(dt) << " n " << n;
      // Views one element in: not 16-byte aligned, so the kernel takes its element-wise path.
      if (n < 2) continue;
      const Tensor dev_view = on_dev.slice(1, n), cpu_view = dst.slice(1, n);
      autograd::accumulate(dev_view, src.to(device()).slice(0, n - 1));
      autograd::accumulate(cpu_view, src.slice(0, n - 1));
      EXPECT_EQ(testing::values(on_dev), testing::values(dst))
          << dtype_name(dt) << " n " << n << " at an offset";
    }
}

CYCLONE_INSTANTIATE_DEVICE_TEST(TensorDeviceTest);

}  // namespace
}  // namespace cyclone
