// Synchronized batch norm's per-channel kernels (kernels/sync_batchnorm.h): replicas' packed
// statistics, added, give batch_norm's statistics and running update of the whole batch; the
// backward's affine correction against plain double loops; errors; CPU-vs-CUDA parity.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "cyclone/kernels/batchnorm.h"
#include "cyclone/kernels/elementwise.h"
#include "cyclone/kernels/sync_batchnorm.h"

namespace cyclone {
namespace {

using testing::DeviceTest;

// Each replica's rows [split[r], split[r + 1]) of x: its statistics packed, the packs added (what
// the all-reduce does), then the global statistics; against batch_norm_forward over all of x.
void expect_replicas_give_the_whole(Device device, DType dt, const Shape& s,
                                    const std::vector<int64_t>& split) {
  Context& ctx = Context::current(device);
  const int64_t C = s[1], inner = s.prod(2, s.rank());
  const double eps = 1e-5, momentum = 0.1;
  const Tensor x = testing::random_tensor(s, 41, dt, device, -2, 3);
  auto channel = [&] { return Tensor::empty({C}, dt, device); };
  const Tensor total = Tensor::zeros({2 * C + 1}, DType::kFloat64, device);
  for (size_t r = 0; r + 1 < split.size(); ++r) {
    const Tensor xr = x.slice(split[r], split[r + 1]).clone();
    const Tensor mean = channel(), invstd = channel();
    const Tensor y = Tensor::empty(xr.shape(), dt, device);
    kernels::batch_norm_forward(ctx, xr, Tensor(), Tensor(), Tensor(), Tensor(), true, momentum,
                                eps, y, mean, invstd);
    const Tensor sums = testing::nan_tensor({2 * C + 1}, DType::kFloat64, device);
    kernels::sync_batch_norm_pack(ctx, mean, invstd, eps,
                                  static_cast<double>((split[r + 1] - split[r]) * inner), sums);
    kernels::binary(ctx, kernels::BinaryOp::kAdd, total, sums, total);
  }
  const Tensor rm = testing::random_tensor({C}, 42, dt, device, -0.5, 0.5);
  const Tensor rv = testing::random_tensor({C}, 43, dt, device, 0.5, 2);
  const Tensor mean = testing::nan_tensor({C}, dt, device),
               var = testing::nan_tensor({C}, dt, device);
  const Tensor invstd = testing::nan_tensor({C}, dt, device);
  const Tensor rm_sync = rm.clone(), rv_sync = rv.clone();
  kernels::sync_batch_norm_stats(ctx, total, eps, momentum, mean, var, invstd, rm_sync, rv_sync);

  const Tensor y = Tensor::empty(s, dt, device), whole_mean = channel(), whole_invstd = channel();
  kernels::batch_norm_forward(ctx, x, Tensor(), Tensor(), rm, rv, true, momentum, eps, y,
                              whole_mean, whole_invstd);
  const double tol = dt == DType::kFloat64 ? 1e-12 : 1e-5;
  const std::string what = s.str() + " " + dtype_name(dt);
  EXPECT_TRUE(testing::all_close(mean, whole_mean, tol, tol)) << what;
  EXPECT_TRUE(testing::all_close(invstd, whole_invstd, tol, tol)) << what;
  EXPECT_TRUE(testing::all_close(rm_sync, rm, tol, tol)) << what;
  EXPECT_TRUE(testing::all_close(rv_sync, rv, tol, tol)) << what;
  // var is the biased variance behind invstd.
  const auto v = testing::values(var), is = testing::values(whole_invstd);
  for (int64_t c = 0; c < C; ++c)
    EXPECT_NEAR(1 / std::sqrt(v[c] + eps), is[c], tol * is[c]) << what;
  EXPECT_EQ(testing::values(total)[2 * C], static_cast<double>(s[0] * inner)) << what;
}

class SyncBatchNormKernels : public DeviceTest {};

TEST_P(SyncBatchNormKernels, ReplicasStatisticsAddUpToTheWholeBatch) {
  for (DType dt : {DType::kFloat32, DType::kFloat64}) {
    expect_replicas_give_the_whole(device(), dt, Shape{8, 3, 4, 5}, {0, 3, 8});
    expect_replicas_give_the_whole(device(), dt, Shape{40, 6}, {0, 2, 17, 40});
  }
}

// A replica without values adds nothing (and still writes its count, 0).
TEST_P(SyncBatchNormKernels, AnEmptyReplicaPacksZeros) {
  Context& ctx = Context::current(device());
  const Tensor mean = testing::nan_tensor({3}, DType::kFloat32, device());
  const Tensor invstd = testing::nan_tensor({3}, DType::kFloat32, device());
  const Tensor sums = testing::nan_tensor({7}, DType::kFloat64, device());
  kernels::sync_batch_norm_pack(ctx, mean, invstd, 1e-5, 0, sums);
  EXPECT_EQ(testing::values(sums), std::vector<double>(7, 0.0));
}

// alpha, beta against the formula of kernels/sync_batchnorm.h in plain doubles, with and without
// weight.
TEST_P(SyncBatchNormKernels, DxAffineFollowsTheFormula) {
  Context& ctx = Context::current(device());
  const int64_t C = 5;
  const double eps = 1e-3, m = 37;
  std::vector<double> s = testing::random_values(2 * C + 1, 51, 0.5, 2);
  for (int64_t c = 0; c < C; ++c) s[C + c] += s[c] * s[c] / m;  // E[x^2] >= mean^2
  s[2 * C] = m;
  const std::vector<double> g = testing::random_values(2 * C, 52, -3, 3);
  const std::vector<double> w = testing::random_values(C, 53, 0.5, 1.5);
  for (bool affine : {true, false}) {
    const Tensor alpha = testing::nan_tensor({C}, DType::kFloat64, device());
    const Tensor beta = testing::nan_tensor({C}, DType::kFloat64, device());
    kernels::sync_batch_norm_dx_affine(ctx, Tensor::from_vector(s, {2 * C + 1}, device()),
                                       Tensor::from_vector(g, {2 * C}, device()),
                                       affine ? Tensor::from_vector(w, {C}, device()) : Tensor(),
                                       eps, alpha, beta);
    const auto a = testing::values(alpha), b = testing::values(beta);
    for (int64_t c = 0; c < C; ++c) {
      const double mean = s[c] / m, var = s[C + c] / m - mean * mean;
      const double invstd = 1 / std::sqrt(var + eps), wc = affine ? w[c] : 1.0;
      const double k = wc * invstd * invstd * g[C + c] / m;
      EXPECT_NEAR(a[c], -k, 1e-12 * std::abs(k)) << c;
      EXPECT_NEAR(b[c], -wc * invstd * g[c] / m + k * mean, 1e-12) << c;
    }
  }
}

// Two shapes of the CUDA launch (a thread per channel, 256-thread blocks): C = 37 with running
// statistics and a weight (one partly idle block), and C = 300 with running_mean / running_var and
// weight undefined (two blocks, the second partly idle; stats_kernel's null running_mean branch
// and dx_affine_kernel's null weight). Without running statistics the batch statistics are the
// same as with them, and nothing else is written.
TEST_P(SyncBatchNormKernels, MatchesTheCpu) {
  struct Case {
    int64_t channels;
    bool running, weight;
  };
  for (const Case sh : {Case{37, true, true}, Case{300, false, false}}) {
    const int64_t C = sh.channels;
    const double eps = 1e-5;
    std::vector<double> sums = testing::random_values(2 * C + 1, 61, 0.1, 3);
    for (int64_t c = 0; c < C; ++c) sums[C + c] += sums[c] * sums[c] / 50;
    sums[2 * C] = 50;
    const std::vector<double> grads = testing::random_values(2 * C, 62, -2, 2);
    for (DType dt : {DType::kFloat32, DType::kFloat64}) {
      // The statistics of `sums` with the running statistics (given or not) in place.
      auto stats = [&](Device d, bool running) {
        Context& ctx = Context::current(d);
        std::vector<Tensor> out;
        for (int i = 0; i < 3; ++i) out.push_back(testing::nan_tensor({C}, dt, d));
        Tensor rm, rv;
        if (running) {
          rm = testing::random_tensor({C}, 65, dt, d, -1, 1);  // updated in place
          rv = testing::random_tensor({C}, 66, dt, d, 0.5, 2);
        }
        kernels::sync_batch_norm_stats(ctx, Tensor::from_vector(sums, {2 * C + 1}, d), eps, 0.1,
                                       out[0], out[1], out[2], rm, rv);
        if (running) out.insert(out.end(), {rm, rv});
        return out;
      };
      auto run = [&](Device d) {
        Context& ctx = Context::current(d);
        const Tensor mean = testing::random_tensor({C}, 63, dt, d, -1, 1);
        const Tensor invstd = testing::random_tensor({C}, 64, dt, d, 0.5, 3);
        const Tensor packed = testing::nan_tensor({2 * C + 1}, DType::kFloat64, d);
        kernels::sync_batch_norm_pack(ctx, mean, invstd, eps, 123, packed);
        std::vector<Tensor> out = {packed};
        for (const Tensor& t : stats(d, sh.running)) out.push_back(t);
        const Tensor alpha = testing::nan_tensor({C}, dt, d),
                     beta = testing::nan_tensor({C}, dt, d);
        kernels::sync_batch_norm_dx_affine(
            ctx, Tensor::from_vector(sums, {2 * C + 1}, d), Tensor::from_vector(grads, {2 * C}, d),
            sh.weight ? testing::random_tensor({C}, 67, dt, d, 0.5, 1.5) : Tensor(), eps, alpha,
            beta);
        out.push_back(alpha);
        out.push_back(beta);
        return out;
      };
      const std::string what = std::to_string(C) + " channels " + dtype_name(dt);
      const auto cpu = run(Device::cpu()), dev = run(device());
      ASSERT_EQ(cpu.size(), sh.running ? 8u : 6u) << what;
      const double tol = dt == DType::kFloat64 ? 1e-13 : 1e-6;
      for (size_t i = 0; i < cpu.size(); ++i)
        EXPECT_TRUE(testing::all_close(dev[i], cpu[i], tol, tol)) << what << " #" << i;
      // mean, var and invstd do not depend on whether running statistics were given.
      const auto with = stats(device(), true), without = stats(device(), false);
      for (size_t i = 0; i < 3; ++i)
        EXPECT_EQ(testing::values(without[i]), testing::values(with[i])) << what << " #" << i;
    }
  }
}

CYCLONE_INSTANTIATE_DEVICE_TEST(SyncBatchNormKernels);

TEST(SyncBatchNormKernelErrors, NameTheProblem) {
  Context& ctx = Context::current(Device::cpu());
  const Tensor mean = Tensor::zeros({4}), invstd = Tensor::zeros({4});
  testing::expect_error(
      [&] { kernels::sync_batch_norm_pack(ctx, mean, invstd, 1e-5, 2, Tensor::zeros({9})); },
      {"sync_batch_norm_pack", "sums", "float64", "9"});
  testing::expect_error(
      [&] {
        kernels::sync_batch_norm_pack(ctx, mean, Tensor::zeros({3}), 1e-5, 2,
                                      Tensor::zeros({9}, DType::kFloat64));
      },
      {"sync_batch_norm_pack", "save_invstd", "one element per channel (4)"});
  testing::expect_error(
      [&] {
        kernels::sync_batch_norm_stats(ctx, Tensor::zeros({9}, DType::kFloat64), 1e-5, 0.1, mean,
                                       Tensor::zeros({4}, DType::kFloat64), invstd, Tensor(),
                                       Tensor());
      },
      {"sync_batch_norm_stats", "var", "float32"});
  testing::expect_error(
      [&] {
        kernels::sync_batch_norm_dx_affine(ctx, Tensor::zeros({9}, DType::kFloat64),
                                           Tensor::zeros({9}, DType::kFloat64), Tensor(), 1e-5,
                                           mean, invstd);
      },
      {"sync_batch_norm_dx_affine", "grads", "8 elements"});
}

}  // namespace
}  // namespace cyclone
