// batch_norm as a differentiable op: gradient checks (float64, CPU) in training mode for x, weight
// and bias and in eval mode, train/eval behaviour, running stats, and CUDA-vs-CPU float32 parity.
#include <gtest/gtest.h>

#include <cmath>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "common/test_util.h"

namespace cyclone {
namespace {

Tensor leaf(const Shape& s, uint64_t seed, double lo, double hi, DType dt = DType::kFloat64,
            Device d = Device::cpu()) {
  Tensor t = testing::random_tensor(s, seed, dt, Device::cpu(), lo, hi).to(d);
  t.set_requires_grad();
  return t;
}

class BatchNormGradCheck : public ::testing::TestWithParam<Shape> {};

TEST_P(BatchNormGradCheck, TrainingModeGradientsOfXWeightAndBias) {
  const Shape s = GetParam();
  const int64_t C = s[1];
  Tensor x = leaf(s, 1, -2, 3), w = leaf({C}, 2, 0.5, 1.5), b = leaf({C}, 3, -1, 1);
  Tensor rm = Tensor::zeros({C}, DType::kFloat64, Device::cpu());
  Tensor rv = ones({C}, DType::kFloat64, Device::cpu());
  // Squared so that the loss is not linear in y (sum(w * y) alone has a structured gradient).
  auto f = [&](const std::vector<Tensor>& in) {
    return square(batch_norm(in[0], rm, rv, in[1], in[2], true, 0.1, 1e-5));
  };
  GradCheckResult r = gradcheck(f, {x, w, b});
  EXPECT_TRUE(r.ok) << s << ": " << r.message;
  EXPECT_EQ(r.checked, s.numel() + 2 * C);
}

TEST_P(BatchNormGradCheck, TrainingModeWithoutAffineOrRunningStats) {
  const Shape s = GetParam();
  Tensor x = leaf(s, 4, -1, 1);
  auto f = [&](const std::vector<Tensor>& in) {
    return square(batch_norm(in[0], Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-3));
  };
  GradCheckResult r = gradcheck(f, {x});
  EXPECT_TRUE(r.ok) << s << ": " << r.message;
}

TEST_P(BatchNormGradCheck, EvalModeGradients) {
  const Shape s = GetParam();
  const int64_t C = s[1];
  Tensor x = leaf(s, 5, -2, 2), w = leaf({C}, 6, 0.5, 1.5), b = leaf({C}, 7, -1, 1);
  Tensor rm = testing::random_tensor({C}, 8, DType::kFloat64, Device::cpu(), -0.5, 0.5);
  Tensor rv = testing::random_tensor({C}, 9, DType::kFloat64, Device::cpu(), 0.5, 2);
  auto f = [&](const std::vector<Tensor>& in) {
    return square(batch_norm(in[0], rm, rv, in[1], in[2], false, 0.1, 1e-5));
  };
  GradCheckResult r = gradcheck(f, {x, w, b});
  EXPECT_TRUE(r.ok) << s << ": " << r.message;
}

// Eval mode without affine: y = (x - running_mean) * rsqrt(running_var + eps), the eval-mode
// backward with weight undefined (w = 1): dx = dy * invstd.
TEST_P(BatchNormGradCheck, EvalModeWithoutAffineGradients) {
  const Shape s = GetParam();
  const int64_t C = s[1];
  Tensor x = leaf(s, 8, -2, 2);
  Tensor rm = testing::random_tensor({C}, 9, DType::kFloat64, Device::cpu(), -0.5, 0.5);
  Tensor rv = testing::random_tensor({C}, 10, DType::kFloat64, Device::cpu(), 0.5, 2);
  auto f = [&](const std::vector<Tensor>& in) {
    return square(batch_norm(in[0], rm, rv, Tensor(), Tensor(), /*training=*/false, 0.1, 1e-5));
  };
  GradCheckResult r = gradcheck(f, {x});
  EXPECT_TRUE(r.ok) << s << ": " << r.message;
  EXPECT_EQ(r.checked, s.numel());
}

// sync_batch_norm with one replica (a sum that does nothing) is training-mode batch_norm: its own
// finite-difference check, then equality with batch_norm.
TEST_P(BatchNormGradCheck, SyncBatchNormOneReplicaGradients) {
  const Shape s = GetParam();
  const int64_t C = s[1];
  Tensor x = leaf(s, 11, -2, 3), w = leaf({C}, 12, 0.5, 1.5), b = leaf({C}, 13, -1, 1);
  const ReplicaSum alone = [](const Tensor&) {};
  auto f = [&](const std::vector<Tensor>& in) {
    return square(sync_batch_norm(in[0], Tensor(), Tensor(), in[1], in[2], 0.1, 1e-5, alone));
  };
  GradCheckResult r = gradcheck(f, {x, w, b});
  EXPECT_TRUE(r.ok) << s << ": " << r.message;
  EXPECT_EQ(r.checked, s.numel() + 2 * C);
}

// Without affine (weight and bias undefined: sync_batch_norm_dx_affine's w = 1 and no dweight /
// dbias), and without running statistics.
TEST_P(BatchNormGradCheck, SyncBatchNormOneReplicaWithoutAffineGradients) {
  const Shape s = GetParam();
  Tensor x = leaf(s, 14, -2, 3);
  const ReplicaSum alone = [](const Tensor&) {};
  auto f = [&](const std::vector<Tensor>& in) {
    return square(sync_batch_norm(in[0], Tensor(), Tensor(), Tensor(), Tensor(), 0.1, 1e-5, alone));
  };
  GradCheckResult r = gradcheck(f, {x});
  EXPECT_TRUE(r.ok) << s << ": " << r.message;
  EXPECT_EQ(r.checked, s.numel());
}

// The fused BN + ReLU: its own finite-difference check in both modes (the data keeps the
// pre-activations away from 0, where the ReLU has no derivative).
TEST_P(BatchNormGradCheck, FusedReluGradients) {
  const Shape s = GetParam();
  const int64_t C = s[1];
  Tensor x = leaf(s, 14, -2, 3), w = leaf({C}, 15, 0.5, 1.5), b = leaf({C}, 16, -0.5, 0.5);
  Tensor rm = testing::random_tensor({C}, 17, DType::kFloat64, Device::cpu(), -0.5, 0.5);
  Tensor rv = testing::random_tensor({C}, 18, DType::kFloat64, Device::cpu(), 0.5, 2);
  // The offset keeps the loss's slope nonzero where the ReLU outputs 0, so the mask is checked.
  const Tensor offset = testing::random_tensor(s, 19, DType::kFloat64, Device::cpu(), 0.2, 1);
  for (bool training : {true, false}) {
    auto f = [&](const std::vector<Tensor>& in) {
      return square(add(batch_norm_relu(in[0], rm, rv, in[1], in[2], training, 0.0, 1e-5), offset));
    };
    GradCheckResult r = gradcheck(f, {x, w, b});
    EXPECT_TRUE(r.ok) << s << (training ? " train: " : " eval: ") << r.message;
    EXPECT_EQ(r.checked, s.numel() + 2 * C);
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, BatchNormGradCheck,
                         ::testing::Values(Shape{5, 3}, Shape{3, 2, 2, 3}, Shape{2, 4, 1, 5}),
                         [](const ::testing::TestParamInfo<Shape>& i) {
                           std::string n;
                           for (int d = 0; d < i.param.rank(); ++d) {
                             if (d) n += 'x';  // not "x" + std::string: g++ 12's -Wrestrict
                             n += std::to_string(i.param[d]);
                           }
                           return n;
                         });

TEST(BatchNorm, TrainingNormalisesEachChannelAndUpdatesRunningStats) {
  const Shape s{8, 3, 4, 4};
  Tensor x = testing::random_tensor(s, 31, DType::kFloat64, Device::cpu(), 2, 6);
  Tensor rm = Tensor::zeros({3}, DType::kFloat64, Device::cpu());
  Tensor rv = ones({3}, DType::kFloat64, Device::cpu());
  Tensor y = batch_norm(x, rm, rv, Tensor(), Tensor(), true);
  const auto yv = y.to_vector<double>(), xv = x.to_vector<double>();
  const auto rmv = rm.to_vector<double>(), rvv = rv.to_vector<double>();
  for (int64_t c = 0; c < 3; ++c) {
    double ym = 0, yq = 0, xm = 0, xq = 0;
    const int64_t M = 8 * 16;
    for (int64_t n = 0; n < 8; ++n)
      for (int64_t i = 0; i < 16; ++i) {
        const int64_t k = (n * 3 + c) * 16 + i;
        ym += yv[k];
        xm += xv[k];
      }
    ym /= M;
    xm /= M;
    for (int64_t n = 0; n < 8; ++n)
      for (int64_t i = 0; i < 16; ++i) {
        const int64_t k = (n * 3 + c) * 16 + i;
        yq += (yv[k] - ym) * (yv[k] - ym);
        xq += (xv[k] - xm) * (xv[k] - xm);
      }
    EXPECT_NEAR(ym, 0, 1e-12);
    EXPECT_NEAR(yq / M, 1, 1e-3);  // var / (var + eps)
    EXPECT_NEAR(rmv[c], 0.1 * xm, 1e-12);
    EXPECT_NEAR(rvv[c], 0.9 + 0.1 * xq / (M - 1), 1e-12);
  }
}

TEST(BatchNorm, EvalUsesRunningStatsAndUpdatesNothing) {
  Tensor x = Tensor::from_vector<double>({1, 2, 3, 4}, {2, 2}, Device::cpu());
  Tensor rm = Tensor::from_vector<double>({1, -1}, {2}, Device::cpu());
  Tensor rv = Tensor::from_vector<double>({4, 0.25}, {2}, Device::cpu());
  Tensor w = Tensor::from_vector<double>({2, 3}, {2}, Device::cpu());
  Tensor b = Tensor::from_vector<double>({0.5, -0.5}, {2}, Device::cpu());
  Tensor y = batch_norm(x, rm, rv, w, b, false, 0.1, 0.0);
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{2 * 0 / 2.0 + 0.5, 3 * 3 / 0.5 - 0.5,
                                                        2 * 2 / 2.0 + 0.5, 3 * 5 / 0.5 - 0.5}));
  EXPECT_EQ(rm.to_vector<double>(), (std::vector<double>{1, -1}));
  EXPECT_EQ(rv.to_vector<double>(), (std::vector<double>{4, 0.25}));
  // Eval without running stats has nothing to normalise with.
  EXPECT_THROW(batch_norm(x, Tensor(), Tensor(), w, b, false), Error);
}

TEST(BatchNorm, RunningStatsUpdateEvenWithoutGradAndWithoutHistory) {
  Tensor x = testing::random_tensor({4, 2}, 3, DType::kFloat32, Device::cpu(), 0, 1);
  Tensor rm = Tensor::zeros({2}, DType::kFloat32, Device::cpu());
  Tensor rv = ones({2}, DType::kFloat32, Device::cpu());
  {
    autograd::NoGradGuard guard;
    Tensor w = ones({2}, DType::kFloat32, Device::cpu());
    w.set_requires_grad();
    Tensor y = batch_norm(x, rm, rv, w, Tensor(), true);
    EXPECT_TRUE(y.is_leaf());
  }
  EXPECT_NE(rm.to_vector<float>()[0], 0.0f);
  EXPECT_FALSE(rm.requires_grad());
}

TEST(BatchNorm, GradientMatchesTheClosedFormOnATinyBatch) {
  // Two values per channel always normalise to -1 and +1 (with eps 0), whatever they are, so the
  // gradient with respect to x must vanish.
  Tensor x = Tensor::from_vector<double>({-1, 1}, {2, 1}, Device::cpu());
  x.set_requires_grad();
  Tensor y = batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 0.0);
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{-1, 1}));
  y.backward(Tensor::from_vector<double>({1, 0}, {2, 1}, Device::cpu()));
  // xhat = [-1, 1], mean(dy) = 0.5, mean(dy * xhat) = -0.5: dx = [1 - 0.5 - 0.5, 0 - 0.5 + 0.5].
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{0, 0}));
}

