// World: who this process is in a data-parallel job, and the communicators it talks through.
//
// Launch the standard way, one rank per GPU (or per CPU process):
//   mpirun -np 8 ./bin/train --config run.json          # one node, 8 GPUs
//   mpirun -np 16 -H a:8,b:8 ./bin/train --config run.json
// The world is read from the launcher on first use of world(): under OpenMPI's mpirun
// (OMPI_COMM_WORLD_SIZE in the environment) MPI is initialised and gives rank, size and local
// rank (the rank among the ranks on this node, which picks the GPU: cuda:<local rank>). Started
// any other way the process is a world of one and nothing is initialised. RANK / WORLD_SIZE
// launches without MPI (torchrun's TCP rendezvous) are not supported: such an environment is an
// error that says to use mpirun.
//
// Communicators: host() reduces CPU tensors (MPI; solo in a world of one) and is what metrics
// and the start-up checks use; communicator(cuda:i) is NCCL on that GPU, bootstrapped through
// host() (rank 0's ncclUniqueId broadcast), created on first use — also in a world of one.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cyclone/core/device.h"
#include "cyclone/dist/communicator.h"

namespace cyclone::dist {

// Ranks started with different settings (World::check_same): the user's command, not a fault.
class RanksDiffer : public Error {
 public:
  using Error::Error;
};

class World {
 public:
  ~World();
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  int local_rank() const { return local_rank_; }
  bool is_root() const { return rank_ == 0; }
  // Launched by mpirun, even with -np 1: the data-parallel path runs (gradient buckets, NCCL on
  // a GPU), so a host with one GPU exercises it with a world of one.
  bool distributed() const { return mpi_; }
  std::string launcher() const { return launcher_; }  // "mpirun" or "none"

  Communicator& host() { return *host_; }
  // host() for a CPU device; the NCCL communicator of a CUDA device (created on first use).
  Communicator& communicator(Device device);

  // The device a rank trains on: cuda:<local rank> for "cuda" (or "auto" with a GPU), as given
  // otherwise. An error when a node has more ranks than GPUs.
  Device device_for(Device requested) const;

  // Sums (or max / min / avg) of a few host numbers over the ranks (metrics, decisions).
  void all_reduce(std::vector<double>& values, ReduceOp op);
  double all_reduce(double value, ReduceOp op);

  // Detects ranks started differently: `fingerprint` is a JSON object of what must agree (the
  // configuration, the data's size, the model's parameters). Throws RanksDiffer on every rank when
  // any rank's differs from rank 0's, naming the ranks and the keys that differ.
  void check_same(const std::string& what, const std::string& fingerprint);

  // Ends the whole job now with `code` (MPI_Abort), for an error on one rank that would leave the
  // others waiting in a collective. In a world of one it only returns false.
  bool abort(int code);
  // MPI_Finalize (after the NCCL communicators are destroyed); also done at exit.
  void finalize();

 private:
  World();
  friend World& world();
  int rank_ = 0, size_ = 1, local_rank_ = 0;
  std::string launcher_ = "none";
  bool mpi_ = false, finalized_ = false;
  std::unique_ptr<Communicator> host_;
  std::vector<std::pair<int, std::unique_ptr<Communicator>>> device_comms_;
};

// The process's world, made from the environment on first call (thread-safe). When that fails
// (a bad environment) every later call throws the same Error without starting anything again.
World& world();
// The world if world() has made it, else nullptr: for code that must not start one (an app that
// only printed its --help has nothing to finalize).
World* started_world();

// "rank 1/4: " in a multi-rank job, "" otherwise: the prefix of every line a rank prints.
std::string rank_prefix();

}  // namespace cyclone::dist
