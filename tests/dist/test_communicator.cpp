// The communicators, in whatever world the executable was started in: alone (ctest's cpu label:
// the solo communicator) or under `mpirun -np 2` (ctest dist.mpi_np2: the MPI communicator).
// Every expectation is written for any world size.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "cyclone/dist/world.h"
#include "cyclone/kernels/elementwise.h"

namespace cyclone::dist {
namespace {

Tensor filled(int64_t n, double base, DType dtype = DType::kFloat32) {
  std::vector<double> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = base + i;
  Tensor t = Tensor::from_vector(v, Shape{n}, Device::cpu());
  if (dtype == DType::kFloat64) return t;
  Tensor out = Tensor::empty(Shape{n}, dtype, Device::cpu());
  for (int64_t i = 0; i < n; ++i) {
    if (dtype == DType::kFloat32) out.data<float>()[i] = static_cast<float>(v[i]);
    if (dtype == DType::kInt32) out.data<int32_t>()[i] = static_cast<int32_t>(v[i]);
  }
  return out;
}

double at(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::kFloat32:
      return t.data<float>()[i];
    case DType::kFloat64:
      return t.data<double>()[i];
    default:
      return t.data<int32_t>()[i];
  }
}

TEST(Communicator, WorldMatchesTheLauncher) {
  World& w = world();
  Communicator& c = w.host();
  EXPECT_EQ(c.rank(), w.rank());
  EXPECT_EQ(c.size(), w.size());
  EXPECT_GE(w.rank(), 0);
  EXPECT_LT(w.rank(), w.size());
  EXPECT_LE(w.local_rank(), w.rank());
  EXPECT_EQ(c.backend(), w.distributed() ? "mpi" : "solo");
  EXPECT_EQ(&w.communicator(Device::cpu()), &c);
}

// Rank r contributes base + r at each element: over n ranks, sum, mean, max and min have closed
// forms.
double reduced(ReduceOp op, double base, int n) {
  const double ranks_sum = n * (n - 1) / 2.0;
  switch (op) {
    case ReduceOp::kSum:
      return n * base + ranks_sum;
    case ReduceOp::kAvg:
      return base + ranks_sum / n;
    case ReduceOp::kMax:
      return base + (n - 1);
    case ReduceOp::kMin:
      return base;
  }
  return 0;
}

TEST(Communicator, AllReduceEveryOpAndDtype) {
  World& w = world();
  const int n = w.size(), r = w.rank();
  for (DType dt : {DType::kFloat32, DType::kFloat64, DType::kInt32}) {
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax, ReduceOp::kMin}) {
      if (op == ReduceOp::kAvg && dt == DType::kInt32) continue;
      for (int64_t len : {1, 31, 1025}) {
        Tensor t = filled(len, 10.0 + r, dt);
        w.host().all_reduce(t, op);
        for (int64_t i : {int64_t{0}, len / 2, len - 1}) {
          const double base = 10.0 + i;
          const double want = reduced(op, base, n);
          EXPECT_NEAR(at(t, i), want, 1e-5 * std::abs(want))
              << dtype_name(dt) << " " << reduce_op_name(op) << " n=" << len << " i=" << i;
        }
      }
    }
  }
}

TEST(Communicator, SeveralAllReducesInFlightCompleteInOrder) {
  World& w = world();
  std::vector<Tensor> ts;
  std::vector<std::unique_ptr<Work>> works;
  for (int k = 0; k < 6; ++k) {
    ts.push_back(filled(100 + k, k + w.rank(), DType::kFloat32));
    works.push_back(w.host().all_reduce_async(ts.back(), ReduceOp::kAvg));
  }
  for (int k = 5; k >= 0; --k) works[k]->wait();  // waiting in any order is allowed
  const double mean_rank = (w.size() - 1) / 2.0;
  for (int k = 0; k < 6; ++k) EXPECT_NEAR(at(ts[k], 3), k + 3 + mean_rank, 1e-5);
}

TEST(Communicator, BroadcastFromEveryRoot) {
  World& w = world();
  for (int root = 0; root < w.size(); ++root) {
    Tensor t = filled(17, 100.0 * (w.rank() + 1), DType::kFloat32);
    Tensor bytes = Tensor::zeros(Shape{5}, DType::kUInt8, Device::cpu());
    bytes.data<uint8_t>()[2] = static_cast<uint8_t>(w.rank() + 1);
    w.host().broadcast(t, root);
    w.host().broadcast(bytes, root);
    EXPECT_FLOAT_EQ(at(t, 0), 100.0 * (root + 1));
    EXPECT_FLOAT_EQ(at(t, 16), 100.0 * (root + 1) + 16);
    EXPECT_EQ(bytes.data<uint8_t>()[2], root + 1);
  }
  Tensor t = filled(3, 0);
  EXPECT_THROW(w.host().broadcast(t, w.size()), Error);
  EXPECT_THROW(w.host().broadcast(t, -1), Error);
}

