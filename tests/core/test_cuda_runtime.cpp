// The CUDA runtime facade and the caching allocator. Tests named *Cuda* need a GPU and skip with
// a message without one; the GpuRuntimeNoDevice tests check that a machine with no GPU (where CI
// runs) gets clear errors and no crash. Only the opaque facade is used here, no CUDA header, so
// this file builds with or without the CUDA backend.
#include <cstdint>
#include <cstring>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "cyclone/core/cuda/caching_allocator.h"
#include "cyclone/core/cuda/runtime.h"

namespace cyclone {
namespace {

constexpr size_t kMiB = size_t{1} << 20;

// Runs f, which must throw cyclone::Error whose message contains `needle`.
template <class F>
void expect_error_containing(F&& f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected a cyclone::Error containing \"" << needle << "\"";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find(needle), std::string::npos) << e.what();
  }
}

TEST(GpuRuntimeNoDevice, CountAndVersionsNeverThrow) {
  const int n = gpu::device_count_noexcept();
  EXPECT_GE(n, 0);
  EXPECT_EQ(n, cuda_device_count());
  ASSERT_NE(gpu::versions(), nullptr);
  EXPECT_GT(std::strlen(gpu::versions()), 0u);
}

TEST(GpuRuntimeNoDevice, CallsGiveClearErrorsWithoutAGpu) {
  if (gpu::device_count_noexcept() > 0) GTEST_SKIP() << "this machine has a GPU";
  // Whether built without CUDA or run with no device, asking for device work is an Error.
  EXPECT_THROW(gpu::caching_malloc(1024, 0, nullptr), Error);
  EXPECT_THROW(gpu::memory_stats(0), Error);
  EXPECT_THROW(gpu::stream_create(0), Error);
  EXPECT_THROW(gpu::empty_cache(0), Error);
  EXPECT_THROW(gpu::device_name(0), Error);
  if (built_with_cuda()) {
    expect_error_containing([] { gpu::caching_malloc(1024, 0, nullptr); }, "cuda:0");
    // Releasing nothing is always fine (deleters run with null on empty storages).
    EXPECT_NO_THROW(gpu::caching_free(nullptr));
    EXPECT_NO_THROW(gpu::stream_destroy(nullptr));
    EXPECT_NO_THROW(gpu::host_free_pinned(nullptr));
  }
}

class CudaAllocatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (gpu::device_count_noexcept() == 0) {
      GTEST_SKIP() << "no usable CUDA device on this machine (allocator tests run on GPU hosts)";
    }
    gpu::set_memory_limit(0, 0);
    // Start from an empty cache: blocks cached by earlier tests under a stream handle value the
    // driver recycles for stream_ would otherwise be legitimate (but surprising) reuse candidates.
    gpu::empty_cache(0);
    stream_ = gpu::stream_create(0);
  }
  void TearDown() override {
    if (stream_ != nullptr) {
      gpu::stream_synchronize(stream_);
      gpu::stream_destroy(stream_);
    }
  }
  MemoryStats stats() const { return gpu::memory_stats(0); }
  void* stream_ = nullptr;
};
using gpu::caching_free;
using gpu::caching_malloc;

TEST_F(CudaAllocatorTest, ReusesFreedBlockOnSameStreamWithoutCudaMalloc) {
  const size_t n = 3 * kMiB + 7;
  void* p = caching_malloc(n, 0, stream_);
  ASSERT_NE(p, nullptr);
  caching_free(p);
  const size_t allocs = stats().num_allocs;
  void* q = caching_malloc(n, 0, stream_);
  EXPECT_EQ(q, p);
  EXPECT_EQ(stats().num_allocs, allocs) << "a cached block was available: no cudaMalloc expected";
  caching_free(q);

  // Another stream has its own free list: reusing p there would race with stream_'s work.
  void* other = gpu::stream_create(0);
  void* r = caching_malloc(n, 0, other);
  EXPECT_NE(r, p);
  caching_free(r);
  gpu::stream_destroy(other);
}

