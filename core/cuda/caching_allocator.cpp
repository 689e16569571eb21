// The CUDA caching allocator: see the contract in caching_allocator.h. Deliberately simpler than
// PyTorch's: a block is one cudaMalloc and is never split or merged, so a cached block serves a
// request only when it wastes at most a quarter of the request (kMaxSlackDivisor). In exchange
// there is no fragmentation bookkeeping, and a training loop, which asks for the same sizes every
// step, still reaches a steady state with no cudaMalloc at all.
#include "cyclone/core/cuda/caching_allocator.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "cyclone/core/cuda/check.h"
#include "cyclone/core/cuda/guard.h"
#include "cyclone/core/cuda/runtime.h"

namespace cyclone::gpu {
namespace {

constexpr size_t kSmallLimit = size_t{1} << 20;    // requests below use small granules
constexpr size_t kSmallGranule = 512;              // covers every vector-load alignment
constexpr size_t kLargeGranule = size_t{2} << 20;  // the driver's large-page size
constexpr size_t kMaxRequest = size_t{1} << 50;    // 1 PiB: no device has it; rounding can't wrap
constexpr size_t kMaxSlackDivisor = 4;             // reuse a block at most 1/4 larger than asked

size_t round_size(size_t n) {
  const size_t g = n < kSmallLimit ? kSmallGranule : kLargeGranule;
  return (n + g - 1) / g * g;
}

std::string mib(size_t bytes) {
  return cyclone::detail::str_cat(static_cast<double>(bytes) / static_cast<double>(1 << 20),
                                  " MiB");
}

struct Block {
  void* ptr = nullptr;
  size_t size = 0;  // rounded; what the stats count
  int device = 0;
  cudaStream_t stream = nullptr;  // the stream it was allocated on: its free list
  uint64_t pool = 0;              // 0: the default pool; else a graph pool's id
  bool allocated = false;
  int pending_events = 0;          // record_stream events still to complete before reuse
  std::vector<cudaStream_t> uses;  // other streams that used it (record_stream)
};

// Free lists: one ordered set per device, keyed (pool, stream, size, address), so the best fit of
// a (pool, stream) pair is one lower_bound away.
struct BlockLess {
  bool operator()(const Block* a, const Block* b) const {
    auto key = [](const Block* x) {
      return std::make_tuple(x->pool, reinterpret_cast<uintptr_t>(x->stream), x->size,
                             reinterpret_cast<uintptr_t>(x->ptr));
    };
    return key(a) < key(b);
  }
};

struct GraphPool {
  bool released = false;
  size_t blocks = 0;  // blocks of this pool still held (free or in use)
};

struct DeviceState {
  std::set<Block*, BlockLess> free_blocks;
  std::deque<std::pair<cudaEvent_t, Block*>> pending;  // frees waiting on record_stream events
  std::vector<cudaEvent_t> spare_events;
  std::unordered_map<cudaStream_t, uint64_t> capturing;  // stream -> pool, begin..end
  std::unordered_map<uint64_t, GraphPool> pools;
  MemoryStats stats;
  size_t limit = 0;
};

class Allocator {
 public:
  void* malloc(size_t nbytes, int device, cudaStream_t stream);
  void free(void* ptr);
  void record_stream(void* ptr, cudaStream_t stream);
  void empty_cache(int device);
  MemoryStats stats(int device);
  void reset_peak(int device);
  void set_limit(int device, size_t bytes);
  uint64_t begin_pool(int device, cudaStream_t stream);
  void end_pool(int device, cudaStream_t stream);
  void release_pool(int device, uint64_t id);