// Replicas simulated by threads: each calls the sum with its numbers and gets everyone's total.
class ThreadReplicas {
 public:
  explicit ThreadReplicas(int n) : n_(n) {}
  // The ReplicaSum of a replica: its float64 tensor becomes the total, in place.
  void sum(const Tensor& t) {
    std::vector<double> v = t.to_vector<double>();
    sum(v);
    t.copy_from(Tensor::from_vector(v, t.shape(), t.device()));
  }
  void sum(std::vector<double>& v) {
    std::unique_lock lk(mu_);
    const int64_t gen = generation_;
    if (total_.size() < v.size()) total_.resize(v.size(), 0.0);
    for (size_t i = 0; i < v.size(); ++i) total_[i] += v[i];
    if (++arrived_ == n_) {
      result_ = total_;
      total_.assign(total_.size(), 0.0);
      arrived_ = 0;
      ++generation_;
      cv_.notify_all();
    } else {
      cv_.wait(lk, [&] { return generation_ != gen; });
    }
    v.assign(result_.begin(), result_.begin() + static_cast<int64_t>(v.size()));
  }

 private:
  int n_, arrived_ = 0;
  int64_t generation_ = 0;
  std::vector<double> total_, result_;
  std::mutex mu_;
  std::condition_variable cv_;
};

