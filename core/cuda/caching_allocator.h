// The CUDA caching allocator (PyTorch's CUDACachingAllocator in spirit, much smaller).
//
// - Blocks are rounded up (512 B granules below 1 MiB, 2 MiB granules above) and cached per
//   (device, stream) when freed: a freed block is reused by the next allocation on the same
//   stream without synchronisation, because stream order makes that safe. So the steady state of
//   a training loop never calls cudaMalloc.
// - A block used on another stream is marked with record_stream(); at free time an event is
//   recorded on each such stream and the block only returns to the pool once they complete.
// - Graph safety: while a stream is being captured into a CUDA graph, allocations come from a
//   private pool of that capture, and blocks freed during capture stay in that pool (the graph
//   owns them) until release_graph_pool() - so replaying a graph never touches memory that was
//   handed to someone else. No cudaMalloc/cudaFree happens inside a capture unless the pool is
//   empty, and then cudaMalloc (which is legal during relaxed-mode capture) is used.
// - When cudaMalloc fails, cached free blocks are released and the call retried once; then an
//   Error says how many bytes were asked, how many are in use and how many the device has free.
// - An optional cap (set_memory_limit) turns any allocation beyond it into the same clear Error.
#pragma once

#include <cstddef>
#include <cstdint>

#include "cyclone/core/cuda_decl.h"
#include "cyclone/core/storage.h"

namespace cyclone::gpu {

CYCLONE_CUDA_FN(void* caching_malloc(size_t nbytes, int device, void* stream))
CYCLONE_CUDA_FN(void caching_free(void* ptr))
// Marks ptr as used on `stream` too (cross-stream use); see above.
CYCLONE_CUDA_FN(void record_stream(void* ptr, void* stream))
// Returns every cached free block of `device` to the driver (cudaFree).
CYCLONE_CUDA_FN(void empty_cache(int device))
CYCLONE_CUDA_FN(MemoryStats memory_stats(int device))
CYCLONE_CUDA_FN(void reset_peak_stats(int device))
// Caps the bytes this allocator may hold on `device` (0 = no cap).
CYCLONE_CUDA_FN(void set_memory_limit(int device, size_t bytes))

// Graph capture support: allocations on a stream between begin/end go to pool `id`.
CYCLONE_CUDA_FN(uint64_t begin_graph_pool(int device, void* stream))
CYCLONE_CUDA_FN(void end_graph_pool(int device, void* stream))
CYCLONE_CUDA_FN(void release_graph_pool(int device, uint64_t id))

}  // namespace cyclone::gpu
