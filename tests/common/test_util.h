// Helpers shared by the test folders: device-typed fixtures, random inputs, and tolerant
// comparisons that never let a NaN pass.
#pragma once

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "cyclone/core/parallel.h"
#include "cyclone/cyclone.h"

namespace cyclone::testing {

// The devices every device-typed test runs on: cpu always, cuda always listed (the test body skips
// with a message when no GPU is usable, so the skip shows in the report).
std::vector<Device> all_devices();
std::string device_name(const ::testing::TestParamInfo<Device>& info);  // "cpu" / "cuda"

// Skips the current test (GTEST_SKIP) when `d` is a CUDA device and none is usable.
#define CYCLONE_SKIP_IF_UNAVAILABLE(d)                                                       \
  do {                                                                                       \
    if ((d).is_cuda() && !::cyclone::cuda_available())                                       \
      GTEST_SKIP()                                                                           \
          << "no usable CUDA device on this machine (CPU-vs-CUDA parity runs on GPU hosts)"; \
  } while (0)

// A fresh directory under the system temp dir, removed with its contents at scope exit.
class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ = std::filesystem::temp_directory_path() /
            ("cyclone_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// A test parameterised over devices: TEST_P(MyTest, X) { Device d = GetParam(); ... }
class DeviceTest : public ::testing::TestWithParam<Device> {
 protected:
  void SetUp() override { CYCLONE_SKIP_IF_UNAVAILABLE(GetParam()); }
  Device device() const { return GetParam(); }
};
#define CYCLONE_INSTANTIATE_DEVICE_TEST(Fixture)                                   \
  INSTANTIATE_TEST_SUITE_P(Devices, Fixture,                                       \
                           ::testing::ValuesIn(::cyclone::testing::all_devices()), \
                           ::cyclone::testing::device_name)

// Deterministic host values uniform in [lo, hi) from a simple seeded generator (independent of
// the engine's Philox, so tests do not trust the code under test to make their inputs).
std::vector<double> random_values(int64_t n, uint64_t seed, double lo = -1.0, double hi = 1.0);
// A tensor of those values on `device`, of float dtype (bfloat16, float16: the values rounded to
// it).
Tensor random_tensor(const Shape& shape, uint64_t seed, DType dtype = DType::kFloat32,
                     Device device = Device::cpu(), double lo = -1.0, double hi = 1.0);
// A tensor filled with NaN (float dtypes) so that an element a kernel forgets to write fails.
Tensor nan_tensor(const Shape& shape, DType dtype, Device device);

// Synthetic images (data/synthetic.h) of `channels` x size x size in `classes` classes: n of them
// in split "train" (8 in "test"), seeded.
data::Dataset synthetic_images(int64_t n, int size, int classes, uint64_t seed,
                               const std::string& split = "train", int channels = 1);
// The options of a model of models/registry.h for such images.
ModelOptions model_options(int size, int classes, uint64_t seed, int channels = 1);

// Host values of any float tensor, as double.
std::vector<double> values(const Tensor& t);

// ||a - b|| / ||b|| (relative error of a against reference b); +inf if any NaN/inf appears.
double relative_error(const std::vector<double>& a, const std::vector<double>& b);

// EXPECT-style: every element |a-b| <= atol + rtol*|b|, and no NaN; reports the worst element.
::testing::AssertionResult all_close(const Tensor& a, const Tensor& b, double rtol, double atol);
::testing::AssertionResult all_close(const std::vector<double>& a, const std::vector<double>& b,
                                     double rtol, double atol);

// Runs f and expects a cyclone::Error whose message contains every one of `parts` (the op, the
// shapes, the offending value: what a user needs to act on it).
template <class F>
void expect_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "expected a cyclone::Error";
  } catch (const Error& e) {
    for (const auto& p : parts)
      EXPECT_NE(e.message().find(p), std::string::npos) << "'" << p << "' not in: " << e.message();
  }
}

// f() run on one thread: as one chunk of an outer parallel_for, so that the parallel_for calls
// inside it run inline (the pool is busy with this one: core/parallel.h). Beside a call from the
// test's own thread, which uses the whole pool, it checks that a kernel's result does not depend
// on the thread count. f's result must be default-constructible.
template <class F>
auto on_one_thread(F&& f) {
  decltype(f()) result;
  parallel_for(2, 1, [&](int64_t lo, int64_t) {
    if (lo == 0) result = f();
  });
  return result;
}

}  // namespace cyclone::testing
