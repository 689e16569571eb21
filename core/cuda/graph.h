// A CUDA graph of the work one function enqueues on a context's stream: captured once, replayed
// many times (cudaStreamBeginCapture / cudaGraphInstantiate / cudaGraphLaunch).
//
// Memory: allocations made during the capture come from a private pool of the caching allocator
// (gpu::begin_graph_pool), and the blocks freed during it stay in that pool while the graph lives,
// so a replay writes only memory the graph owns or memory that was allocated before the capture
// and outlives the graph (parameters, gradients, optimizer state, the step's input buffers).
//
// capture() never throws for a capture the CUDA runtime refuses (an operation that is illegal
// while capturing, a synchronising call, a cross-stream dependency it cannot follow): it returns
// the runtime's reason, the stream is left out of capture mode and the caller falls back to eager
// launches. Errors of the function itself (a Cyclone Error thrown inside) also end the capture
// cleanly and come back as the reason.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "cyclone/core/context.h"
#include "cyclone/core/cuda_decl.h"

namespace cyclone::gpu {

// capture()'s reason for a context that is not a CUDA one (both builds), before the device name.
inline constexpr const char* kNeedsCudaContext = "gpu::Graph: capture needs a CUDA context, not ";

class Graph {
 public:
  Graph();
  ~Graph();
  Graph(Graph&&) noexcept;
  Graph& operator=(Graph&&) noexcept;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  // Captures what `work` enqueues on ctx's stream. Returns "" on success, else why the capture
  // failed (the graph stays empty; a CPU context is such a reason, in every build). Replaces a
  // previous capture.
  std::string capture(Context& ctx, const std::function<void()>& work);
  // Enqueues one replay on the stream it was captured on.
  void replay();
  bool ready() const;
  // Nodes in the captured graph, of every kind (kernels, memsets, copies; cudaGraphGetNodes), 0
  // when empty: what one replay launches.
  int64_t nodes() const;
  // Drops the graph and returns its pool's memory to the allocator.
  void reset();

 private:
  struct State;  // cudaGraph_t, cudaGraphExec_t, stream, device, pool (core/cuda/graph.cpp)
  std::unique_ptr<State> s_;
};

}  // namespace cyclone::gpu
