// Memory that cannot be had is refused before it is allocated, with one message saying how much
// was asked and how much is free (issue 14): Linux would otherwise grant the block and the OOM
// killer would end the run later. The CUDA side is CudaAllocatorTest.* (test_cuda_runtime.cpp).
#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "common/test_util.h"
#include "cyclone/core/storage.h"
#include "cyclone/core/tensor.h"

namespace cyclone {
namespace {

constexpr size_t kOneMiB = size_t{1} << 20;

struct LimitReset {
  ~LimitReset() { set_cpu_memory_limit(0); }
};

TEST(HostMemoryTest, AvailableMemoryIsReadFromTheSystem) {
  const size_t avail = host_memory_available();
  EXPECT_GT(avail, 0u);
  EXPECT_LT(avail, SIZE_MAX) << "/proc/meminfo's MemAvailable was not read";
}

TEST(HostMemoryTest, ATensorLargerThanTheMachineIsRefusedBeforeAllocating) {
  const size_t before = cpu_memory_stats().current_bytes;
  const size_t allocs = cpu_memory_stats().num_allocs;
  // 4 PiB of float32: more than any machine this runs on, well inside int64 and size_t.
  const int64_t n = int64_t{1} << 50;
  const size_t asked = static_cast<size_t>(n) * 4;
  testing::expect_error([&] { Tensor::empty(Shape({n}), DType::kFloat32, Device::cpu()); },
                        {"out of host memory", "asked for " + std::to_string(asked) + " bytes",
                         "free", "smaller batch size"});
  EXPECT_EQ(cpu_memory_stats().current_bytes, before);
  EXPECT_EQ(cpu_memory_stats().num_allocs, allocs) << "nothing may reach the system allocator";
}

TEST(HostMemoryTest, TheCpuLimitCapsWhatTensorsHoldAtOnce) {
  LimitReset reset;
  const size_t held = cpu_memory_stats().current_bytes;
  set_cpu_memory_limit(held + 8 * kOneMiB);
  Tensor a = Tensor::empty(Shape({int64_t{1} << 20}), DType::kFloat32, Device::cpu());  // 4 MiB
  testing::expect_error(
      [&] { Tensor::empty(Shape({int64_t{2} << 20}), DType::kFloat32, Device::cpu()); },
      {"asked for " + std::to_string(8 * kOneMiB) + " bytes", "set_cpu_memory_limit"});
  // Under the cap, allocation still works; freeing makes room again.
  Tensor b = Tensor::empty(Shape({int64_t{1} << 19}), DType::kFloat32, Device::cpu());
  EXPECT_EQ(b.nbytes(), 2 * kOneMiB);
  a = Tensor();
  Tensor c = Tensor::empty(Shape({int64_t{1} << 20}), DType::kFloat32, Device::cpu());
  EXPECT_EQ(c.nbytes(), 4 * kOneMiB);
  set_cpu_memory_limit(0);
  Tensor d = Tensor::empty(Shape({int64_t{4} << 20}), DType::kFloat32, Device::cpu());
  EXPECT_EQ(d.nbytes(), 16 * kOneMiB);
}

}  // namespace
}  // namespace cyclone
