// Data parallelism end to end at the library level: S ranks with batch B each, each reading its
// shard, take the same steps as one process with batch S x B — the property the issue asks for
// ("2 ranks with batch B/2 give the same weights after k steps as 1 rank with batch B"). Run alone
// (S = 1: train_step against a hand-written step) and under mpirun -np 2 (ctest dist.mpi_np2).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "common/test_util.h"
#include "cyclone/data/loader.h"
#include "cyclone/data/synthetic.h"
#include "cyclone/dist/world.h"
#include "cyclone/layers/loss_ops.h"
#include "cyclone/models/registry.h"
#include "cyclone/optim/optimizer.h"
#include "cyclone/schedulers/policy.h"
#include "cyclone/train/metrics.h"
#include "cyclone/train/precompute.h"
#include "cyclone/train/step.h"
#include "cyclone/train/trainer.h"

namespace cyclone {
namespace {

data::Dataset tiny_set(int64_t n, const std::string& split) {
  return testing::synthetic_images(n, 8, 4, 7, split);
}

std::shared_ptr<Module> tiny_model() {
  return make_model("mlp-16", testing::model_options(8, 4, 11));
}

double max_abs_diff(Module& a, Module& b) {
  const auto pa = a.named_parameters(), pb = b.named_parameters();
  EXPECT_EQ(pa.size(), pb.size());
  double worst = 0;
  for (size_t k = 0; k < pa.size(); ++k) {
    const auto x = pa[k].second.to_vector<float>(), y = pb[k].second.to_vector<float>();
    for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, double(std::abs(x[i] - y[i])));
  }
  return worst;
}

// 69 images, global batch 32 (33 for 3 ranks): batches of 32, 32 and 5 (shards of 3 and 2 for two
// ranks), so the last step also checks that uneven shards are weighted by their size.
// Precompute split over the ranks: every rank ends with every image's features, as one process
// computes them, for image counts that leave ranks with unequal parts, a last global batch of
// fewer images than ranks, and a set smaller than the job (ranks with nothing to compute).
TEST(DataParallel, PrecomputeSplitOverTheRanksGivesEveryRankAllFeatures) {
  dist::World& w = dist::world();
  auto m = make_model("lenet5", testing::model_options(28, 10, 3));
  StageSlice body(*m, 0, 2);
  for (const auto& [n, bs] :
       std::vector<std::pair<int64_t, int64_t>>{{1, 4}, {2, 1}, {13, 2}, {40, 8}}) {
    const data::Dataset d = testing::synthetic_images(n, 28, 10, 5);
    data::LoaderOptions lo;
    lo.batch_size = bs;
    lo.workers = 0;
    lo.shuffle = true;  // ignored: features keep the images' order
    const data::Dataset split = train::precompute_features(body, d, lo, &w.host());
    const data::Dataset alone = train::precompute_features(body, d, lo);
    ASSERT_EQ(split.images.shape(), Shape({n, 16, 5, 5})) << n;
    ASSERT_EQ(alone.images.shape(), split.images.shape());
    const float* a = alone.images.data<float>();
    const float* b = split.images.data<float>();
    for (int64_t i = 0; i < alone.images.numel(); ++i)
      ASSERT_NEAR(b[i], a[i], 1e-5f + 1e-5f * std::abs(a[i]))
          << n << " images, batch " << bs << ", image " << i / 400 << " of rank " << w.rank();
    EXPECT_EQ(split.labels.to_vector<int32_t>(), d.labels.to_vector<int32_t>());
  }
}

TEST(DataParallel, ShardedStepsEqualOneBigBatch) {
  dist::World& w = dist::world();
  const int64_t per_rank = (32 + w.size() - 1) / w.size();  // 3 ranks: global batch 33
  const data::Dataset set = tiny_set(69, "train");

  auto dp_model = tiny_model(), ref_model = tiny_model();
  auto dp_opt = optim::make_optimizer("sgd", dp_model->named_parameters(),
                                      R"({"momentum": 0.9, "weight_decay": 1e-4})");
  auto ref_opt = optim::make_optimizer("sgd", ref_model->named_parameters(),
                                       R"({"momentum": 0.9, "weight_decay": 1e-4})");
  dp_opt->set_lr(0.1);
  ref_opt->set_lr(0.1);

  data::LoaderOptions lo;
  lo.workers = 0;
  lo.seed = 3;
  lo.batch_size = per_rank;
  lo.shard = w.rank();
  lo.num_shards = w.size();
  data::DataLoader dp_loader(set, lo);
  lo.batch_size = per_rank * w.size();
  lo.shard = 0;
  lo.num_shards = 1;
  data::DataLoader ref_loader(set, lo);
  ASSERT_EQ(dp_loader.num_batches(), ref_loader.num_batches());
  ASSERT_EQ(dp_loader.num_batches(), 3);

  int64_t steps = 0;
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    dp_loader.start_epoch(epoch);
    ref_loader.start_epoch(epoch);
    data::Batch db, rb;
    while (dp_loader.next(db)) {
      ASSERT_TRUE(ref_loader.next(rb));
      const train::StepResult s = train::train_step(*dp_model, *dp_opt, db, {});
      ASSERT_TRUE(s.applied);
      EXPECT_EQ(s.samples, rb.size());

      ref_opt->zero_grad();
      const Tensor loss = cross_entropy((*ref_model)(rb.images), rb.labels);
      EXPECT_NEAR(s.loss, loss.item(), 1e-5);  // the step reports the global batch's loss
      loss.backward();
      ref_opt->step();
      ++steps;
    }
  }
  EXPECT_EQ(steps, 6);
  EXPECT_LT(max_abs_diff(*dp_model, *ref_model), 2e-5);
}

