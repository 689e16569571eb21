#include "cyclone/train/distributed.h"

#include <memory>

#include "cyclone/dist/grad_reducer.h"
#include "cyclone/dist/world.h"
#include "cyclone/layers/conv_modules.h"

namespace cyclone::train {

void sync_from_root(Module& model, bool buffers_only) {
  dist::World& w = dist::world();
  if (!w.distributed()) return;
  auto broadcast = [&](const NamedTensors& ts) {
    for (const auto& [name, t] : ts)
      if (t.defined()) w.communicator(t.device()).broadcast(t, 0);
  };
  if (!buffers_only) broadcast(model.named_parameters());
  broadcast(model.named_buffers());
}

dist::GradReducer* grad_reducer_for(const optim::Optimizer& optimizer) {
  dist::World& w = dist::world();
  if (!w.distributed()) return nullptr;
  // One reducer at a time: a run trains one optimizer's parameters at a time (phases make a new
  // optimizer, and the reducer follows).
  static std::unique_ptr<dist::GradReducer> cached;
  if (!cached || !cached->serves(optimizer.params())) {
    cached.reset();
    std::vector<Tensor> params;
    params.reserve(optimizer.params().size());
    for (const auto& [name, t] : optimizer.params()) params.push_back(t);
    if (params.empty()) return nullptr;
    cached = std::make_unique<dist::GradReducer>(w.communicator(params.front().device()), params);
  }
  return cached.get();
}

int synchronize_batch_norm(Module& model) {
  if (!dist::world().distributed()) return 0;
  int n = 0;
  for (auto& [name, m] : model.named_modules())
    if (auto* bn = dynamic_cast<BatchNorm2d*>(m)) {
      bn->set_replica_sum(
          [](std::vector<double>& v) { dist::world().all_reduce(v, dist::ReduceOp::kSum); });
      ++n;
    }
  return n;
}

bool writes_files() { return dist::world().is_root(); }

void all_reduce_sum(std::vector<double>& values) {
  dist::world().all_reduce(values, dist::ReduceOp::kSum);
}

}  // namespace cyclone::train
