#include "cyclone/dist/communicator.h"

#include <chrono>
#include <cstdio>
#include <thread>

#include "cyclone/dist/backends.h"

namespace cyclone::dist {

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return "sum";
    case ReduceOp::kAvg:
      return "avg";
    case ReduceOp::kMax:
      return "max";
    case ReduceOp::kMin:
      return "min";
  }
  return "?";
}

namespace {
class DoneWork final : public Work {
 public:
  void wait() override {}
};
}  // namespace

std::unique_ptr<Work> SoloCommunicator::all_reduce_async(const Tensor& t, ReduceOp) {
  CYCLONE_CHECK(t.defined(), "all_reduce of an undefined tensor");
  return std::make_unique<DoneWork>();
}

void SoloCommunicator::broadcast(const Tensor& t, int root) {
  CYCLONE_CHECK(t.defined(), "broadcast of an undefined tensor");
  CYCLONE_CHECK(root == 0, "broadcast root ", root, " is not a rank of a world of 1");
}

void SoloCommunicator::all_gather(const Tensor& send, const Tensor& recv) {
  detail::check_gather_shapes("solo", send, recv, 1);
  recv.reshape(send.shape()).copy_from(send);
}

namespace detail {

void check_gather_shapes(const char* backend, const Tensor& send, const Tensor& recv, int size) {
  CYCLONE_CHECK(send.defined() && recv.defined(), backend,
                " communicator: all_gather of an undefined tensor");
  CYCLONE_CHECK(send.dtype() == recv.dtype() && send.device() == recv.device(), backend,
                " communicator: all_gather from ", dtype_name(send.dtype()), " on ",
                send.device().str(), " into ", dtype_name(recv.dtype()), " on ",
                recv.device().str(), " (same dtype and device needed)");
  CYCLONE_CHECK(recv.numel() == send.numel() * size, backend, " communicator: all_gather of ",
                send.numel(), " values from each of ", size, " ranks into a tensor of ",
                recv.numel(), " (", send.numel() * size, " needed)");
  const auto* s = static_cast<const char*>(send.raw_data());
  const auto* r = static_cast<const char*>(recv.raw_data());
  CYCLONE_CHECK(send.numel() == 0 || s + send.nbytes() <= r || r + recv.nbytes() <= s, backend,
                " communicator: all_gather's send and recv tensors overlap");
}

void wait_with_deadline(const std::function<bool()>& done, double timeout_seconds,
                        const char* backend, const std::string& what, int rank) {
  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  // Collectives usually finish within microseconds of the last rank arriving: spin first, then
  // back off to short sleeps so a rank waiting for a slow one does not burn a core.
  for (int spins = 0;; ++spins) {
    if (done()) return;
    if (spins < 1000) continue;
    const double waited = std::chrono::duration<double>(Clock::now() - t0).count();
    if (waited > timeout_seconds) {
      char limit[32];
      std::snprintf(limit, sizeof limit, "%g", timeout_seconds);
      throw Timeout(std::string(backend) + " " + what + " did not complete within " + limit +
                    " s on rank " + std::to_string(rank) +
                    ": another rank died or stopped answering (its own output says why); "
                    "stopping the job (CYCLONE_DIST_TIMEOUT sets the limit in seconds)");
    }
    std::this_thread::sleep_for(std::chrono::microseconds(spins < 5000 ? 20 : 1000));
  }
}

}  // namespace detail
}  // namespace cyclone::dist
