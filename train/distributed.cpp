#include "cyclone/train/distributed.h"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <limits>
#include <memory>
#include <mutex>
#include <thread>

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
      // On the tensor's device: NCCL for a GPU's, MPI for the CPU's (no copy to the host). The
      // all-reduce is waited for on the host, under the deadline (see layers/norm_ops.h).
      bn->set_replica_sum([](const Tensor& t) {
        dist::world().communicator(t.device()).all_reduce(t, dist::ReduceOp::kSum);
      });
      ++n;
    }
  return n;
}

void barrier_without_deadline(const std::string& note, double note_after_seconds) {
  dist::World& w = dist::world();
  if (!w.distributed()) return;
  dist::Communicator& host = w.host();
  const std::string line = note + "\n";
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  // Restores the step deadline and stops the note's thread, also when the barrier throws.
  struct Guard {
    dist::Communicator& host;
    double limit;
    std::mutex& mu;
    std::condition_variable& cv;
    bool& done;
    std::thread say;
    ~Guard() {
      host.set_timeout_seconds(limit);
      {
        std::lock_guard lk(mu);
        done = true;
      }
      cv.notify_all();
      if (say.joinable()) say.join();
    }
  } guard{host, host.timeout_seconds(), mu, cv, done, {}};
  guard.say = std::thread([&] {
    std::unique_lock lk(mu);
    if (!cv.wait_for(lk, std::chrono::duration<double>(note_after_seconds), [&] { return done; }) &&
        !note.empty()) {
      std::fputs(line.c_str(), stdout);
      std::fflush(stdout);
    }
  });
  host.set_timeout_seconds(std::numeric_limits<double>::infinity());
  host.barrier();
}

bool writes_files() { return dist::world().is_root(); }

int num_ranks() { return dist::world().size(); }

void all_reduce_sum(std::vector<double>& values) {
  dist::world().all_reduce(values, dist::ReduceOp::kSum);
}

}  // namespace cyclone::train