// The property data-parallel training relies on: replicas holding parts of a batch (rows
// [split[r], split[r + 1]) of `whole`) normalise, update running statistics and back-propagate
// exactly as one batch_norm over the whole batch (dweight / dbias: the replicas' sums add up to the
// whole's). Without affine, weight and bias are undefined on every replica and in the whole.
void expect_replicas_equal_the_whole_batch(const Shape& whole, const std::vector<int64_t>& split,
                                           bool affine = true) {
  const int64_t C = whole[1];
  const int n = static_cast<int>(split.size()) - 1;
  Tensor x = leaf(whole, 21, -2, 3), w, b;
  if (affine) {
    w = leaf({C}, 22, 0.5, 1.5);
    b = leaf({C}, 23, -1, 1);
  }
  Tensor g = testing::random_tensor(whole, 24, DType::kFloat64, Device::cpu(), -1, 1);
  Tensor rm = Tensor::zeros({C}, DType::kFloat64, Device::cpu());
  Tensor rv = ones({C}, DType::kFloat64, Device::cpu());
  Tensor y = batch_norm(x, rm, rv, w, b, true, 0.1, 1e-5);
  y.backward(g);

  ThreadReplicas replicas(n);
  std::vector<Tensor> ys(n), dxs(n), dws(n), dbs(n), rms(n), rvs(n);
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r)
    threads.emplace_back([&, r] {
      Tensor xr = x.detach().slice(split[r], split[r + 1]).clone();
      xr.set_requires_grad();
      Tensor wr, br;
      if (affine) {
        wr = w.detach().clone();
        br = b.detach().clone();
        wr.set_requires_grad();
        br.set_requires_grad();
      }
      rms[r] = Tensor::zeros({C}, DType::kFloat64, Device::cpu());
      rvs[r] = ones({C}, DType::kFloat64, Device::cpu());
      Tensor yr = sync_batch_norm(xr, rms[r], rvs[r], wr, br, 0.1, 1e-5,
                                  [&](const Tensor& t) { replicas.sum(t); });
      yr.backward(g.slice(split[r], split[r + 1]).clone());
      ys[r] = yr.detach();
      dxs[r] = xr.grad();
      if (affine) {
        dws[r] = wr.grad();
        dbs[r] = br.grad();
      }
    });
  for (auto& t : threads) t.join();
  const std::string what =
      whole.str() + " in " + std::to_string(n) + " replicas" + (affine ? "" : " without affine");
  for (int r = 0; r < n; ++r) {
    ASSERT_TRUE(dxs[r].defined()) << what << ": no dx for replica " << r;
    EXPECT_EQ(dxs[r].shape(), ys[r].shape()) << what << ": dx of replica " << r;
    EXPECT_TRUE(testing::all_close(ys[r], y.detach().slice(split[r], split[r + 1]), 1e-9, 1e-12))
        << what << ": y of replica " << r;
    EXPECT_TRUE(testing::all_close(dxs[r], x.grad().slice(split[r], split[r + 1]), 1e-9, 1e-12))
        << what << ": dx of replica " << r;
    EXPECT_TRUE(testing::all_close(rms[r], rm, 1e-9, 1e-12)) << what << ": running_mean " << r;
    EXPECT_TRUE(testing::all_close(rvs[r], rv, 1e-9, 1e-12)) << what << ": running_var " << r;
  }
  if (!affine) return;
  const auto dw = w.grad().to_vector<double>(), db = b.grad().to_vector<double>();
  for (int64_t c = 0; c < C; ++c) {
    double dw_sum = 0, db_sum = 0;
    for (int r = 0; r < n; ++r) {
      dw_sum += dws[r].to_vector<double>()[c];
      db_sum += dbs[r].to_vector<double>()[c];
    }
    EXPECT_NEAR(dw_sum, dw[c], 1e-9) << what;
    EXPECT_NEAR(db_sum, db[c], 1e-9) << what;
  }
}

