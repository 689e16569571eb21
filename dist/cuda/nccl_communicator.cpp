// NCCL backend: collectives on one GPU per rank (NVLink inside a node, InfiniBand / sockets
// between nodes, as NCCL finds them).
//
// Ordering without host waits: a collective runs on the communicator's own stream, which first
// waits (cudaStreamWaitEvent) for the caller's current stream, so it sees the gradients the
// caller just wrote; Work::wait makes the caller's stream wait for the collective's event.
// Timeouts: the communicator is non-blocking (ncclConfig_t::blocking = 0), so no NCCL call waits
// for the peers on the host; initialisation, every call that answers ncclInProgress, and
// Work::wait's poll of the collective's event all run under the deadline, with
// ncclCommGetAsyncError. Past it (or on an asynchronous NCCL error) the communicator is aborted
// (ncclCommAbort) and Timeout / Error is thrown, so a dead peer never hangs the job, not even
// one that dies between the unique id's broadcast and the communicator's set-up.
#include <cuda_runtime.h>
#include <nccl.h>

#include <cstring>
#include <vector>

#include "cyclone/core/context.h"
#include "cyclone/core/cuda/check.h"
#include "cyclone/core/cuda/event.h"
#include "cyclone/core/cuda/guard.h"
#include "cyclone/core/cuda/stream.h"
#include "cyclone/dist/backends.h"

namespace cyclone::dist::detail {

namespace {

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::kFloat32:
      return ncclFloat32;
    case DType::kFloat64:
      return ncclFloat64;
    case DType::kInt32:
      return ncclInt32;
    case DType::kUInt8:
      return ncclUint8;
    case DType::kBFloat16:
      return ncclBfloat16;
    case DType::kFloat16:
      return ncclFloat16;
  }
  return ncclFloat32;
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
      return ncclSum;
    case ReduceOp::kAvg:
      return ncclAvg;
    case ReduceOp::kMax:
      return ncclMax;
    case ReduceOp::kMin:
      return ncclMin;
  }
  return ncclSum;
}

class NcclCommunicator;

class NcclWork final : public Work {
 public:
  NcclWork(NcclCommunicator& c, Event done, std::string what)
      : c_(c), done_(std::move(done)), what_(std::move(what)) {}
  void wait() override;