// Rank r sends len values base(r) + i; recv holds rank 0's, then rank 1's, ... on every rank.
TEST(Communicator, AllGatherPutsEveryRanksTensorInRankOrder) {
  World& w = world();
  const int n = w.size();
  for (DType dt : {DType::kFloat32, DType::kFloat64, DType::kInt32}) {
    for (int64_t len : {0, 1, 31, 1025}) {
      const Tensor send = filled(len, 1000.0 * (w.rank() + 1), dt);
      const Tensor recv = Tensor::zeros(Shape{n, len}, dt, Device::cpu());
      w.host().all_gather(send, recv);
      for (int k = 0; k < n; ++k)
        for (int64_t i : {int64_t{0}, len / 2, len - 1}) {
          if (len == 0) continue;
          EXPECT_EQ(at(recv, k * len + i), 1000.0 * (k + 1) + i)
              << dtype_name(dt) << " n=" << len << " from rank " << k << " i=" << i;
        }
    }
  }
  // Bytes, and a recv of another shape with the right number of elements.
  Tensor bytes = Tensor::zeros(Shape{3}, DType::kUInt8, Device::cpu());
  bytes.data<uint8_t>()[1] = static_cast<uint8_t>(w.rank() + 7);
  const Tensor all = Tensor::zeros(Shape{n, 1, 3}, DType::kUInt8, Device::cpu());
  w.host().all_gather(bytes, all);
  for (int k = 0; k < n; ++k) {
    EXPECT_EQ(all.data<uint8_t>()[3 * k + 1], k + 7);
    EXPECT_EQ(all.data<uint8_t>()[3 * k], 0);
  }
}

// Every rank makes the same mistake, so every rank throws before any collective starts.
TEST(Communicator, AllGatherOfMismatchedTensorsIsAnError) {
  World& w = world();
  const int n = w.size();
  const Tensor send = filled(4, 1);
  auto message = [&](const Tensor& s, const Tensor& r) {
    try {
      w.host().all_gather(s, r);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(send, Tensor::zeros(Shape{n * 4 + 1}, DType::kFloat32, Device::cpu()))
                .find("into a tensor of " + std::to_string(n * 4 + 1)),
            std::string::npos);
  EXPECT_NE(message(send, Tensor::zeros(Shape{n * 4}, DType::kFloat64, Device::cpu()))
                .find("same dtype and device"),
            std::string::npos);
  const Tensor big = Tensor::zeros(Shape{n * 4 + 4}, DType::kFloat32, Device::cpu());
  EXPECT_EQ(message(big.slice(0, 4), big.slice(4, 4 + n * 4)), "no error");  // adjacent is fine
  EXPECT_NE(message(big.slice(0, 4), big.slice(2, 2 + n * 4)).find("overlap"), std::string::npos);
  w.host().barrier();  // every rank is still in step
}

TEST(Communicator, BarrierWaitsForTheSlowestRank) {
  World& w = world();
  // The last rank arrives 200 ms late; nobody leaves the barrier before it arrived.
  w.host().barrier();  // line the ranks up first
  const auto t0 = std::chrono::steady_clock::now();
  if (w.rank() == w.size() - 1) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  w.host().barrier();
  const double waited =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_GE(waited, 0.15);
}

TEST(Communicator, HostHelpersSumAndCheckTheConfiguration) {
  World& w = world();
  std::vector<double> v = {1.0, double(w.rank())};
  w.all_reduce(v, ReduceOp::kSum);
  EXPECT_DOUBLE_EQ(v[0], w.size());
  EXPECT_DOUBLE_EQ(v[1], w.size() * (w.size() - 1) / 2.0);
  EXPECT_DOUBLE_EQ(w.all_reduce(2.0 + w.rank(), ReduceOp::kMax), 1.0 + w.size());

  EXPECT_NO_THROW(w.check_same("configuration", R"({"batch_size": 32, "seed": 0})"));
  if (w.distributed()) {
    // Rank 1 was started with another batch size: every rank learns it, and where.
    const std::string mine =
        w.rank() == 1 ? R"({"batch_size": 33, "seed": 0})" : R"({"batch_size": 32, "seed": 0})";
    try {
      w.check_same("configuration", mine);
      ADD_FAILURE() << "a differing configuration was not detected";
    } catch (const RanksDiffer& e) {  // its own type: the apps report it as a usage error
      const std::string m = e.message();
      EXPECT_NE(m.find("rank(s) 1 differs from rank 0's"), std::string::npos) << m;
      if (w.rank() == 1) {
        EXPECT_NE(m.find("batch_size (rank 0: 32, here: 33)"), std::string::npos) << m;
      }
    }
  }
}

TEST(Communicator, BadTensorsAreErrors) {
  World& w = world();
  EXPECT_THROW(w.host().all_reduce(Tensor(), ReduceOp::kSum), Error);
  if (w.distributed()) {
    Tensor ints = filled(4, 1, DType::kInt32);
    EXPECT_THROW(w.host().all_reduce(ints, ReduceOp::kAvg), Error);
  }
}

TEST(Communicator, SoloIsTheIdentity) {
  SoloCommunicator c;
  Tensor t = filled(5, 3);
  c.all_reduce(t, ReduceOp::kAvg);
  c.broadcast(t, 0);
  c.barrier();
  EXPECT_FLOAT_EQ(at(t, 4), 7.0);
  EXPECT_THROW(c.broadcast(t, 1), Error);
}

// ---- on GPUs: the NCCL communicator (scripts/gpu_run.sh runs this under mpirun, a rank per GPU)

// This rank's GPU, or a skip: no usable GPU, or fewer GPUs on the node than ranks on it.
#define CYCLONE_SKIP_WITHOUT_A_GPU_PER_RANK()                                              \
  do {                                                                                     \
    if (!cuda_available()) GTEST_SKIP() << "no usable CUDA device on this machine";        \
    if (world().local_rank() >= cuda_device_count())                                       \
      GTEST_SKIP() << "rank " << world().rank() << " has no GPU of its own on this node (" \
                   << cuda_device_count() << " GPU(s))";                                   \
  } while (0)

// Rank r contributes base + r at each element (reduced()), as on the host, in the
// dtypes the GPU gradients come in (bfloat16 too: its sums of small integers are exact).
TEST(CommunicatorCuda, AllReduceEveryOpAndDtypeOverNccl) {
  CYCLONE_SKIP_WITHOUT_A_GPU_PER_RANK();
  World& w = world();
  const Device dev = w.device_for(Device::cuda());
  Communicator& c = w.communicator(dev);
  EXPECT_EQ(c.backend(), "nccl");  // a world of one too: NCCL with one rank
  EXPECT_EQ(c.size(), w.size());
  EXPECT_EQ(c.rank(), w.rank());
  const int n = w.size(), r = w.rank();
  for (DType dt : {DType::kFloat32, DType::kFloat64, DType::kBFloat16}) {
    for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax, ReduceOp::kMin}) {
      for (int64_t len : {1, 31, 1025}) {
        const Tensor t = filled(len, 10.0 + r, DType::kFloat64).to(dev);
        const Tensor typed = Tensor::empty(Shape{len}, dt, dev);
        kernels::cast(Context::of(typed), t, typed);
        c.all_reduce(typed, op);
        const Tensor wide = Tensor::empty(Shape{len}, DType::kFloat64, dev);
        kernels::cast(Context::of(wide), typed, wide);
        const std::vector<double> got = wide.to_vector<double>();
        for (int64_t i : {int64_t{0}, len / 2, len - 1}) {
          const double base = 10.0 + i;
          const double want = reduced(op, base, n);
          const double tol = dt == DType::kBFloat16 ? 1e-2 * std::abs(want) : 1e-5 * std::abs(want);
          EXPECT_NEAR(got[static_cast<size_t>(i)], want, tol)
              << dtype_name(dt) << " " << reduce_op_name(op) << " n=" << len << " i=" << i;
        }
      }
    }
  }
}

