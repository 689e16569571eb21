// The backends behind World (internal to dist/): MPI when Cyclone was built with it
// (dist/mpi/mpi.cpp, or dist/mpi/none.cpp without), NCCL when built with CUDA
// (dist/cuda/nccl_communicator.cpp, or dist/no_cuda/nccl_none.cpp without).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "cyclone/dist/communicator.h"

namespace cyclone::dist::detail {

bool mpi_built();
struct MpiProcess {
  int rank = 0, size = 1, local_rank = 0;
};
// MPI_Init_thread (funneled: only the thread that trains calls MPI) and MPI_COMM_WORLD's shape;
// the local rank is the rank within MPI_COMM_TYPE_SHARED (this node).
MpiProcess mpi_init();
void mpi_finalize();
void mpi_abort(int code);
// Collectives over MPI_COMM_WORLD on CPU tensors.
std::unique_ptr<Communicator> make_mpi_communicator();

bool nccl_built();
// An NCCL communicator over the ranks of `bootstrap` on GPU `device` (rank 0's unique id is
// broadcast through `bootstrap`).
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap, int device,
                                                     double timeout_seconds);

// all_gather's checks, the same in every backend (dtypes, devices and sizes agree, no overlap).
void check_gather_shapes(const char* backend, const Tensor& send, const Tensor& recv, int size);

// Polls `done` (spinning briefly, then sleeping up to 1 ms between polls) until it returns true;
// throws Timeout naming `what`, the backend and this rank after `timeout_seconds`.
void wait_with_deadline(const std::function<bool()>& done, double timeout_seconds,
                        const char* backend, const std::string& what, int rank);

}  // namespace cyclone::dist::detail
