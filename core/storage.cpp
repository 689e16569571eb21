#include "cyclone/core/storage.h"

#include <atomic>
#include <cstdlib>
#include <new>

#include "cyclone/core/context.h"
#include "cyclone/core/cuda/caching_allocator.h"
#include "cyclone/core/cuda/runtime.h"
#include "cyclone/core/error.h"

namespace cyclone {

namespace {
constexpr size_t kCpuAlignment = 64;

struct CpuCounters {
  std::atomic<size_t> current{0}, peak{0}, allocs{0};
};
CpuCounters& cpu_counters() {
  static CpuCounters c;
  return c;
}

void note_alloc(size_t n) {
  auto& c = cpu_counters();
  const size_t now = c.current.fetch_add(n) + n;
  size_t peak = c.peak.load();
  while (now > peak && !c.peak.compare_exchange_weak(peak, now)) {
  }
  c.allocs.fetch_add(1);
}

std::shared_ptr<void> cpu_alloc(size_t nbytes) {
  // Round up so aligned_alloc's size is a multiple of the alignment; never ask for 0 bytes.
  const size_t rounded = (nbytes + kCpuAlignment - 1) / kCpuAlignment * kCpuAlignment;
  void* p = std::aligned_alloc(kCpuAlignment, rounded == 0 ? kCpuAlignment : rounded);
  CYCLONE_CHECK(p != nullptr, "out of host memory: could not allocate ", nbytes, " bytes");
  note_alloc(nbytes);
  return std::shared_ptr<void>(p, [nbytes](void* q) {
    std::free(q);
    cpu_counters().current.fetch_sub(nbytes);
  });
}
}  // namespace

Storage allocate_storage(size_t nbytes, Device device, bool pinned) {
  Storage s;
  s.nbytes = nbytes;
  s.device = device;
  if (device.is_cpu()) {
    if (pinned && cuda_available()) {
      void* p = gpu::host_alloc_pinned(nbytes == 0 ? 1 : nbytes);
      s.data = std::shared_ptr<void>(p, [](void* q) { gpu::host_free_pinned(q); });
      s.pinned = true;
    } else {
      // Without a GPU, "pinned" memory is just host memory: nothing to transfer to.
      s.data = cpu_alloc(nbytes);
    }
    return s;
  }
  CYCLONE_CHECK(device.index < cuda_device_count(), "cannot allocate on ", device.str(), ": ",
                cuda_device_count(), " CUDA device(s) usable");
  void* stream = Context::current(device).stream();
  void* p = gpu::caching_malloc(nbytes, device.index, stream);
  s.data = std::shared_ptr<void>(p, [](void* q) { gpu::caching_free(q); });
  return s;
}

MemoryStats cpu_memory_stats() {
  auto& c = cpu_counters();
  MemoryStats m;
  m.current_bytes = c.current.load();
  m.peak_bytes = c.peak.load();
  m.reserved_bytes = m.current_bytes;
  m.num_allocs = c.allocs.load();
  return m;
}

}  // namespace cyclone