TEST(SyncBatchNorm, ReplicasTogetherEqualTheWholeBatch) {
  expect_replicas_equal_the_whole_batch(Shape{8, 3, 2, 3}, {0, 3, 8});
  // A replica with one value per channel (an image of [N, C], or 1 x 1 maps): its value, variance
  // 0.
  expect_replicas_equal_the_whole_batch(Shape{6, 4}, {0, 1, 6});
  expect_replicas_equal_the_whole_batch(Shape{8, 3, 2, 3}, {0, 3, 8}, /*affine=*/false);
}

// A replica with no rows (an uneven last batch split over more replicas than it has rows): it adds
// zeros to the sums, still takes part in both replica sums (forward and backward, or the others
// would wait for it), returns an empty y and dx and zero dweight / dbias; the others normalise
// with the statistics of the rows that exist. First, last and middle replica empty; with and
// without affine.
TEST(SyncBatchNorm, AnEmptyReplicaChangesNothing) {
  for (bool affine : {true, false}) {
    expect_replicas_equal_the_whole_batch(Shape{6, 4}, {0, 0, 6}, affine);
    expect_replicas_equal_the_whole_batch(Shape{6, 4}, {0, 6, 6}, affine);
    expect_replicas_equal_the_whole_batch(Shape{8, 3, 2, 3}, {0, 3, 3, 8}, affine);
  }
}

