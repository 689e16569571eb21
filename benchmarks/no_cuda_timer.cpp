// Built instead of cuda/event_timer.cpp when Cyclone has no CUDA backend (the choice is made in
// CMake, so no source needs an #ifdef). A CUDA case skips before it asks for a timer, so reaching
// this is a bug in the suite.
#include "bench_util.h"
#include "cyclone/core/error.h"

namespace cyclone::bench {

std::unique_ptr<Timer> make_cuda_timer(Context&) {
  CYCLONE_THROW("cyclone_bench was built without the CUDA backend: no CUDA timer");
}

}  // namespace cyclone::bench