TEST(CommunicatorCuda, BroadcastGivesEveryRankTheRootsTensor) {
  CYCLONE_SKIP_WITHOUT_A_GPU_PER_RANK();
  World& w = world();
  const Device dev = w.device_for(Device::cuda());
  Communicator& c = w.communicator(dev);
  const Tensor t = filled(300, 100.0 * w.rank(), DType::kFloat32).to(dev);
  c.broadcast(t, 0);
  const std::vector<float> got = t.to_vector<float>();
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], static_cast<float>(i)) << i;
  c.barrier();
}

// The NCCL all-gather, in the dtypes precomputed features and weights come in.
TEST(CommunicatorCuda, AllGatherPutsEveryRanksTensorInRankOrderOverNccl) {
  CYCLONE_SKIP_WITHOUT_A_GPU_PER_RANK();
  World& w = world();
  const Device dev = w.device_for(Device::cuda());
  Communicator& c = w.communicator(dev);
  const int n = w.size();
  for (DType dt : {DType::kFloat32, DType::kBFloat16}) {
    const int64_t len = 513;
    const Tensor wide = filled(len, 16.0 * w.rank(), DType::kFloat64).to(dev);
    const Tensor send = Tensor::empty(Shape{len}, dt, dev);
    kernels::cast(Context::of(send), wide, send);
    const Tensor recv = Tensor::zeros(Shape{n, len}, dt, dev);
    c.all_gather(send, recv);
    const Tensor back = Tensor::empty(Shape{n, len}, DType::kFloat64, dev);
    kernels::cast(Context::of(back), recv, back);
    const std::vector<double> got = back.to_vector<double>();
    for (int k = 0; k < n; ++k)
      for (int64_t i : {int64_t{0}, int64_t{7}, len - 1}) {
        const double want = 16.0 * k + i;
        const double tol = dt == DType::kBFloat16 ? 4e-3 * want : 0;
        EXPECT_NEAR(got[static_cast<size_t>(k * len + i)], want, tol)
            << dtype_name(dt) << " from rank " << k << " i=" << i;
      }
  }
  EXPECT_THROW(c.all_gather(filled(3, 0).to(dev),
                            Tensor::zeros(Shape{n * 3}, DType::kFloat32, Device::cpu())),
               Error);
  c.barrier();
}

}  // namespace
}  // namespace cyclone::dist