TEST_F(CudaAllocatorTest, ZeroBytesIsNullAndDoubleFreeDoesNotCrash) {
  EXPECT_EQ(caching_malloc(0, 0, stream_), nullptr);
  caching_free(nullptr);
  void* p = caching_malloc(4096, 0, stream_);
  caching_free(p);
  const size_t current = stats().current_bytes;
  caching_free(p);  // reported on stderr (a deleter must not throw), stats untouched
  EXPECT_EQ(stats().current_bytes, current);
  expect_error_containing([&] { caching_malloc(std::numeric_limits<size_t>::max(), 0, stream_); },
                          std::to_string(std::numeric_limits<size_t>::max()));
}

TEST_F(CudaAllocatorTest, StatsTrackCurrentPeakAndRounding) {
  gpu::empty_cache(0);  // nothing cached: every allocation below is a fresh, exact-size block
  gpu::reset_peak_stats(0);
  const MemoryStats base = stats();
  EXPECT_EQ(base.peak_bytes, base.current_bytes);

  void* a = caching_malloc(4 * kMiB, 0, stream_);  // already a multiple of 2 MiB
  void* b = caching_malloc(1000, 0, stream_);      // small: 512 B granules -> 1024
  void* c = caching_malloc(kMiB + 1, 0, stream_);  // large: 2 MiB granules -> 2 MiB
  MemoryStats s = stats();
  const size_t all = 4 * kMiB + 1024 + 2 * kMiB;
  EXPECT_EQ(s.current_bytes, base.current_bytes + all);
  EXPECT_EQ(s.peak_bytes, base.current_bytes + all);
  EXPECT_EQ(s.num_allocs, base.num_allocs + 3);
  EXPECT_GE(s.reserved_bytes, s.current_bytes);

  caching_free(a);
  s = stats();
  EXPECT_EQ(s.current_bytes, base.current_bytes + 1024 + 2 * kMiB);
  EXPECT_EQ(s.peak_bytes, base.current_bytes + all) << "peak must survive a free";
  gpu::reset_peak_stats(0);
  EXPECT_EQ(stats().peak_bytes, stats().current_bytes);
  caching_free(b);
  caching_free(c);
  EXPECT_EQ(stats().current_bytes, base.current_bytes);
}

TEST_F(CudaAllocatorTest, EmptyCacheLowersReserved) {
  gpu::empty_cache(0);
  const size_t r0 = stats().reserved_bytes;
  void* p = caching_malloc(8 * kMiB, 0, stream_);
  caching_free(p);
  const size_t r1 = stats().reserved_bytes;
  EXPECT_EQ(r1, r0 + 8 * kMiB) << "a freed block stays cached (reserved) until empty_cache";
  gpu::empty_cache(0);
  EXPECT_EQ(stats().reserved_bytes, r0);
}

TEST_F(CudaAllocatorTest, MemoryLimitGivesClearError) {
  gpu::empty_cache(0);
  gpu::set_memory_limit(0, stats().reserved_bytes + 4 * kMiB);
  const size_t asked = 64 * kMiB;
  expect_error_containing([&] { caching_malloc(asked, 0, stream_); }, std::to_string(asked));
  // Under the cap, allocation still works.
  void* p = caching_malloc(2 * kMiB, 0, stream_);
  EXPECT_NE(p, nullptr);
  caching_free(p);
  gpu::set_memory_limit(0, 0);
  p = caching_malloc(asked, 0, stream_);
  EXPECT_NE(p, nullptr);
  caching_free(p);
}

TEST_F(CudaAllocatorTest, OutOfMemoryIsClearAndRecoverable) {
  const size_t asked = size_t{1} << 49;  // 512 TiB: cudaMalloc fails on any device
  expect_error_containing([&] { caching_malloc(asked, 0, stream_); }, std::to_string(asked));
  expect_error_containing([&] { caching_malloc(asked, 0, stream_); }, "out of memory");
  // The failed cudaMalloc must not linger as the "last error" blamed on the next launch.
  EXPECT_NO_THROW(gpu::check_launch("nothing after an OOM", stream_));
  void* p = caching_malloc(kMiB, 0, stream_);
  EXPECT_NE(p, nullptr);
  caching_free(p);
}

