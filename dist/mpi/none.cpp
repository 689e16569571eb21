// Built without MPI (libopenmpi-dev was not found at configure time): a world of one only.
#include "cyclone/dist/backends.h"

namespace cyclone::dist::detail {

namespace {
[[noreturn]] void no_mpi() {
  throw Error(
      "this Cyclone was built without MPI, so it cannot join a job of several ranks: install "
      "libopenmpi-dev (scripts/install_deps.sh) and rebuild");
}
}  // namespace

bool mpi_built() { return false; }
MpiProcess mpi_init() { no_mpi(); }
void mpi_finalize() {}
void mpi_abort(int) {}
std::unique_ptr<Communicator> make_mpi_communicator() { no_mpi(); }

}  // namespace cyclone::dist::detail