 private:
  NcclCommunicator& c_;
  Event done_;
  std::string what_;
};

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(Communicator& bootstrap, int device, double timeout)
      : device_(device), rank_(bootstrap.rank()), size_(bootstrap.size()) {
    timeout_seconds_ = timeout;
    gpu::detail::DeviceGuard guard(device);
    ncclUniqueId id;
    if (rank_ == 0) NCCL_CHECK(ncclGetUniqueId(&id));
    Tensor bytes =
        Tensor::zeros(Shape{static_cast<int64_t>(sizeof id)}, DType::kUInt8, Device::cpu());
    if (rank_ == 0) std::memcpy(bytes.raw_data(), &id, sizeof id);
    bootstrap.broadcast(bytes, 0);
    std::memcpy(&id, bytes.raw_data(), sizeof id);
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    const ncclResult_t r = ncclCommInitRankConfig(&comm_, size_, id, rank_, &config);
    if (r != ncclInProgress) NCCL_CHECK(r);
    settle(r, "initialisation of a world of " + std::to_string(size_));
    stream_ = Stream(device);
  }
  ~NcclCommunicator() override {
    if (!comm_) return;
    gpu::detail::DeviceGuard guard(device_);
    // Teardown must not throw; an aborted communicator was already released. Finalize flushes
    // the communicator's work (non-blocking: poll it, under the deadline), then destroy.
    try {
      settle(ncclCommFinalize(comm_), "finalization");
    } catch (...) {  // settle aborted it
    }
    if (comm_) (void)ncclCommDestroy(comm_);
  }

  std::string backend() const override { return "nccl"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  std::unique_ptr<Work> all_reduce_async(const Tensor& t, ReduceOp op) override {
    check_tensor("all_reduce", t);
    gpu::detail::DeviceGuard guard(device_);
    after_caller();
    std::string what = std::string("all-reduce (") + reduce_op_name(op) + ") of " +
                       std::to_string(t.numel()) + " values";
    settle(ncclAllReduce(t.raw_data(), t.raw_data(), static_cast<size_t>(t.numel()),
                         nccl_type(t.dtype()), nccl_op(op), comm_, stream_.get()),
           what);
    Event done;  // recorded once the collective is on the stream
    done.record(stream_.get());
    return std::make_unique<NcclWork>(*this, std::move(done), std::move(what));
  }

  void broadcast(const Tensor& t, int root) override {
    check_tensor("broadcast", t);
    CYCLONE_CHECK(root >= 0 && root < size_, "NCCL communicator: broadcast root ", root,
                  " is not a rank of a world of ", size_);
    gpu::detail::DeviceGuard guard(device_);
    after_caller();
    const std::string what = "broadcast from rank " + std::to_string(root);
    settle(ncclBroadcast(t.raw_data(), t.raw_data(), static_cast<size_t>(t.numel()),
                         nccl_type(t.dtype()), root, comm_, stream_.get()),
           what);
    Event done;
    done.record(stream_.get());
    NcclWork(*this, std::move(done), what).wait();
  }

  void all_gather(const Tensor& send, const Tensor& recv) override {
    check_tensor("all_gather", send);
    check_tensor("all_gather", recv);
    check_gather_shapes("NCCL", send, recv, size_);
    gpu::detail::DeviceGuard guard(device_);
    after_caller();
    const std::string what =
        "all-gather of " + std::to_string(send.numel()) + " values from each rank";
    settle(ncclAllGather(send.raw_data(), recv.raw_data(), static_cast<size_t>(send.numel()),
                         nccl_type(send.dtype()), comm_, stream_.get()),
           what);
    Event done;
    done.record(stream_.get());
    NcclWork(*this, std::move(done), what).wait();
  }

  void barrier() override {
    // NCCL has no barrier: a one-element all-reduce orders every rank the same way.
    Tensor one = Tensor::zeros(Shape{1}, DType::kFloat32, Device::cuda(device_));
    all_reduce(one, ReduceOp::kSum);
    Context::current(Device::cuda(device_)).synchronize();
  }

  // Polls `done` with the deadline and NCCL's asynchronous errors; aborts the communicator on
  // either, then throws.
  void watch(const Event& done, const std::string& what) {
    guarded(what, [&](ncclResult_t) { return done.query(); });
  }
  int device() const { return device_; }

 private:
  // The end of a non-blocking call that returned `r`: an error throws; ncclInProgress is polled
  // until the communicator is ready again (NCCL allows no other call, and no work on its stream,
  // before that).
  void settle(ncclResult_t r, const std::string& what) {
    if (r == ncclSuccess) return;
    if (r != ncclInProgress) {
      (void)ncclCommAbort(comm_);
      comm_ = nullptr;
      throw Error("NCCL " + what + " on rank " + std::to_string(rank_) +
                  " failed: " + ncclGetErrorString(r));
    }
    guarded(what, [](ncclResult_t async) { return async == ncclSuccess; });
  }
  // wait_with_deadline on `ready(async state)`, an asynchronous error thrown; aborts the
  // communicator on any throw.
  template <class Ready>
  void guarded(const std::string& what, Ready ready) {
    try {
      wait_with_deadline(
          [&] {
            ncclResult_t async = ncclSuccess;
            NCCL_CHECK(ncclCommGetAsyncError(comm_, &async));
            if (async != ncclSuccess && async != ncclInProgress)
              throw Error("NCCL " + what + " on rank " + std::to_string(rank_) + " failed: " +
                          ncclGetErrorString(async) + " (a peer died or the network failed)");
            return ready(async);
          },
          timeout_seconds_, "NCCL", what, rank_);
    } catch (...) {
      (void)ncclCommAbort(comm_);
      comm_ = nullptr;
      throw;
    }
  }
  void check_tensor(const char* op, const Tensor& t) const {
    CYCLONE_CHECK(comm_ != nullptr, "NCCL communicator: used after an aborted collective");
    CYCLONE_CHECK(t.defined() && t.device() == Device::cuda(device_), "NCCL communicator: ", op,
                  " needs a tensor on cuda:", device_);
  }
  // The communicator's stream waits for everything enqueued so far on the caller's stream. A
  // collective inside a CUDA graph capture is refused before anything is enqueued: its wait polls
  // an event recorded in the capture (an error that would abort the communicator), so the caller
  // gets a plain error and its capture can fall back to eager steps.
  void after_caller() {
    auto* caller = static_cast<cudaStream_t>(Context::current(Device::cuda(device_)).stream());
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    CUDA_CHECK(cudaStreamIsCapturing(caller, &capture));
    CYCLONE_CHECK(capture == cudaStreamCaptureStatusNone,
                  "NCCL communicator: a collective on rank ", rank_,
                  " inside a CUDA graph capture is not supported (synchronized batch norm in a "
                  "captured step?): run such steps eagerly");
    Event ready;
    ready.record(caller);
    stream_.wait(ready);
  }

  int device_, rank_, size_;
  ncclComm_t comm_ = nullptr;
  Stream stream_;
};

void NcclWork::wait() {
  c_.watch(done_, what_);
  gpu::detail::DeviceGuard guard(c_.device());
  done_.block(static_cast<cudaStream_t>(Context::current(Device::cuda(c_.device())).stream()));
}

}  // namespace

bool nccl_built() { return true; }

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap, int device,
                                                     double timeout_seconds) {
  return std::make_unique<NcclCommunicator>(bootstrap, device, timeout_seconds);
}

}  // namespace cyclone::dist::detail