// 16-bit activations: sync_batch_norm of a bfloat16 x is the float32 op on the same values with y
// and dx rounded to bfloat16 (the statistics, running statistics, dweight and dbias stay float32,
// computed from exactly the float32 op's inputs).
class SyncBatchNormHalfTest : public testing::DeviceTest {};

TEST_P(SyncBatchNormHalfTest, BFloat16MatchesFloat32) {
  for (bool affine : {true, false})
    for (Shape s : {Shape{6, 5, 3, 4}, Shape{33, 7}}) {
      const int64_t C = s[1];
      const ReplicaSum alone = [](const Tensor&) {};
      // x and dy are drawn in bfloat16, so both runs see the same values.
      const Tensor x16 = testing::random_tensor(s, 71, DType::kBFloat16, device(), -2, 3);
      const Tensor g16 = testing::random_tensor(s, 72, DType::kBFloat16, device(), -1, 1);
      auto run = [&](DType dt) {
        Tensor x = cast(x16, dt).detach().clone();  // exact in float32
        x.set_requires_grad();
        Tensor w, b;
        if (affine) {
          w = leaf({C}, 73, 0.5, 1.5, DType::kFloat32, device());
          b = leaf({C}, 74, -1, 1, DType::kFloat32, device());
        }
        Tensor rm = testing::random_tensor({C}, 75, DType::kFloat32, device(), -0.5, 0.5);
        Tensor rv = testing::random_tensor({C}, 76, DType::kFloat32, device(), 0.5, 2);
        Tensor y = sync_batch_norm(x, rm, rv, w, b, 0.1, 1e-5, alone);
        EXPECT_EQ(y.dtype(), dt);
        y.backward(cast(g16, dt).detach());
        EXPECT_EQ(x.grad().dtype(), dt);
        std::vector<Tensor> out{y.detach(), x.grad(), rm, rv};
        if (affine) out.insert(out.end(), {w.grad(), b.grad()});
        return out;
      };
      const auto half = run(DType::kBFloat16), full = run(DType::kFloat32);
      for (size_t i = 0; i < full.size(); ++i) {
        // y and dx: one bfloat16 rounding (8 bits: a relative 2^-8) of values of order 1; the
        // rest is float32 arithmetic on identical inputs.
        const double tol = i < 2 ? 1e-2 : 1e-6;
        EXPECT_TRUE(testing::all_close(half[i], full[i], tol, tol))
            << s << (affine ? " affine" : "") << " #" << i;
      }
    }
}

