#include "common/test_util.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <sstream>
#include <system_error>

namespace cyclone::testing {

namespace {
// A tensor, module or loader made without a device is on the CPU in every test: otherwise
// default_device() would be "auto", cuda:0 on a GPU host, and the CPU tests would run there on the
// GPU (the CUDA tests name their device).
struct CpuDefaultDevice : ::testing::Environment {
  void SetUp() override { set_default_device(Device::cpu()); }
};
[[maybe_unused]] ::testing::Environment* const kCpuDefault =
    ::testing::AddGlobalTestEnvironment(new CpuDefaultDevice);

// Every file a test writes through ::testing::TempDir() or std::filesystem::temp_directory_path()
// lands in one directory of this process, removed when the tests end: a test binary leaves
// nothing behind in /tmp, and two runs of it (ctest -j, the sanitizer builds) never share a file.
struct PrivateTempDir : ::testing::Environment {
  void SetUp() override {
    const char* base = std::getenv("TMPDIR");
    dir = std::filesystem::path(base != nullptr && *base != '\0' ? base : "/tmp") /
          ("cyclone_tests_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    ::setenv("TMPDIR", dir.c_str(), 1);
    ::setenv("TEST_TMPDIR", dir.c_str(), 1);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::filesystem::path dir;
};
[[maybe_unused]] ::testing::Environment* const kPrivateTemp =
    ::testing::AddGlobalTestEnvironment(new PrivateTempDir);
}  // namespace

std::vector<Device> all_devices() { return {Device::cpu(), Device::cuda(0)}; }

std::string device_name(const ::testing::TestParamInfo<Device>& info) {
  return info.param.is_cuda() ? "cuda" : "cpu";
}

std::vector<double> random_values(int64_t n, uint64_t seed, double lo, double hi) {
  // splitmix64: tiny, well mixed, and unrelated to the engine's generator.
  std::vector<double> v(static_cast<size_t>(n));
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (auto& e : v) {
    uint64_t z = (x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    e = lo + (hi - lo) * static_cast<double>(z >> 11) * 0x1.0p-53;
  }
  return v;
}

Tensor random_tensor(const Shape& shape, uint64_t seed, DType dtype, Device device, double lo,
                     double hi) {
  auto v = random_values(shape.numel(), seed, lo, hi);
  if (dtype == DType::kFloat64) return Tensor::from_vector<double>(v, shape, device);
  std::vector<float> f(v.begin(), v.end());
  if (dtype == DType::kBFloat16) {
    std::vector<bfloat16> h;
    for (float x : f) h.push_back(bfloat16(x));
    return Tensor::from_vector<bfloat16>(h, shape, device);
  }
  if (dtype == DType::kFloat16) {
    std::vector<float16> h;
    for (float x : f) h.push_back(float16(x));
    return Tensor::from_vector<float16>(h, shape, device);
  }
  EXPECT_EQ(dtype, DType::kFloat32) << "random_tensor: a float dtype";
  return Tensor::from_vector<float>(f, shape, device);
}

Tensor nan_tensor(const Shape& shape, DType dtype, Device device) {
  if (dtype == DType::kBFloat16)
    return Tensor::from_vector<bfloat16>(
        std::vector<bfloat16>(shape.numel(), bfloat16(std::numeric_limits<float>::quiet_NaN())),
        shape, device);
  if (dtype == DType::kFloat16)
    return Tensor::from_vector<float16>(
        std::vector<float16>(shape.numel(), float16(std::numeric_limits<float>::quiet_NaN())),
        shape, device);
  if (dtype == DType::kFloat64)
    return Tensor::from_vector<double>(
        std::vector<double>(shape.numel(), std::numeric_limits<double>::quiet_NaN()), shape,
        device);
  return Tensor::from_vector<float>(
      std::vector<float>(shape.numel(), std::numeric_limits<float>::quiet_NaN()), shape, device);
}

std::vector<double> values(const Tensor& t) {
  switch (t.dtype()) {
    case DType::kFloat64:
      return t.to_vector<double>();
    case DType::kFloat32: {
      auto f = t.to_vector<float>();
      return {f.begin(), f.end()};
    }
    case DType::kInt32: {
      auto f = t.to_vector<int32_t>();
      return {f.begin(), f.end()};
    }
    case DType::kBFloat16: {
      auto f = t.to_vector<bfloat16>();
      return {f.begin(), f.end()};
    }
    case DType::kFloat16: {
      auto f = t.to_vector<float16>();
      return {f.begin(), f.end()};
    }
    case DType::kUInt8: {
      auto f = t.to_vector<uint8_t>();
      return {f.begin(), f.end()};
    }
    default:
      ADD_FAILURE() << "values(): unsupported dtype";
      return {};
  }
}

double relative_error(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return std::numeric_limits<double>::infinity();
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i]))
      return std::numeric_limits<double>::infinity();
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return den == 0 ? std::sqrt(num) : std::sqrt(num / den);
}

::testing::AssertionResult all_close(const std::vector<double>& a, const std::vector<double>& b,
                                     double rtol, double atol) {
  if (a.size() != b.size())
    return ::testing::AssertionFailure() << "sizes differ: " << a.size() << " vs " << b.size();
  size_t bad = 0, worst = 0;
  double worst_excess = -1;
  for (size_t i = 0; i < a.size(); ++i) {
    const double tol = atol + rtol * std::abs(b[i]);
    const double err = std::abs(a[i] - b[i]);
    const bool ok = std::isfinite(a[i]) == std::isfinite(b[i]) && (err <= tol || a[i] == b[i]);
    if (!ok) {
      ++bad;
      const double excess = std::isnan(err) ? std::numeric_limits<double>::infinity() : err - tol;
      if (excess > worst_excess) worst_excess = excess, worst = i;
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << bad << " of " << a.size() << " elements differ; worst at index " << worst << ": "
         << a[worst] << " vs " << b[worst] << " (rtol " << rtol << ", atol " << atol << ")";
}

::testing::AssertionResult all_close(const Tensor& a, const Tensor& b, double rtol, double atol) {
  if (a.shape() != b.shape())
    return ::testing::AssertionFailure() << "shapes differ: " << a.shape() << " vs " << b.shape();
  return all_close(values(a), values(b), rtol, atol);
}

data::Dataset synthetic_images(int64_t n, int size, int classes, uint64_t seed,
                               const std::string& split, int channels) {
  data::SyntheticOptions so;
  so.channels = channels;
  so.height = so.width = size;
  so.num_classes = classes;
  so.train_size = split == "train" ? n : 8;
  so.test_size = split == "train" ? 8 : n;
  so.seed = seed;
  return data::make_synthetic(so, split);
}

ModelOptions model_options(int size, int classes, uint64_t seed, int channels) {
  ModelOptions mo;
  mo.in_channels = channels;
  mo.height = mo.width = size;
  mo.num_classes = classes;
  mo.seed = seed;
  return mo;
}

}  // namespace cyclone::testing
