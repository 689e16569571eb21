// gpu::Graph in a build without the CUDA backend: nothing can be captured, so capture() says why
// and callers run their work eagerly (core/cuda/graph.cpp is the real one).
#if !CYCLONE_CUDA
#include <utility>

#include "cyclone/core/cuda/graph.h"

namespace cyclone::gpu {

struct Graph::State {};

Graph::Graph() = default;
Graph::~Graph() = default;
Graph::Graph(Graph&&) noexcept = default;
Graph& Graph::operator=(Graph&&) noexcept = default;

std::string Graph::capture(Context& ctx, const std::function<void()>&) {
  if (!ctx.device().is_cuda()) return kNeedsCudaContext + ctx.device().str();
  return "this build of Cyclone has no CUDA backend";
}
void Graph::replay() { detail::throw_no_cuda(); }
bool Graph::ready() const { return false; }
int64_t Graph::nodes() const { return 0; }
void Graph::reset() {}

}  // namespace cyclone::gpu
#endif