CYCLONE_INSTANTIATE_DEVICE_TEST(SyncBatchNormHalfTest);

TEST(SyncBatchNorm, OnlyTrainsInBatchNorm2dWithAReplicaSum) {
  // BatchNorm2d with a replica sum uses it in training mode only.
  BatchNorm2d bn(3);
  EXPECT_FALSE(bn.synchronized());
  bn.set_replica_sum([](const Tensor&) {});
  EXPECT_TRUE(bn.synchronized());
  Tensor xf = testing::random_tensor(Shape{4, 3, 2, 2}, 25, DType::kFloat32, Device::cpu(), -1, 1);
  BatchNorm2d plain(3);
  EXPECT_TRUE(testing::all_close(bn(xf), plain(xf), 1e-5, 1e-6));
  EXPECT_TRUE(testing::all_close(bn.running_var(), plain.running_var(), 1e-5, 1e-6));
}

TEST(SyncBatchNormCuda, MatchesCpuInFloat32) {
  if (!cuda_available()) GTEST_SKIP() << "no usable CUDA device on this machine";
  const Shape s{16, 8, 5, 5};
  const int64_t C = 8;
  const ReplicaSum alone = [](const Tensor&) {};
  auto run = [&](Device d) {
    Tensor x = leaf(s, 51, -1, 3, DType::kFloat32, d);
    Tensor w = leaf({C}, 52, 0.5, 1.5, DType::kFloat32, d);
    Tensor b = leaf({C}, 53, -1, 1, DType::kFloat32, d);
    Tensor rm = Tensor::zeros({C}, DType::kFloat32, d);
    Tensor rv = testing::random_tensor({C}, 54, DType::kFloat32, Device::cpu(), 1, 2).to(d);
    Tensor y = sync_batch_norm(x, rm, rv, w, b, 0.1, 1e-5, alone);
    y.backward(testing::random_tensor(s, 55, DType::kFloat32, Device::cpu(), -1, 1).to(d));
    return std::vector<Tensor>{y.detach(), x.grad(), w.grad(), b.grad(), rm, rv};
  };
  const auto cpu = run(Device::cpu()), gpu = run(Device::cuda(0));
  for (size_t i = 0; i < cpu.size(); ++i)
    EXPECT_TRUE(testing::all_close(gpu[i], cpu[i], 1e-4, 1e-5)) << "#" << i;
}

// batch_norm_relu is relu(batch_norm): the same output, running statistics and gradients (the
// masks agree: no pre-activation of this data lies within rounding of 0), in every mode.
class BatchNormReluTest : public testing::DeviceTest {};

TEST_P(BatchNormReluTest, EqualsReluOfBatchNorm) {
  for (DType dt : {DType::kFloat32, DType::kFloat64, DType::kBFloat16})
    for (bool training : {true, false})
      for (bool affine : {true, false})
        for (Shape s : {Shape{6, 5, 3, 4}, Shape{33, 7}}) {
          const int64_t C = s[1];
          const DType pt = math_dtype(dt);
          auto run = [&](bool fused) {
            Tensor x = leaf(s, 51, -2, 2, dt, device());
            Tensor w, b;
            if (affine) {
              w = leaf({C}, 52, 0.5, 1.5, pt, device());
              b = leaf({C}, 53, -1, 1, pt, device());
            }
            Tensor rm = testing::random_tensor({C}, 54, pt, Device::cpu(), -0.5, 0.5).to(device());
            Tensor rv = testing::random_tensor({C}, 55, pt, Device::cpu(), 0.5, 2).to(device());
            Tensor y = fused ? batch_norm_relu(x, rm, rv, w, b, training)
                             : relu(batch_norm(x, rm, rv, w, b, training));
            y.backward(testing::random_tensor(s, 56, dt, Device::cpu(), -1, 1).to(device()));
            std::vector<Tensor> out{y.detach(), x.grad(), rm, rv};
            if (affine) out.insert(out.end(), {w.grad(), b.grad()});
            return out;
          };
          const auto pair = run(false), fused = run(true);
          // Half precision: the pair rounds y before the ReLU reads it, the fused kernel does not.
          const double tol = dt == DType::kFloat64 ? 1e-13 : is_half(dt) ? 1e-2 : 1e-6;
          for (size_t i = 0; i < pair.size(); ++i)
            EXPECT_TRUE(testing::all_close(fused[i], pair[i], tol, tol))
                << s << " " << dtype_name(dt) << (training ? " train" : " eval")
                << (affine ? " affine" : "") << " #" << i;
        }
}

