// Memory blocks. CPU memory is 64-byte aligned (AVX-512 loads, no false sharing at the ends);
// pinned host memory comes from cudaHostAlloc for fast asynchronous transfers; CUDA memory comes
// from the caching allocator (core/cuda/caching_allocator.h), bound to the stream it was
// allocated on.
#pragma once

#include <cstddef>
#include <memory>

#include "cyclone/core/device.h"

namespace cyclone {

class Context;  // core/context.h

struct Storage {
  std::shared_ptr<void> data;  // owns the block; its deleter returns it to its allocator
  size_t nbytes = 0;
  Device device;
  bool pinned = false;  // host memory that is page-locked
};

// Allocates nbytes on device (contents undefined). CUDA memory is stream-ordered on the current
// context's stream of that device. Throws a clear Error when the memory cannot be had, naming
// how much was asked and how much is free. Host blocks of kHostCheckBytes or more are checked
// against host_memory_available() (and the limit below) before they are allocated: Linux would
// grant a block larger than the machine and the OOM killer would end the process (or another
// one) later, in the middle of a run.
Storage allocate_storage(size_t nbytes, Device device, bool pinned = false);
// The same on ctx's device, CUDA memory ordered on ctx's stream rather than the current
// context's: scratch for work enqueued on ctx, which returns to that stream's free list when
// dropped, so the next allocation there is ordered after the work (on any other stream it could
// be handed out while ctx's kernels still use it).
Storage allocate_storage(size_t nbytes, const Context& ctx);

inline constexpr size_t kHostCheckBytes = size_t{64} << 20;

// Bytes the process may still allocate on the host: /proc/meminfo's MemAvailable, lowered to
// what is left under the memory cgroup's limit (v2 memory.max or v1 limit_in_bytes) when one is
// set. SIZE_MAX when neither can be read.
size_t host_memory_available();

// Caps the bytes that CPU tensors may hold at once (0: no cap besides the machine's), as
// gpu::set_memory_limit does for a device.
void set_cpu_memory_limit(size_t bytes);

// Byte statistics of the CPU allocator (the CUDA allocator reports its own).
struct MemoryStats {
  size_t current_bytes = 0;
  size_t peak_bytes = 0;
  size_t reserved_bytes = 0;  // held from the system (== current on the CPU)
  size_t num_allocs = 0;      // calls that reached the system allocator
};
MemoryStats cpu_memory_stats();

}  // namespace cyclone