 private:
  DeviceState& state(int device);
  uint64_t pool_for(DeviceState& d, cudaStream_t stream);
  Block* find_free(DeviceState& d, uint64_t pool, cudaStream_t stream, size_t size);
  Block* new_block(DeviceState& d, int device, cudaStream_t stream, uint64_t pool, size_t nbytes,
                   size_t size);
  [[noreturn]] void throw_oom(DeviceState& d, int device, size_t nbytes, size_t size,
                              const char* why);
  void return_block(DeviceState& d, Block* b);
  void insert_events(DeviceState& d, Block* b);
  void process_events(DeviceState& d);
  bool release_cached(DeviceState& d, uint64_t only_pool = 0);
  void release_block(DeviceState& d, Block* b);

  std::mutex mutex_;
  std::unordered_map<void*, std::unique_ptr<Block>> blocks_;  // every block held, by address
  std::vector<std::unique_ptr<DeviceState>> devices_;
  uint64_t next_pool_ = 1;
  int captures_ = 0;  // begin_graph_pool calls not yet ended, all devices
  // Blocks freed with other-stream uses while a capture was underway, on any device: a capture
  // on one device defers the frees of every device (captures_ is shared), so all of them are
  // processed when the last capture ends, whichever device it was on.
  std::vector<Block*> deferred_;
};

Allocator& allocator() {
  // Leaked on purpose: tensors destroyed during static destruction still free into it.
  static Allocator& a = *std::make_unique<Allocator>().release();
  return a;
}

DeviceState& Allocator::state(int device) {
  detail::check_device(device);
  if (devices_.size() <= static_cast<size_t>(device)) devices_.resize(device + 1);
  if (!devices_[device]) devices_[device] = std::make_unique<DeviceState>();
  return *devices_[device];
}

uint64_t Allocator::pool_for(DeviceState& d, cudaStream_t stream) {
  if (d.capturing.empty()) return 0;
  if (auto it = d.capturing.find(stream); it != d.capturing.end()) return it->second;
  if (stream == nullptr) return 0;
  // A stream forked into a capture (it waited on an event recorded in the capturing stream) is
  // part of the same capture sequence: its allocations belong to that capture's pool too.
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  unsigned long long id = 0;
  CUDA_CHECK(cudaStreamGetCaptureInfo(stream, &status, &id));
  if (status != cudaStreamCaptureStatusActive) return 0;
  for (const auto& [s, pool] : d.capturing) {
    cudaStreamCaptureStatus s_status = cudaStreamCaptureStatusNone;
    unsigned long long s_id = 0;
    CUDA_CHECK(cudaStreamGetCaptureInfo(s, &s_status, &s_id));
    if (s_status == cudaStreamCaptureStatusActive && s_id == id) return pool;
  }
  CYCLONE_THROW(
      "allocation on a stream under CUDA graph capture that no begin_graph_pool covers: "
      "call gpu::begin_graph_pool(device, stream) on the capturing stream first");
}

Block* Allocator::find_free(DeviceState& d, uint64_t pool, cudaStream_t stream, size_t size) {
  Block key;
  key.pool = pool;
  key.stream = stream;
  key.size = size;
  auto it = d.free_blocks.lower_bound(&key);
  if (it == d.free_blocks.end()) return nullptr;
  Block* b = *it;
  if (b->pool != pool || b->stream != stream || b->size > size + size / kMaxSlackDivisor) {
    return nullptr;
  }
  d.free_blocks.erase(it);
  return b;
}

void* Allocator::malloc(size_t nbytes, int device, cudaStream_t stream) {
  if (nbytes == 0) return nullptr;
  CYCLONE_CHECK(nbytes <= kMaxRequest, "CUDA allocation of ", nbytes, " bytes on cuda:", device,
                " is beyond any device (corrupt size?)");
  const size_t size = round_size(nbytes);
  std::lock_guard lock(mutex_);
  DeviceState& d = state(device);
  const uint64_t pool = pool_for(d, stream);
  // Querying events recorded inside a capture is illegal, so completions wait for its end.
  if (captures_ == 0 && !d.pending.empty()) process_events(d);
  Block* b = find_free(d, pool, stream, size);
  if (b == nullptr) b = new_block(d, device, stream, pool, nbytes, size);
  b->allocated = true;
  d.stats.current_bytes += b->size;
  d.stats.peak_bytes = std::max(d.stats.peak_bytes, d.stats.current_bytes);
  return b->ptr;
}

Block* Allocator::new_block(DeviceState& d, int device, cudaStream_t stream, uint64_t pool,
                            size_t nbytes, size_t size) {
  detail::DeviceGuard guard(device);  // cudaMalloc allocates on the current device
  if (d.limit != 0 && d.stats.reserved_bytes + size > d.limit) {
    release_cached(d);
    if (d.stats.reserved_bytes + size > d.limit) {
      throw_oom(d, device, nbytes, size, "the limit set by set_memory_limit");
    }
  }
  // cudaMalloc is not captured (it happens once, at capture time), so it is legal during a
  // capture only in relaxed mode; switching this thread to relaxed for the call is what keeps a
  // capture begun in the default global mode alive when the private pool must grow.
  auto checked_malloc = [&](void** p) {
    cudaStreamCaptureMode mode = cudaStreamCaptureModeRelaxed;
    CUDA_CHECK(cudaThreadExchangeStreamCaptureMode(&mode));
    cudaError_t e = cudaMalloc(p, size);
    CUDA_CHECK(cudaThreadExchangeStreamCaptureMode(&mode));
    if (e != cudaSuccess) (void)cudaGetLastError();  // not sticky: keep it from resurfacing
    return e;
  };
  void* p = nullptr;
  cudaError_t e = checked_malloc(&p);
  if (e == cudaErrorMemoryAllocation && release_cached(d)) e = checked_malloc(&p);
  if (e == cudaErrorMemoryAllocation) throw_oom(d, device, nbytes, size, "the device");
  if (e == cudaErrorStreamCaptureUnsupported || e == cudaErrorStreamCaptureInvalidated) {
    CYCLONE_THROW("cudaMalloc of ", size, " bytes during a CUDA graph capture failed (",
                  cudaGetErrorName(e), "): capture with gpu::begin_graph_pool on the stream");
  }
  CUDA_CHECK(e);
  auto block = std::make_unique<Block>();
  block->ptr = p;
  block->size = size;
  block->device = device;
  block->stream = stream;
  block->pool = pool;
  if (pool != 0) ++d.pools[pool].blocks;
  d.stats.reserved_bytes += size;
  ++d.stats.num_allocs;
  Block* raw = block.get();
  blocks_.emplace(p, std::move(block));
  return raw;
}

void Allocator::throw_oom(DeviceState& d, int device, size_t nbytes, size_t size, const char* why) {
  size_t free_bytes = 0, total_bytes = 0;
  if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) (void)cudaGetLastError();
  throw OutOfMemory(cyclone::detail::str_cat(
      "CUDA out of memory on cuda:", device, " (refused by ", why, "): asked for ", nbytes,
      " bytes (", mib(nbytes), ", rounded to ", size, "); ", d.stats.current_bytes,
      " bytes in use by tensors, ", d.stats.reserved_bytes, " reserved by the caching allocator, ",
      free_bytes, " free of ", total_bytes, " on the device",
      d.limit ? cyclone::detail::str_cat(", memory limit ", d.limit, " bytes") : std::string(),
      ": use a smaller batch size or model"));
}

void Allocator::free(void* ptr) {
  std::lock_guard lock(mutex_);
  auto it = blocks_.find(ptr);
  CYCLONE_CHECK(it != blocks_.end() && it->second->allocated, "caching_free(", ptr,
                "): not a live block of the CUDA caching allocator (double free?)");
  Block* b = it->second.get();
  DeviceState& d = state(b->device);
  b->allocated = false;
  d.stats.current_bytes -= b->size;
  if (b->uses.empty()) {
    return_block(d, b);
  } else if (captures_ != 0) {
    // Events recorded now could land inside a capture, where they cannot be queried.
    deferred_.push_back(b);
  } else {
    insert_events(d, b);
  }
}

void Allocator::return_block(DeviceState& d, Block* b) {
  if (b->pool != 0 && d.pools[b->pool].released && captures_ == 0) {
    release_block(d, b);  // its graph is gone: give the memory back rather than cache it
  } else {
    d.free_blocks.insert(b);
  }
}

void Allocator::insert_events(DeviceState& d, Block* b) {
  detail::DeviceGuard guard(b->device);
  for (cudaStream_t s : b->uses) {
    cudaEvent_t ev = nullptr;
    if (d.spare_events.empty()) {
      CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
    } else {
      ev = d.spare_events.back();
      d.spare_events.pop_back();
    }
    CUDA_CHECK(cudaEventRecord(ev, s));
    d.pending.emplace_back(ev, b);
    ++b->pending_events;
  }
  b->uses.clear();
}

void Allocator::process_events(DeviceState& d) {
  // Pop each entry before checking it, so that a throwing check leaves no half-processed entry.
  for (size_t i = 0, n = d.pending.size(); i < n; ++i) {
    auto [ev, b] = d.pending.front();
    d.pending.pop_front();
    cudaError_t e = cudaEventQuery(ev);
    if (e == cudaErrorNotReady) {
      (void)cudaGetLastError();  // an answer, not an error for the next check to report
      d.pending.emplace_back(ev, b);
      continue;
    }
    CUDA_CHECK(e);
    d.spare_events.push_back(ev);
    if (--b->pending_events == 0) return_block(d, b);
  }
}

void Allocator::release_block(DeviceState& d, Block* b) {
  detail::DeviceGuard guard(b->device);
  // cudaFree waits for the device to be idle, so work still reading the block is finished.
  cudaError_t e = cudaFree(b->ptr);
  // After the runtime has shut down (process exit) the driver has reclaimed everything already.
  if (e != cudaErrorCudartUnloading) CUDA_CHECK(e);
  d.stats.reserved_bytes -= b->size;
  if (b->pool != 0) {
    auto p = d.pools.find(b->pool);
    if (--p->second.blocks == 0 && p->second.released) d.pools.erase(p);
  }
  blocks_.erase(b->ptr);
}

// Frees the cached blocks of the default pool and of released graph pools (only_pool: just that
// pool's). Blocks of live graph pools stay: the graph's kernels use those addresses at replay.
// Returns whether anything was freed.
bool Allocator::release_cached(DeviceState& d, uint64_t only_pool) {
  if (captures_ != 0) return false;  // cudaFree would invalidate a capture underway
  while (!d.pending.empty()) {
    auto [ev, b] = d.pending.front();
    d.pending.pop_front();
    CUDA_CHECK(cudaEventSynchronize(ev));
    d.spare_events.push_back(ev);
    if (--b->pending_events == 0) d.free_blocks.insert(b);
  }
  std::vector<Block*> victims;
  for (Block* b : d.free_blocks) {
    const bool releasable = b->pool == 0 || d.pools[b->pool].released;
    if (releasable && (only_pool == 0 || b->pool == only_pool)) victims.push_back(b);
  }
  for (Block* b : victims) {
    d.free_blocks.erase(b);
    release_block(d, b);
  }
  return !victims.empty();
}

void Allocator::record_stream(void* ptr, cudaStream_t stream) {
  std::lock_guard lock(mutex_);
  auto it = blocks_.find(ptr);
  CYCLONE_CHECK(it != blocks_.end() && it->second->allocated, "record_stream(", ptr,
                "): not a live block of the CUDA caching allocator");
  Block* b = it->second.get();
  if (stream == b->stream) return;  // its own stream orders the reuse already
  if (std::find(b->uses.begin(), b->uses.end(), stream) == b->uses.end()) {
    b->uses.push_back(stream);
  }
}

void Allocator::empty_cache(int device) {
  std::lock_guard lock(mutex_);
  DeviceState& d = state(device);
  CYCLONE_CHECK(captures_ == 0, "empty_cache(cuda:", device,
                ") during a CUDA graph capture: cudaFree would invalidate the capture");
  release_cached(d);
}

MemoryStats Allocator::stats(int device) {
  std::lock_guard lock(mutex_);
  return state(device).stats;
}

void Allocator::reset_peak(int device) {
  std::lock_guard lock(mutex_);
  DeviceState& d = state(device);
  d.stats.peak_bytes = d.stats.current_bytes;
}

void Allocator::set_limit(int device, size_t bytes) {
  std::lock_guard lock(mutex_);
  state(device).limit = bytes;
}

uint64_t Allocator::begin_pool(int device, cudaStream_t stream) {
  std::lock_guard lock(mutex_);
  DeviceState& d = state(device);
  auto it = d.capturing.find(stream);
  CYCLONE_CHECK(it == d.capturing.end(),
                "begin_graph_pool: the stream already allocates into "
                "graph pool ",
                it == d.capturing.end() ? 0 : it->second, " (end_graph_pool first)");
  const uint64_t id = next_pool_++;
  d.pools.emplace(id, GraphPool{});
  d.capturing.emplace(stream, id);
  ++captures_;
  return id;
}

void Allocator::end_pool(int device, cudaStream_t stream) {
  std::lock_guard lock(mutex_);
  DeviceState& d = state(device);
  auto it = d.capturing.find(stream);
  CYCLONE_CHECK(it != d.capturing.end(),
                "end_graph_pool: no begin_graph_pool on this stream of cuda:", device);
  d.capturing.erase(it);
  --captures_;
  if (captures_ == 0) {
    // Uses recorded during the capture get their events now that streams run for real again.
    std::vector<Block*> deferred;
    deferred.swap(deferred_);
    for (Block* b : deferred) insert_events(state(b->device), b);
  }
}

void Allocator::release_pool(int device, uint64_t id) {
  std::lock_guard lock(mutex_);
  DeviceState& d = state(device);
  auto it = d.pools.find(id);
  CYCLONE_CHECK(it != d.pools.end() && !it->second.released, "release_graph_pool: ", id,
                " is not a live graph pool of cuda:", device);
  for (const auto& [s, pool] : d.capturing) {
    CYCLONE_CHECK(pool != id, "release_graph_pool: pool ", id,
                  " is still being captured into (end_graph_pool first)");
  }
  it->second.released = true;
  if (it->second.blocks == 0) {
    d.pools.erase(it);
    return;
  }
  // Its cached blocks go back to the driver now, or at the next empty_cache if a capture is
  // underway; blocks still in use are freed when their owners let go.
  release_cached(d, id);
}

}  // namespace

void* caching_malloc(size_t nbytes, int device, void* stream) {
  return allocator().malloc(nbytes, device, static_cast<cudaStream_t>(stream));
}

void caching_free(void* ptr) {
  if (ptr == nullptr) return;
  // Runs as a Storage deleter: it must not throw (see detail::teardown).
  detail::teardown("caching_free", [&] { allocator().free(ptr); });
}

void record_stream(void* ptr, void* stream) {
  if (ptr == nullptr) return;
  allocator().record_stream(ptr, static_cast<cudaStream_t>(stream));
}

void empty_cache(int device) { allocator().empty_cache(device); }
MemoryStats memory_stats(int device) { return allocator().stats(device); }
void reset_peak_stats(int device) { allocator().reset_peak(device); }
void set_memory_limit(int device, size_t bytes) { allocator().set_limit(device, bytes); }

uint64_t begin_graph_pool(int device, void* stream) {
  return allocator().begin_pool(device, static_cast<cudaStream_t>(stream));
}
void end_graph_pool(int device, void* stream) {
  allocator().end_pool(device, static_cast<cudaStream_t>(stream));
}
void release_graph_pool(int device, uint64_t id) { allocator().release_pool(device, id); }

}  // namespace cyclone::gpu
