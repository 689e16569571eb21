// The dist tests' main: gtest, then the world's orderly end (MPI_Finalize under mpirun; a process
// that exits without it is reported by mpirun as a failure).
#include <gtest/gtest.h>

#include "cyclone/dist/world.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  // Every rank prints its results (a failure on rank 1 must be readable); mpirun fails the job
  // when any rank returns non-zero.
  cyclone::dist::World& w = cyclone::dist::world();
  const int rc = RUN_ALL_TESTS();
  w.finalize();
  return rc;
}
