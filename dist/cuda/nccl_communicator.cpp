// NCCL backend: collectives on one GPU per rank (NVLink inside a node, InfiniBand / sockets
// between nodes, as NCCL finds them).
//
// Ordering without host waits: a collective runs on the communicator's own stream, which first
// waits (cudaStreamWaitEvent) for the caller's current stream, so it sees the gradients the
// caller just wrote; Work::wait makes the caller's stream wait for the collective's event.
// Timeouts: Work::wait also polls that event on the host with the deadline, and
// ncclCommGetAsyncError; past it (or on an asynchronous NCCL error) the communicator is aborted
// (ncclCommAbort) and Timeout / Error is thrown, so a dead peer never hangs the job.
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
    NCCL_CHECK(ncclCommInitRank(&comm_, size_, id, rank_));
    stream_ = Stream(device);
  }
  ~NcclCommunicator() override {
    if (!comm_) return;
    gpu::detail::DeviceGuard guard(device_);
    // Teardown must not throw; an aborted communicator was already released.
    (void)ncclCommDestroy(comm_);
  }

  std::string backend() const override { return "nccl"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  std::unique_ptr<Work> all_reduce_async(const Tensor& t, ReduceOp op) override {
    check_tensor("all_reduce", t);
    gpu::detail::DeviceGuard guard(device_);
    after_caller();
    NCCL_CHECK(ncclAllReduce(t.raw_data(), t.raw_data(), static_cast<size_t>(t.numel()),
                             nccl_type(t.dtype()), nccl_op(op), comm_, stream_.get()));
    Event done;
    done.record(stream_.get());
    return std::make_unique<NcclWork>(*this, std::move(done),
                                      std::string("all-reduce (") + reduce_op_name(op) + ") of " +
                                          std::to_string(t.numel()) + " values");
  }

  void broadcast(const Tensor& t, int root) override {
    check_tensor("broadcast", t);
    CYCLONE_CHECK(root >= 0 && root < size_, "NCCL communicator: broadcast root ", root,
                  " is not a rank of a world of ", size_);
    gpu::detail::DeviceGuard guard(device_);
    after_caller();
    NCCL_CHECK(ncclBroadcast(t.raw_data(), t.raw_data(), static_cast<size_t>(t.numel()),
                             nccl_type(t.dtype()), root, comm_, stream_.get()));
    Event done;
    done.record(stream_.get());
    NcclWork(*this, std::move(done), "broadcast from rank " + std::to_string(root)).wait();
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
    try {
      wait_with_deadline(
          [&] {
            ncclResult_t async = ncclSuccess;
            NCCL_CHECK(ncclCommGetAsyncError(comm_, &async));
            if (async != ncclSuccess && async != ncclInProgress)
              throw Error("NCCL " + what + " on rank " + std::to_string(rank_) + " failed: " +
                          ncclGetErrorString(async) + " (a peer died or the network failed)");
            return done.query();
          },
          timeout_seconds_, "NCCL", what, rank_);
    } catch (...) {
      (void)ncclCommAbort(comm_);
      comm_ = nullptr;
      throw;
    }
  }
  int device() const { return device_; }

 private:
  void check_tensor(const char* op, const Tensor& t) const {
    CYCLONE_CHECK(comm_ != nullptr, "NCCL communicator: used after an aborted collective");
    CYCLONE_CHECK(t.defined() && t.device() == Device::cuda(device_), "NCCL communicator: ", op,
                  " needs a tensor on cuda:", device_);
  }
  // The communicator's stream waits for everything enqueued so far on the caller's stream.
  void after_caller() {
    auto* caller = static_cast<cudaStream_t>(Context::current(Device::cuda(device_)).stream());
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
