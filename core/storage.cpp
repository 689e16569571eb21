#include "cyclone/core/storage.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <new>
#include <optional>
#include <string>

#include "cyclone/core/context.h"
#include "cyclone/core/cuda/caching_allocator.h"
#include "cyclone/core/cuda/runtime.h"
#include "cyclone/core/error.h"
#include "cyclone/core/resource_limits.h"

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

std::atomic<size_t> g_cpu_limit{0};

// The first number on the line of `path` that starts with `key` (all of it when key is empty);
// nullopt when the file or the key is missing or the value is not a number ("max").
std::optional<uint64_t> read_number(const char* path, const std::string& key = "") {
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key, 0) != 0) continue;
    const size_t at = line.find_first_of("0123456789", key.size());
    if (at == std::string::npos) return std::nullopt;
    try {
      return std::stoull(line.substr(at));
    } catch (const std::exception&) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

[[noreturn]] void throw_host_oom(size_t nbytes, size_t available, const char* why) {
  throw OutOfMemory(
      detail::str_cat("out of host memory: asked for ", nbytes, " bytes (", mib_text(nbytes),
                      ") with ", available, " bytes (", mib_text(available), ") free (", why,
                      "); CPU tensors hold ", mib_text(cpu_counters().current.load()),
                      ": use a smaller batch size or model, or free memory on the machine"));
}

// Refuses, before anything is allocated, a host block that cannot be had.
void check_host_request(size_t nbytes) {
  // A size near SIZE_MAX would wrap when rounded up below; no machine has it anyway.
  if (nbytes > (SIZE_MAX >> 2)) throw_host_oom(nbytes, host_memory_available(), "the machine");
  if (const size_t limit = g_cpu_limit.load(); limit != 0) {
    const size_t used = cpu_counters().current.load();
    if (used + nbytes > limit)
      throw_host_oom(nbytes, used < limit ? limit - used : 0,
                     "the limit set by set_cpu_memory_limit");
  }
  if (nbytes >= kHostCheckBytes) {
    const size_t available = host_memory_available();
    if (nbytes > available) throw_host_oom(nbytes, available, "MemAvailable and cgroup limit");
  }
}

std::shared_ptr<void> cpu_alloc(size_t nbytes) {
  check_host_request(nbytes);
  // Round up so aligned_alloc's size is a multiple of the alignment; never ask for 0 bytes.
  const size_t rounded = (nbytes + kCpuAlignment - 1) / kCpuAlignment * kCpuAlignment;
  void* p = std::aligned_alloc(kCpuAlignment, rounded == 0 ? kCpuAlignment : rounded);
  if (p == nullptr) {
    // With gigabytes free, what refused is most likely the address-space limit: say so.
    if (const std::string note = address_space_note(); !note.empty())
      throw OutOfMemory(detail::str_cat(
          "out of host memory: asked for ", nbytes, " bytes (", mib_text(nbytes),
          ") and refused: ", note, "; CPU tensors hold ", mib_text(cpu_counters().current.load()),
          ": raise the limit (ulimit -v) or use a smaller batch size or model"));
    throw_host_oom(nbytes, host_memory_available(), "the system allocator refused");
  }
  note_alloc(nbytes);
  return std::shared_ptr<void>(p, [nbytes](void* q) {
    std::free(q);
    cpu_counters().current.fetch_sub(nbytes);
  });
}
}  // namespace

size_t host_memory_available() {
  size_t avail = SIZE_MAX;
  if (auto kib = read_number("/proc/meminfo", "MemAvailable:")) avail = *kib * 1024;
  // cgroup v2, then v1 (whose "no limit" is a huge number, which min() ignores).
  std::optional<uint64_t> limit = read_number("/sys/fs/cgroup/memory.max");
  std::optional<uint64_t> used = read_number("/sys/fs/cgroup/memory.current");
  if (!limit) {
    limit = read_number("/sys/fs/cgroup/memory/memory.limit_in_bytes");
    used = read_number("/sys/fs/cgroup/memory/memory.usage_in_bytes");
  }
  if (limit && used) avail = std::min<size_t>(avail, *limit > *used ? *limit - *used : 0);
  return avail;
}

void set_cpu_memory_limit(size_t bytes) { g_cpu_limit.store(bytes); }

Storage allocate_storage(size_t nbytes, Device device, bool pinned) {
  Storage s;
  s.nbytes = nbytes;
  s.device = device;
  if (device.is_cpu()) {
    if (pinned && cuda_available()) {
      check_host_request(nbytes);
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
  return allocate_storage(nbytes, Context::current(device));
}

Storage allocate_storage(size_t nbytes, const Context& ctx) {
  const Device device = ctx.device();
  if (device.is_cpu()) return allocate_storage(nbytes, device);
  Storage s;
  s.nbytes = nbytes;
  s.device = device;
  void* p = gpu::caching_malloc(nbytes, device.index, ctx.stream());
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