TEST_F(CudaAllocatorTest, PinnedMemcpyMemsetRoundTrip) {
  const size_t n = 3 * kMiB + 5;
  auto* host = static_cast<unsigned char*>(gpu::host_alloc_pinned(n));
  auto* back = static_cast<unsigned char*>(gpu::host_alloc_pinned(n));
  ASSERT_NE(host, nullptr);
  for (size_t i = 0; i < n; ++i) host[i] = static_cast<unsigned char>(i * 31 + 7);
  std::memset(back, 0, n);
  void* dev = caching_malloc(n, 0, stream_);
  gpu::memcpy_async(dev, host, n, stream_);
  const size_t tail = 1001;  // overwrite the end on the device
  gpu::memset_async(static_cast<unsigned char*>(dev) + (n - tail), 0xAB, tail, stream_);
  gpu::memcpy_async(back, dev, n, stream_);
  gpu::stream_synchronize(stream_);
  size_t bad = 0;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char want = i >= n - tail ? 0xAB : static_cast<unsigned char>(i * 31 + 7);
    bad += back[i] != want;
  }
  EXPECT_EQ(bad, 0u);
  // Device to device and pageable host memory go through the same call (cudaMemcpyDefault).
  void* dev2 = caching_malloc(n, 0, stream_);
  std::vector<unsigned char> pageable(n, 0);
  gpu::memcpy_async(dev2, dev, n, stream_);
  gpu::memcpy_async(pageable.data(), dev2, n, stream_);
  gpu::stream_synchronize(stream_);
  EXPECT_EQ(std::memcmp(pageable.data(), back, n), 0);
  caching_free(dev2);
  caching_free(dev);
  gpu::host_free_pinned(host);
  gpu::host_free_pinned(back);
}

TEST_F(CudaAllocatorTest, RecordStreamDelaysReuse) {
  void* side = gpu::stream_create(0);
  const size_t busy_bytes = 256 * kMiB;
  void* busy = caching_malloc(busy_bytes, 0, side);
  const size_t n = 2 * kMiB;
  void* p = caching_malloc(n, 0, stream_);
  gpu::record_stream(p, side);
  // ~25 GB of writes keep `side` busy for milliseconds: far longer than the host needs for the
  // free and the malloc below, so p's event on `side` cannot have completed yet.
  for (int i = 0; i < 100; ++i) gpu::memset_async(busy, i, busy_bytes, side);
  caching_free(p);
  void* q = caching_malloc(n, 0, stream_);
  EXPECT_NE(q, p) << "p was reused while a stream recorded with record_stream may still use it";
  gpu::stream_synchronize(side);
  const size_t allocs = stats().num_allocs;
  caching_free(q);
  // Once `side` is done, p returns to stream_'s free list: both blocks are reused, no cudaMalloc.
  void* r1 = caching_malloc(n, 0, stream_);
  void* r2 = caching_malloc(n, 0, stream_);
  EXPECT_EQ((std::set<void*>{r1, r2}), (std::set<void*>{p, q}));
  EXPECT_EQ(stats().num_allocs, allocs);
  caching_free(r1);
  caching_free(r2);
  caching_free(busy);
  gpu::stream_destroy(side);
}

TEST_F(CudaAllocatorTest, GraphPoolKeepsBlocksPrivateUntilReleased) {
  gpu::empty_cache(0);
  const size_t n = 6 * kMiB;
  const uint64_t id = gpu::begin_graph_pool(0, stream_);
  EXPECT_GT(id, 0u);
  void* p = caching_malloc(n, 0, stream_);
  caching_free(p);
  void* q = caching_malloc(n, 0, stream_);
  EXPECT_EQ(q, p) << "blocks freed into a graph pool serve later allocations of the same capture";
  caching_free(q);
  // While a capture is underway cudaFree would invalidate it.
  EXPECT_THROW(gpu::empty_cache(0), Error);
  EXPECT_THROW(gpu::begin_graph_pool(0, stream_), Error) << "one pool per stream at a time";
  EXPECT_THROW(gpu::release_graph_pool(0, id), Error) << "release before end";
  gpu::end_graph_pool(0, stream_);
  EXPECT_THROW(gpu::end_graph_pool(0, stream_), Error) << "end without begin";

  // After the capture, p still belongs to the graph: replays write it, so nobody else gets it.
  void* r = caching_malloc(n, 0, stream_);
  EXPECT_NE(r, p);
  const size_t reserved = stats().reserved_bytes;
  gpu::empty_cache(0);
  EXPECT_EQ(stats().reserved_bytes, reserved) << "empty_cache must keep a live graph's pool";
  gpu::release_graph_pool(0, id);
  EXPECT_EQ(stats().reserved_bytes, reserved - n) << "releasing the pool frees its cached blocks";
  EXPECT_THROW(gpu::release_graph_pool(0, id), Error) << "already released";
  caching_free(r);

  // A block still in use when its pool is released is freed when its owner lets go.
  const uint64_t id2 = gpu::begin_graph_pool(0, stream_);
  EXPECT_NE(id2, id);
  void* x = caching_malloc(n, 0, stream_);
  gpu::end_graph_pool(0, stream_);
  gpu::release_graph_pool(0, id2);
  gpu::memset_async(x, 0, n, stream_);  // still valid memory
  gpu::stream_synchronize(stream_);
  const size_t before = stats().reserved_bytes;
  caching_free(x);
  EXPECT_EQ(stats().reserved_bytes, before - n);
}

