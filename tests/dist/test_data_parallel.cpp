// Data parallelism end to end at the library level: S ranks with batch B each, each reading its
// shard, take the same steps as one process with batch S x B — the property the issue asks for
// ("2 ranks with batch B/2 give the same weights after k steps as 1 rank with batch B"). Run alone
// (S = 1: train_step against a hand-written step) and under mpirun -np 2 (ctest dist.mpi_np2).
#include <gtest/gtest.h>

#include <cmath>

#include "cyclone/data/loader.h"
#include "cyclone/data/synthetic.h"
#include "cyclone/dist/world.h"
#include "cyclone/layers/loss_ops.h"
#include "cyclone/models/registry.h"
#include "cyclone/optim/optimizer.h"
#include "cyclone/train/metrics.h"
#include "cyclone/train/step.h"

namespace cyclone {
namespace {

data::Dataset tiny_set(int64_t n, const std::string& split) {
  data::SyntheticOptions so;
  so.channels = 1;
  so.height = so.width = 8;
  so.num_classes = 4;
  so.train_size = n;
  so.test_size = n;
  so.seed = 7;
  return data::make_synthetic(so, split);
}

std::shared_ptr<Module> tiny_model() {
  ModelOptions mo;
  mo.in_channels = 1;
  mo.height = mo.width = 8;
  mo.num_classes = 4;
  mo.seed = 11;
  return make_model("mlp-16", mo);
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

}  // namespace
}  // namespace cyclone
