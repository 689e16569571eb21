// Memory blocks. CPU memory is 64-byte aligned (AVX-512 loads, no false sharing at the ends);
// pinned host memory comes from cudaHostAlloc for fast asynchronous transfers; CUDA memory comes
// from the caching allocator (core/cuda/caching_allocator.h), bound to the stream it was
// allocated on.
#pragma once

#include <cstddef>
#include <memory>

#include "cyclone/core/device.h"

namespace cyclone {

struct Storage {
  std::shared_ptr<void> data;  // owns the block; its deleter returns it to its allocator
  size_t nbytes = 0;
  Device device;
  bool pinned = false;  // host memory that is page-locked
};

// Allocates nbytes on device (contents undefined). CUDA memory is stream-ordered on the current
// context's stream of that device. Throws a clear Error when the memory cannot be had, naming
// how much was asked.
Storage allocate_storage(size_t nbytes, Device device, bool pinned = false);

// Byte statistics of the CPU allocator (the CUDA allocator reports its own).
struct MemoryStats {
  size_t current_bytes = 0;
  size_t peak_bytes = 0;
  size_t reserved_bytes = 0;  // held from the system (== current on the CPU)
  size_t num_allocs = 0;      // calls that reached the system allocator
};
MemoryStats cpu_memory_stats();

}  // namespace cyclone
