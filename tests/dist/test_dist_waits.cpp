// Waits of unbounded length in a job (train/distributed.h): rank 0 fetching a dataset must not
// run into the step deadline (CYCLONE_DIST_TIMEOUT) of the ranks waiting for it. Written for any
// world size, like the other dist tests.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "cyclone/dist/world.h"
#include "cyclone/train/distributed.h"

namespace cyclone::train {
namespace {

TEST(DistWaits, ABarrierWithoutDeadlineOutwaitsTheStepTimeout) {
  dist::World& w = dist::world();
  dist::Communicator& host = w.host();
  const double limit = host.timeout_seconds();
  host.set_timeout_seconds(0.3);
  const char* note = "waiting for rank 0 (a test)";
  if (w.rank() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ::testing::internal::CaptureStdout();
  EXPECT_NO_THROW(barrier_without_deadline(note, 0.2));
  const std::string out = ::testing::internal::GetCapturedStdout();
  // The ranks that waited said once what for; rank 0 (or a world of one) did not wait.
  EXPECT_EQ(out, w.rank() == 0 ? std::string() : std::string(note) + "\n");
  EXPECT_DOUBLE_EQ(host.timeout_seconds(), 0.3);  // the step deadline is back
  host.set_timeout_seconds(limit);
}

}  // namespace
}  // namespace cyclone::train
