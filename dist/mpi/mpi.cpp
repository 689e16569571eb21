// MPI backend: the CPU communicator and the process bootstrap (OpenMPI from Debian).
#include <mpi.h>

#include <cstring>
#include <string>
#include <vector>

#include "cyclone/dist/backends.h"
#include "cyclone/kernels/elementwise.h"

namespace cyclone::dist::detail {

namespace {

void mpi_check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw Error(std::string("MPI: ") + call + " failed: " + std::string(text, len));
}

MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case DType::kFloat32:
      return MPI_FLOAT;
    case DType::kFloat64:
      return MPI_DOUBLE;
    case DType::kInt32:
      return MPI_INT32_T;
    case DType::kUInt8:
      return MPI_UINT8_T;
    default:
      throw Error(std::string("MPI communicator: dtype ") + dtype_name(t) +
                  " is not supported (float32, float64, int32, uint8)");
  }
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAvg:
      return MPI_SUM;
    case ReduceOp::kMax:
      return MPI_MAX;
    case ReduceOp::kMin:
      return MPI_MIN;
  }
  return MPI_SUM;
}

void check_cpu_tensor(const char* op, const Tensor& t) {
  CYCLONE_CHECK(t.defined() && t.device().is_cpu(), "MPI communicator: ", op,
                " needs a CPU tensor (a GPU's gradients go through NCCL)");
  CYCLONE_CHECK(t.numel() <= INT32_MAX, "MPI communicator: ", op, " of ", t.numel(),
                " elements is over MPI's count limit; split it");
}

std::vector<Tensor>& abandoned() {
  static std::vector<Tensor> buffers;
  return buffers;
}

class MpiWork final : public Work {
 public:
  MpiWork(MPI_Request req, Tensor t, ReduceOp op, int size, int rank, double timeout)
      : req_(req), t_(std::move(t)), op_(op), size_(size), rank_(rank), timeout_(timeout) {}
  ~MpiWork() override {
    // Still in flight: an exception (a timeout, an error elsewhere in the step) is unwinding and
    // the job is about to be aborted. Waiting could hang forever on a dead peer, and MPI may not
    // free a collective's request, so the buffer is kept alive for the rest of the process.
    if (req_ != MPI_REQUEST_NULL) abandoned().push_back(t_);
  }
  void wait() override {
    if (req_ == MPI_REQUEST_NULL) return;
    const std::string what = std::string("all-reduce (") + reduce_op_name(op_) + ") of " +
                             std::to_string(t_.numel()) + " values";
    wait_with_deadline(
        [&] {
          int flag = 0;
          mpi_check(MPI_Test(&req_, &flag, MPI_STATUS_IGNORE), "MPI_Test");
          return flag != 0;
        },
        timeout_, "MPI", what, rank_);
    if (op_ == ReduceOp::kAvg && size_ > 1)
      kernels::unary(Context::of(t_), kernels::UnaryOp::kMulScalar, t_, t_, 1.0 / size_);
  }

 private:
  MPI_Request req_;
  Tensor t_;
  ReduceOp op_;
  int size_, rank_;
  double timeout_;
};

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    mpi_check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
    mpi_check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
  }
  std::string backend() const override { return "mpi"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }

  std::unique_ptr<Work> all_reduce_async(const Tensor& t, ReduceOp op) override {
    check_cpu_tensor("all_reduce", t);
    CYCLONE_CHECK(op != ReduceOp::kAvg || is_floating(t.dtype()),
                  "MPI communicator: an average of integers");
    MPI_Request req = MPI_REQUEST_NULL;
    mpi_check(MPI_Iallreduce(MPI_IN_PLACE, t.raw_data(), static_cast<int>(t.numel()),
                             mpi_type(t.dtype()), mpi_op(op), MPI_COMM_WORLD, &req),
              "MPI_Iallreduce");
    return std::make_unique<MpiWork>(req, t, op, size_, rank_, timeout_seconds_);
  }

  void broadcast(const Tensor& t, int root) override {
    check_cpu_tensor("broadcast", t);
    CYCLONE_CHECK(root >= 0 && root < size_, "MPI communicator: broadcast root ", root,
                  " is not a rank of a world of ", size_);
    MPI_Request req = MPI_REQUEST_NULL;
    mpi_check(MPI_Ibcast(t.raw_data(), static_cast<int>(t.numel()), mpi_type(t.dtype()), root,
                         MPI_COMM_WORLD, &req),
              "MPI_Ibcast");
    finish(req, "broadcast of " + std::to_string(t.numel()) + " values from rank " +
                    std::to_string(root));
  }

  void all_gather(const Tensor& send, const Tensor& recv) override {
    check_cpu_tensor("all_gather", send);
    CYCLONE_CHECK(recv.defined() && recv.device().is_cpu(),
                  "MPI communicator: all_gather needs CPU tensors");
    check_gather_shapes("MPI", send, recv, size_);
    const int count = static_cast<int>(send.numel());
    const MPI_Datatype type = mpi_type(send.dtype());
    MPI_Request req = MPI_REQUEST_NULL;
    mpi_check(MPI_Iallgather(send.raw_data(), count, type, recv.raw_data(), count, type,
                             MPI_COMM_WORLD, &req),
              "MPI_Iallgather");
    finish(req, "all-gather of " + std::to_string(count) + " values from each rank");
  }

  void barrier() override {
    MPI_Request req = MPI_REQUEST_NULL;
    mpi_check(MPI_Ibarrier(MPI_COMM_WORLD, &req), "MPI_Ibarrier");
    finish(req, "barrier");
  }

 private:
  void finish(MPI_Request& req, const std::string& what) {
    wait_with_deadline(
        [&] {
          int flag = 0;
          mpi_check(MPI_Test(&req, &flag, MPI_STATUS_IGNORE), "MPI_Test");
          return flag != 0;
        },
        timeout_seconds_, "MPI", what, rank_);
  }
  int rank_ = 0, size_ = 1;
};

}  // namespace

bool mpi_built() { return true; }

MpiProcess mpi_init() {
  int initialized = 0;
  mpi_check(MPI_Initialized(&initialized), "MPI_Initialized");
  if (!initialized) {
    int provided = 0;
    mpi_check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  }
  // Errors come back as codes (mpi_check turns them into cyclone::Error), not as MPI's abort.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MpiProcess p;
  mpi_check(MPI_Comm_rank(MPI_COMM_WORLD, &p.rank), "MPI_Comm_rank");
  mpi_check(MPI_Comm_size(MPI_COMM_WORLD, &p.size), "MPI_Comm_size");
  MPI_Comm node;
  mpi_check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, p.rank, MPI_INFO_NULL, &node),
            "MPI_Comm_split_type");
  mpi_check(MPI_Comm_rank(node, &p.local_rank), "MPI_Comm_rank");
  MPI_Comm_free(&node);
  return p;
}

void mpi_finalize() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Finalize();
}

void mpi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }

std::unique_ptr<Communicator> make_mpi_communicator() {
  return std::make_unique<MpiCommunicator>();
}

}  // namespace cyclone::dist::detail
