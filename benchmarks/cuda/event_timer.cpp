// The CUDA timer: a pair of timing events recorded on the context's stream, so the time is that of
// the device work between them, not of the host's launches or of a synchronisation.
#include "bench_util.h"
#include "cyclone/core/cuda/event.h"

namespace cyclone::bench {

namespace {
class EventTimer final : public Timer {
 public:
  explicit EventTimer(Context& ctx)
      : stream_(static_cast<cudaStream_t>(ctx.stream())), start_(true), stop_(true) {}
  void start() override { start_.record(stream_); }
  double stop() override {
    stop_.record(stream_);
    stop_.synchronize();
    return static_cast<double>(stop_.elapsed_ms(start_)) * 1e-3;
  }

 private:
  cudaStream_t stream_;
  Event start_;
  Event stop_;
};
}  // namespace

std::unique_ptr<Timer> make_cuda_timer(Context& ctx) { return std::make_unique<EventTimer>(ctx); }

}  // namespace cyclone::bench