// Evaluation sums the ranks' shards: the same loss and accuracy as one loader over the whole set.
TEST(DataParallel, EvaluationCoversEveryImageOnce) {
  dist::World& w = dist::world();
  const data::Dataset set = tiny_set(50, "test");
  auto model = tiny_model();
  data::LoaderOptions lo;
  lo.workers = 0;
  lo.shuffle = false;
  lo.batch_size = 8;
  lo.shard = w.rank();
  lo.num_shards = w.size();
  data::DataLoader sharded(set, lo);
  const train::EvalResult a = train::evaluate(*model, sharded, 4);
  EXPECT_EQ(a.samples, 50);  // every image once, also when a last batch leaves a rank empty
  // Every rank scoring the whole set gives the same means (the sums and counts both scale by
  // the number of ranks).
  lo.shard = 0;
  lo.num_shards = 1;
  data::DataLoader whole(set, lo);
  const train::EvalResult b = train::evaluate(*model, whole, 4);
  EXPECT_EQ(b.samples, 50 * w.size());
  EXPECT_NEAR(a.loss, b.loss, 1e-5);
  EXPECT_NEAR(a.top1, b.top1, 1e-9);
}

// A snapshot ensemble (SGDR, a member kept before each restart and at the end) in a data-parallel
// job: rank 0 alone writes the members, every rank scores its shard of the test set with each of
// them, and the job trains and scores as one process with the global batch does. The reference
// is that process on every rank (each rank reading the whole global batch, whose gradients'
// mean is its own; its scores are the same means over S copies of the set).
TEST(DataParallel, SnapshotEnsembleTrainsAndScoresAsOneProcess) {
  dist::World& w = dist::world();
  const int64_t per_rank = (32 + w.size() - 1) / w.size();
  const data::Dataset train_set = tiny_set(69, "train"), test_set = tiny_set(50, "test");
  struct Run {
    train::FitResult fit;
    std::shared_ptr<Module> model;
  };
  auto run = [&](bool sharded, const testing::TempDir& dir) {
    Run r{{}, tiny_model()};
    auto opt = optim::make_optimizer("sgd", r.model->named_parameters(), R"({"momentum": 0.9})");
    data::LoaderOptions lo;
    lo.workers = 0;
    lo.seed = 3;
    lo.batch_size = sharded ? per_rank : per_rank * w.size();
    lo.shard = sharded ? w.rank() : 0;
    lo.num_shards = sharded ? w.size() : 1;
    data::DataLoader train(train_set, lo);
    lo.shuffle = false;
    lo.batch_size = 8;  // 50 images: a last global batch of 2 (3 ranks: one shard is empty)
    data::DataLoader test(test_set, lo);
    auto policy = schedulers::make_policy(
        R"({"policy": "sgdr", "lr": 0.1, "min_lr": 0.001, "cycle_len": 3})");
    train::TrainerOptions o;
    o.epochs = 3;  // 9 steps: restarts at steps 3 and 6
    o.progress_mode = -2;
    o.num_classes = 4;
    o.snapshot_ensemble = true;
    o.tensorboard = false;
    o.log_dir = dir.path().string();
    r.fit = train::Trainer(*r.model, *opt, *policy, train, &test, o).fit();
    return r;
  };
  const testing::TempDir dp_dir, ref_dir;
  const Run dp = run(true, dp_dir), ref = run(false, ref_dir);
  ASSERT_EQ(dp.fit.status, "completed");
  ASSERT_EQ(dp.fit.snapshots.size(), 3u);
  for (const auto& s : dp.fit.snapshots)  // written once, by rank 0
    EXPECT_EQ(std::filesystem::exists(s), w.rank() == 0) << s;
  EXPECT_LT(max_abs_diff(*dp.model, *ref.model), 2e-5);  // the final weights are back in place
  ASSERT_TRUE(dp.fit.ensemble.has_value());
  ASSERT_TRUE(ref.fit.ensemble.has_value());
  EXPECT_EQ(dp.fit.ensemble->samples, 50);  // every test image once
  EXPECT_EQ(ref.fit.ensemble->samples, 50 * w.size());
  EXPECT_NEAR(dp.fit.ensemble->loss, ref.fit.ensemble->loss, 1e-5);
  EXPECT_NEAR(dp.fit.ensemble->top1, ref.fit.ensemble->top1, 1e-9);
  // The ensemble is not its last member: averaging three members changes the loss.
  ASSERT_FALSE(dp.fit.history.empty());
  ASSERT_TRUE(dp.fit.history.back().eval.has_value());
  EXPECT_NE(dp.fit.ensemble->loss, dp.fit.history.back().eval->loss);
}

}  // namespace
}  // namespace cyclone