// The residual networks' BN-ReLU pairs (layers/conv_modules.h batch_norm_act): fused under
// BnReluFusionScope(true), the two modules in turn under BnReluFusionScope(false); the same
// logits, gradients, running statistics and summary either way.
TEST_P(BatchNormReluTest, ModelsComputeTheSameFusedOrNot) {
  for (const char* name : {"resnet8", "wrn-10-2"}) {
    ModelOptions mo;
    mo.device = device();
    mo.in_channels = 3;
    mo.height = mo.width = 8;
    mo.seed = 3;
    auto model = make_model(name, mo);
    const Tensor x = testing::random_tensor({4, 3, 8, 8}, 61, DType::kFloat32, device());
    const Tensor labels = Tensor::from_vector<int32_t>({2, 9, 0, 4}, {4}, device());
    NamedTensors start;
    for (const auto& [n, t] : model->state_dict()) start.emplace_back(n, t.clone());
    auto pass = [&](bool fused) {
      BnReluFusionScope scope(fused);
      EXPECT_EQ(bn_relu_fusion_enabled(device()), fused);
      model->load_state_dict(start);
      for (const Tensor& p : model->parameters()) p.zero_grad(true);
      const Tensor logits = (*model)(x);
      cross_entropy(logits, labels).backward();
      std::vector<double> out = testing::values(logits);
      for (const auto& [n, t] : model->state_dict()) {
        if (!is_floating(t.dtype())) continue;
        const auto v = testing::values(t.requires_grad() ? t.grad() : t);
        out.insert(out.end(), v.begin(), v.end());
      }
      return std::make_pair(out, summary(*model, Shape({1, 3, 8, 8}), device()));
    };
    const auto pair = pass(false), fused = pass(true);
    // The scopes restore the default: fused on CUDA, not on the CPU.
    EXPECT_TRUE(bn_relu_fusion_enabled(Device::cuda()));
    EXPECT_FALSE(bn_relu_fusion_enabled(Device::cpu()));
    EXPECT_LT(testing::relative_error(fused.first, pair.first), 1e-6) << name;
    EXPECT_EQ(fused.second, pair.second) << name;
  }
}

CYCLONE_INSTANTIATE_DEVICE_TEST(BatchNormReluTest);

TEST(BatchNormCuda, ForwardBackwardAndRunningStatsMatchCpuInFloat32) {
  if (!cuda_available()) GTEST_SKIP() << "no usable CUDA device on this machine";
  for (bool training : {true, false}) {
    for (Shape s : {Shape{16, 8, 9, 9}, Shape{64, 33}}) {
      const int64_t C = s[1];
      auto run = [&](Device d) {
        Tensor x = leaf(s, 41, -1, 3, DType::kFloat32, d);
        Tensor w = leaf({C}, 42, 0.5, 1.5, DType::kFloat32, d);
        Tensor b = leaf({C}, 43, -1, 1, DType::kFloat32, d);
        Tensor rm = testing::random_tensor({C}, 44, DType::kFloat32, Device::cpu(), 0, 1).to(d);
        Tensor rv = testing::random_tensor({C}, 45, DType::kFloat32, Device::cpu(), 1, 2).to(d);
        Tensor y = batch_norm(x, rm, rv, w, b, training);
        Tensor g = testing::random_tensor(s, 46, DType::kFloat32, Device::cpu(), -1, 1).to(d);
        y.backward(g);
        return std::vector<Tensor>{y.detach(), x.grad(), w.grad(), b.grad(), rm, rv};
      };
      const auto cpu = run(Device::cpu()), gpu = run(Device::cuda(0));
      for (size_t i = 0; i < cpu.size(); ++i)
        EXPECT_TRUE(testing::all_close(gpu[i], cpu[i], 1e-4, 1e-5))
            << s << (training ? " train" : " eval") << " #" << i;
    }
  }
}

}  // namespace
}  // namespace cyclone