// A block freed while a capture is underway, with a use on another stream (record_stream), is
// deferred (no event may be recorded inside a capture) until the last capture ends, on whichever
// device that is; then it returns to its stream's free list once the use completes. Returns
// whether cuda:0's block came back (reused by the next allocation, no cudaMalloc).
bool deferred_free_returns(void* stream, int capture_device) {
  void* cap = gpu::stream_create(capture_device);
  void* side = gpu::stream_create(0);
  const size_t n = 4 * kMiB;
  void* p = caching_malloc(n, 0, stream);
  gpu::record_stream(p, side);
  const uint64_t id = gpu::begin_graph_pool(capture_device, cap);
  caching_free(p);
  gpu::end_graph_pool(capture_device, cap);
  gpu::stream_synchronize(side);
  const size_t allocs = gpu::memory_stats(0).num_allocs;
  void* q = caching_malloc(n, 0, stream);
  const bool back = q == p && gpu::memory_stats(0).num_allocs == allocs;
  caching_free(q);
  gpu::release_graph_pool(capture_device, id);
  gpu::stream_destroy(side);
  gpu::stream_destroy(cap);
  return back;
}

TEST_F(CudaAllocatorTest, FreesDeferredByACaptureReturnWhenItEnds) {
  EXPECT_TRUE(deferred_free_returns(stream_, 0));
}

// The count of captures underway is shared by all devices: a capture on cuda:1 defers cuda:0's
// frees too, and its end must process them (they stayed deferred, a leak, when only the ending
// device's were).
TEST_F(CudaAllocatorTest, FreesDeferredByACaptureOnAnotherGpuReturnWhenItEnds) {
  if (gpu::device_count_noexcept() < 2) GTEST_SKIP() << "needs two CUDA devices";
  EXPECT_TRUE(deferred_free_returns(stream_, 1));
}

TEST_F(CudaAllocatorTest, CudaRuntimeDevicesStreamsAndHandles) {
  gpu::set_device(0);
  EXPECT_EQ(gpu::current_device(), 0);
  expect_error_containing([] { gpu::set_device(gpu::device_count_noexcept()); }, "no CUDA device");
  EXPECT_NO_THROW(gpu::check_launch("no kernel", stream_));
  gpu::device_synchronize(0);
  // The name a run's summary records (device_name): the product, e.g. "NVIDIA H200".
  EXPECT_NE(gpu::device_name(0).find("NVIDIA"), std::string::npos) << gpu::device_name(0);
  expect_error_containing([] { gpu::device_name(gpu::device_count_noexcept()); }, "no CUDA device");

  // The cuBLAS workspace comes from the caching allocator (so graphs and stats see it).
  const size_t before = stats().current_bytes;
  void* blas = gpu::cublas_create(0, stream_);
  ASSERT_NE(blas, nullptr);
  EXPECT_GE(stats().current_bytes, before + 4 * kMiB);
  gpu::cublas_destroy(blas);
  EXPECT_EQ(stats().current_bytes, before);
  void* dnn = gpu::cudnn_create(0, stream_);
  ASSERT_NE(dnn, nullptr);
  gpu::cudnn_destroy(dnn);
  // cuBLAS/cuDNN versions are reported once a device exists.
  EXPECT_NE(std::string(gpu::versions()).find("cudnn"), std::string::npos);
}

}  // namespace
}  // namespace cyclone
