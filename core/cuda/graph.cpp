#include "cyclone/core/cuda/graph.h"

#include <cuda_runtime.h>

#include <utility>

#include "cyclone/core/cuda/caching_allocator.h"
#include "cyclone/core/cuda/check.h"
#include "cyclone/core/cuda/guard.h"

namespace cyclone::gpu {

struct Graph::State {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  cudaStream_t stream = nullptr;
  int device = -1;
  uint64_t pool = 0;
  int64_t nodes = 0;

  ~State() {
    // Destruction cannot report; a sticky fault surfaces at the next checked call. Replays still
    // queued write the pool's blocks: let them finish before the blocks go back (cudaFree is not
    // guaranteed to wait for them).
    if (stream != nullptr) {
      detail::DeviceGuard guard(device);
      (void)cudaStreamSynchronize(stream);
    }
    if (exec != nullptr) (void)cudaGraphExecDestroy(exec);
    if (graph != nullptr) (void)cudaGraphDestroy(graph);
    if (pool != 0) {
      try {
        release_graph_pool(device, pool);
      } catch (...) {  // never throw from a destructor
      }
    }
  }
};

Graph::Graph() = default;
Graph::~Graph() = default;
Graph::Graph(Graph&&) noexcept = default;
Graph& Graph::operator=(Graph&&) noexcept = default;

void Graph::reset() { s_.reset(); }
bool Graph::ready() const { return s_ && s_->exec != nullptr; }
int64_t Graph::nodes() const { return s_ ? s_->nodes : 0; }

std::string Graph::capture(Context& ctx, const std::function<void()>& work) {
  if (!ctx.device().is_cuda()) return kNeedsCudaContext + ctx.device().str();
  auto st = std::make_unique<State>();
  st->device = ctx.device().index;
  st->stream = static_cast<cudaStream_t>(ctx.stream());
  detail::DeviceGuard guard(st->device);
  // Work enqueued before the capture must not become part of it, and cudaFind-style library
  // calls that synchronise must have happened in eager warm-up steps: start from an idle stream.
  // Idle before reset() too: queued replays of the old graph still use its pool.
  CUDA_CHECK(cudaStreamSynchronize(st->stream));
  reset();
  // The warm-up steps left a step's worth of blocks cached outside the graph's pool, which
  // cannot take them during the capture (nothing is freed then): give them back first, so a step
  // that needs over half the free memory still captures.
  empty_cache(st->device);
  st->pool = begin_graph_pool(st->device, st->stream);
  // Thread-local mode: another thread's unrelated CUDA calls (the loader's copies) stay legal,
  // while a synchronising call on this thread invalidates the capture instead of deadlocking.
  cudaError_t e = cudaStreamBeginCapture(st->stream, cudaStreamCaptureModeThreadLocal);
  if (e != cudaSuccess) {
    end_graph_pool(st->device, st->stream);
    return std::string("cudaStreamBeginCapture failed: ") + cudaGetErrorString(e);
  }
  std::string reason;
  try {
    work();
  } catch (const std::exception& ex) {
    reason = ex.what();
  }
  cudaGraph_t graph = nullptr;
  e = cudaStreamEndCapture(st->stream, &graph);
  end_graph_pool(st->device, st->stream);
  if (reason.empty() && e != cudaSuccess)
    reason = std::string("the capture was invalidated (") + cudaGetErrorName(e) + ": " +
             cudaGetErrorString(e) + "): an operation in the step is not capturable";
  (void)cudaGetLastError();  // an invalidated capture leaves its error pending: consume it
  st->graph = graph;
  if (!reason.empty()) return reason;  // st's destructor frees the partial graph and the pool
  size_t n = 0;
  CUDA_CHECK(cudaGraphGetNodes(graph, nullptr, &n));
  st->nodes = static_cast<int64_t>(n);
  e = cudaGraphInstantiate(&st->exec, graph, 0);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    st->exec = nullptr;
    return std::string("cudaGraphInstantiate failed: ") + cudaGetErrorString(e);
  }
  s_ = std::move(st);
  return "";
}

void Graph::replay() {
  CYCLONE_CHECK(ready(), "gpu::Graph: replay before a successful capture");
  detail::DeviceGuard guard(s_->device);
  CUDA_CHECK(cudaGraphLaunch(s_->exec, s_->stream));
}

}  // namespace cyclone::gpu
