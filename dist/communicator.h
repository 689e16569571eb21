// Communicator: the collectives data-parallel training needs, over the ranks of one job.
//
//   dist::World& w = dist::world();                  // rank, size, local rank (dist/world.h)
//   dist::Communicator& c = w.communicator(device);  // MPI for CPU tensors, NCCL for a GPU's
//   c.all_reduce(grads, dist::ReduceOp::kAvg);
//
// Implementations: solo (a world of one: every collective is the identity), MPI (CPU tensors;
// OpenMPI launches the ranks and is also the bootstrap of NCCL) and NCCL (tensors on the rank's
// GPU, on a stream of its own that waits for the caller's stream; Work::wait watches it from the
// host with the deadline, then orders the caller's stream after it).
//
// Every rank must call the same collectives in the same order with the same shapes: that is the
// contract of MPI and NCCL, and the callers (dist/grad_reducer.h, the trainer) keep it by making
// every decision from values that are identical on all ranks.
//
// Timeouts. A rank that died or hangs would leave the others waiting forever inside a collective.
// Every wait polls with a deadline (`timeout_seconds`, CYCLONE_DIST_TIMEOUT, default 600 s) and
// throws dist::Timeout naming the operation and this rank; the app then aborts the whole job
// (World::abort), so a job never hangs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cyclone/core/error.h"
#include "cyclone/core/tensor.h"

namespace cyclone::dist {

enum class ReduceOp { kSum, kAvg, kMax, kMin };
const char* reduce_op_name(ReduceOp op);

// A collective that did not complete within the timeout.
class Timeout : public Error {
 public:
  using Error::Error;
};

// An operation in flight. wait() returns when its result may be used by the caller: on the CPU
// when the data is there, on a GPU when the caller's current stream is ordered after it.
class Work {
 public:
  virtual ~Work() = default;
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual std::string backend() const = 0;  // "solo", "mpi", "nccl"
  virtual int rank() const = 0;
  virtual int size() const = 0;

  // In place on every rank: t becomes op over the ranks' t. float32 / float64 / int32 tensors,
  // contiguous, on the device this communicator serves. kAvg divides the sum by size().
  virtual std::unique_ptr<Work> all_reduce_async(const Tensor& t, ReduceOp op) = 0;
  void all_reduce(const Tensor& t, ReduceOp op) { all_reduce_async(t, op)->wait(); }
  // t on every rank becomes root's t (any dtype).
  virtual void broadcast(const Tensor& t, int root) = 0;
  // recv on every rank becomes the ranks' send tensors one after the other (rank 0's first):
  // recv holds size() x send.numel() elements of send's dtype, contiguous, on the same device;
  // send may be any shape (recv's shape is the caller's). Not in place: they must not overlap.
  virtual void all_gather(const Tensor& send, const Tensor& recv) = 0;
  // Returns when every rank called it (or throws Timeout).
  virtual void barrier() = 0;

  double timeout_seconds() const { return timeout_seconds_; }
  void set_timeout_seconds(double s) { timeout_seconds_ = s; }

 protected:
  double timeout_seconds_ = 600;
};

// The identity communicator of a world of one (any device).
class SoloCommunicator final : public Communicator {
 public:
  std::string backend() const override { return "solo"; }
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::unique_ptr<Work> all_reduce_async(const Tensor& t, ReduceOp op) override;
  void broadcast(const Tensor& t, int root) override;
  void all_gather(const Tensor& send, const Tensor& recv) override;
  void barrier() override {}
};

}  // namespace cyclone::dist
